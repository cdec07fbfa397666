package dbsqlc

import (
	"context"
	"database/sql"
)

// Written by hand beside the generated code (sqlc leaves this file alone). Aggregates are loaded in
// pages of up to a thousand events, and the notification log is read in pages of up to thousands of
// rows; the generated methods grow their result slice as rows arrive, allocate each row on the heap and
// return rows of their own types, which the recorder then copies: at that size, a noticeable share of a
// read. These methods run the same queries with the same arguments (in the order of the generated
// methods, which they must follow) and return the rows for the recorder to scan into its own slice.

// QueryEvents runs SelectEvents.
func (q *Queries) QueryEvents(ctx context.Context, arg SelectEventsParams) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, selectEvents, arg.OriginatorID, arg.After, arg.UpTo, arg.Lim)
}

// QueryEventsDesc runs SelectEventsDesc.
func (q *Queries) QueryEventsDesc(ctx context.Context, arg SelectEventsDescParams) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, selectEventsDesc, arg.OriginatorID, arg.After, arg.UpTo, arg.Lim)
}

// QuerySnapshots runs SelectSnapshots.
func (q *Queries) QuerySnapshots(ctx context.Context, arg SelectSnapshotsParams) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, selectSnapshots, arg.OriginatorID, arg.After, arg.UpTo, arg.Lim)
}

// QuerySnapshotsDesc runs SelectSnapshotsDesc.
func (q *Queries) QuerySnapshotsDesc(ctx context.Context, arg SelectSnapshotsDescParams) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, selectSnapshotsDesc, arg.OriginatorID, arg.After, arg.UpTo, arg.Lim)
}

// QueryNotifications runs SelectNotifications.
func (q *Queries) QueryNotifications(ctx context.Context, arg SelectNotificationsParams) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, selectNotifications, arg.After, arg.UpTo, arg.Lim)
}

// QueryNotificationsByTopics runs SelectNotificationsByTopics.
func (q *Queries) QueryNotificationsByTopics(ctx context.Context, arg SelectNotificationsByTopicsParams) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, selectNotificationsByTopics, arg.After, arg.UpTo, arg.Topics, arg.Lim)
}

// QueryNotificationsXID runs SelectNotificationsXID.
func (q *Queries) QueryNotificationsXID(ctx context.Context, arg SelectNotificationsXIDParams) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, selectNotificationsXID, arg.Final, arg.After, arg.UpTo, arg.Topics, arg.Lim)
}

// QueryNotificationsXIDHorizon runs SelectNotificationsXIDHorizon.
func (q *Queries) QueryNotificationsXIDHorizon(ctx context.Context, arg SelectNotificationsXIDHorizonParams) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, selectNotificationsXIDHorizon, arg.After, arg.UpTo, arg.Topics, arg.Lim)
}

package sqlite

import (
	"context"
	"database/sql"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/dbsqlc"
)

var _ es.AggregateRecorder = (*SnapshotRecorder)(nil)

// SnapshotRecorder is an [es.AggregateRecorder] on the snapshots table: events per
// originator and version, without an application sequence, so InsertEvents returns nil IDs. It is the
// recorder of a snapshot store. It keeps no tracking records: InsertEvents fails when given
// [es.WithTracking].
//
// It writes like [ProcessRecorder] (one connection, group commit) and is safe for concurrent use. Close
// it before closing the *sql.DB.
type SnapshotRecorder struct {
	base
}

// NewSnapshotRecorder returns a snapshot recorder on db, which must have been migrated with
// schema.Migrate(ctx, db, schema.SQLite). Like [NewProcessRecorder], it keeps one connection of the pool
// for writing until Close.
func NewSnapshotRecorder(ctx context.Context, db *sql.DB, opts ...Option) (*SnapshotRecorder, error) {
	r := new(SnapshotRecorder)
	err := r.open(ctx, "new snapshot recorder", db, opts, true, insertSnapshots, nil,
		func(ctx context.Context, q *dbsqlc.Queries) error {
			_, err := q.SelectSnapshots(ctx, dbsqlc.SelectSnapshotsParams{OriginatorID: uuid.Nil[:], Lim: 0})
			return err
		})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Close stops the writer after the transaction in progress, fails writes still queued, and gives the
// writer connection back to the pool; every later call fails with an error wrapping es.ErrClosed. It
// does not close db. Calling it again does nothing.
func (r *SnapshotRecorder) Close() error {
	r.close()
	return nil
}

// InsertEvents records snapshots atomically and returns nil IDs. A version recorded already for its
// originator, or appearing twice in events, fails the call with an error wrapping
// [es.ErrConflict] and records nothing. Context handling is that of
// [ProcessRecorder.InsertEvents].
func (r *SnapshotRecorder) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	return r.frame().InsertSnapshots(ctx, events, opts, func(ctx context.Context) error {
		return r.w.submit(ctx, newRequest(ctx, events, nil))
	})
}

// insertSnapshots is the SnapshotRecorder's insertFunc.
func insertSnapshots(ctx context.Context, q *dbsqlc.Queries, r *request) error {
	for i, e := range r.events {
		p := dbsqlc.InsertSnapshotParams{OriginatorID: e.OriginatorID[:], OriginatorVersion: e.OriginatorVersion, Topic: e.Topic, State: e.State}
		if err := q.InsertSnapshot(ctx, p); err != nil {
			return eventError(i, e, err)
		}
	}
	return nil
}

// SelectEvents returns the snapshots of originatorID matching q (see [es.EventQuery]): the
// latest at or below version v is EventQuery{UpTo: v, Desc: true, Limit: 1}. An unknown originator
// gives an empty result. A negative q.Limit is an error.
func (r *SnapshotRecorder) SelectEvents(ctx context.Context, originatorID uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	return selectEvents(ctx, r.frame(), r.cfg.busyTimeout, "select snapshots", originatorID, q, r.q.QuerySnapshots, r.q.QuerySnapshotsDesc)
}

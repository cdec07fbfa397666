package postgres

import (
	"context"
	"database/sql"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
)

// SnapshotRecorder stores snapshots of aggregates: an AggregateRecorder without a notification log,
// in the snapshots table of the schema. It is safe for concurrent use.
type SnapshotRecorder struct {
	base
}

var _ es.AggregateRecorder = (*SnapshotRecorder)(nil)

// NewSnapshotRecorder returns a snapshot recorder on db, after the same checks as NewProcessRecorder
// (the database answers, the schema is migrated). Only WithSchema matters to it.
func NewSnapshotRecorder(ctx context.Context, db *sql.DB, opts ...Option) (*SnapshotRecorder, error) {
	b, _, err := newBase(ctx, db, "new snapshot recorder", opts)
	if err != nil {
		return nil, err
	}
	b.trace.Snapshots = true
	return &SnapshotRecorder{base: b}, nil
}

// Close makes every later call fail with an error wrapping es.ErrClosed. It does not close the
// *sql.DB. Calling it again does nothing.
func (r *SnapshotRecorder) Close() error {
	r.life.Close()
	return nil
}

// InsertEvents records snapshots atomically, in one statement. It returns nil IDs: snapshots have no
// notification log. WithTracking is refused, since a snapshot recorder keeps no tracking marks.
func (r *SnapshotRecorder) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	return r.frame().InsertSnapshots(ctx, events, opts, func(ctx context.Context) error {
		cols := newColumns(events, r.ids)
		return r.q.InsertSnapshots(ctx, dbsqlc.InsertSnapshotsParams{
			OriginatorIds: cols.ids,
			Versions:      cols.versions,
			Topics:        cols.topics,
			States:        cols.states,
		})
	})
}

// SelectEvents returns snapshots of one originator; a repository asks for the newest at or below a
// version with EventQuery{UpTo: v, Desc: true, Limit: 1}.
func (r *SnapshotRecorder) SelectEvents(ctx context.Context, originatorID uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	return selectEvents(ctx, r.frame(), "select snapshots", originatorID, q, r.q.QuerySnapshots, r.q.QuerySnapshotsDesc)
}

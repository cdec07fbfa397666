package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/google/uuid"
)

// SnapshotRecorder stores snapshots of aggregates: an AggregateRecorder without a notification log,
// in the snapshots table of the schema. It is safe for concurrent use.
type SnapshotRecorder struct {
	base
}

var _ eventsourcing.AggregateRecorder = (*SnapshotRecorder)(nil)

// NewSnapshotRecorder returns a snapshot recorder on db, after the same checks as NewProcessRecorder
// (the database answers, the schema is migrated). Only WithSchema matters to it.
func NewSnapshotRecorder(ctx context.Context, db *sql.DB, opts ...Option) (*SnapshotRecorder, error) {
	b, err := newBase(ctx, db, "new snapshot recorder", newConfig(opts))
	if err != nil {
		return nil, err
	}
	return &SnapshotRecorder{base: b}, nil
}

// InsertEvents records snapshots atomically, in one statement. It returns nil IDs: snapshots have no
// notification log. WithTracking is refused, since a snapshot recorder keeps no tracking marks.
func (r *SnapshotRecorder) InsertEvents(ctx context.Context, events []eventsourcing.StoredEvent, opts ...eventsourcing.InsertOption) ([]int64, error) {
	const op = "insert snapshots"
	if o := eventsourcing.ApplyInsertOptions(opts...); o.Tracking != nil {
		return nil, fmt.Errorf("postgres: %s: WithTracking is not supported: a snapshot recorder keeps no tracking records", op)
	}
	if len(events) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil, nil
	}
	cols, err := newColumns(op, events)
	if err != nil {
		return nil, err
	}
	err = r.q.InsertSnapshots(ctx, dbsqlc.InsertSnapshotsParams{
		OriginatorIds: cols.ids,
		Versions:      cols.versions,
		Topics:        cols.topics,
		States:        cols.states,
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return nil, nil
}

// SelectEvents returns snapshots of one originator; a repository asks for the newest at or below a
// version with EventQuery{UpTo: v, Desc: true, Limit: 1}.
func (r *SnapshotRecorder) SelectEvents(ctx context.Context, originatorID uuid.UUID, q eventsourcing.EventQuery) ([]eventsourcing.StoredEvent, error) {
	const op = "select snapshots"
	upTo, limit, err := eventBounds(op, q)
	if err != nil {
		return nil, err
	}
	if q.Desc {
		rows, err := r.q.SelectSnapshotsDesc(ctx, dbsqlc.SelectSnapshotsDescParams{OriginatorID: originatorID, After: q.After, UpTo: upTo, Lim: limit})
		if err != nil {
			return nil, wrap(op, err)
		}
		return toEvents(originatorID, rows), nil
	}
	rows, err := r.q.SelectSnapshots(ctx, dbsqlc.SelectSnapshotsParams{OriginatorID: originatorID, After: q.After, UpTo: upTo, Lim: limit})
	if err != nil {
		return nil, wrap(op, err)
	}
	return toEvents(originatorID, rows), nil
}

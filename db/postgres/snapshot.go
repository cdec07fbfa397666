package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
	"github.com/eventsourcing-go/eventsourcing/observe"
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
func (r *SnapshotRecorder) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) (_ []int64, err error) {
	const op = "insert snapshots"
	if r.trace.Tracer != nil {
		var a observe.Append
		ctx, a = r.trace.StartAppend(ctx, events, opts)
		defer func() { r.trace.EndAppend(ctx, a, nil, err) }()
	}
	if err := r.life.Err(); err != nil {
		return nil, opError(op, err)
	}
	if o := es.ApplyInsertOptions(opts...); o.Tracking != nil {
		return nil, fmt.Errorf("postgres: %s: tracking (consumer %q, upstream %q) given to a SnapshotRecorder, which keeps no tracking records: %w", op, o.Tracking.Consumer, o.Tracking.Upstream, errors.ErrUnsupported)
	}
	if len(events) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", op, err)
		}
		return nil, nil
	}
	if err := recorder.ValidateEvents(events); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	cols := newColumns(events, r.ids)
	err = r.q.InsertSnapshots(ctx, dbsqlc.InsertSnapshotsParams{
		OriginatorIds: cols.ids,
		Versions:      cols.versions,
		Topics:        cols.topics,
		States:        cols.states,
	})
	if err != nil {
		return nil, opError(op, err)
	}
	return nil, nil
}

// SelectEvents returns snapshots of one originator; a repository asks for the newest at or below a
// version with EventQuery{UpTo: v, Desc: true, Limit: 1}.
func (r *SnapshotRecorder) SelectEvents(ctx context.Context, originatorID uuid.UUID, q es.EventQuery) (got []es.StoredEvent, err error) {
	const op = "select snapshots"
	if r.trace.Tracer != nil {
		var s observe.Select
		ctx, s = r.trace.StartSelect(ctx, false, originatorID)
		defer func() { r.trace.EndSelectEvents(ctx, s, got, err) }()
	}
	if err := r.life.Err(); err != nil {
		return nil, opError(op, err)
	}
	upTo, limit, err := eventBounds(op, q)
	if err != nil {
		return nil, err
	}
	if q.Desc {
		rows, err := r.q.SelectSnapshotsDesc(ctx, dbsqlc.SelectSnapshotsDescParams{OriginatorID: originatorID, After: q.After, UpTo: upTo, Lim: limit})
		if err != nil {
			return nil, opError(op, err)
		}
		return storedEvents(originatorID, rows), nil
	}
	rows, err := r.q.SelectSnapshots(ctx, dbsqlc.SelectSnapshotsParams{OriginatorID: originatorID, After: q.After, UpTo: upTo, Lim: limit})
	if err != nil {
		return nil, opError(op, err)
	}
	return storedEvents(originatorID, rows), nil
}

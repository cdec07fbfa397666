package sqlite

import (
	"context"
	"fmt"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// InsertTracking moves the mark of t.Consumer for t.Upstream from t.Prior to t.NotificationID (see
// [es.TrackingRecorder]); when the mark is not t.Prior it fails with an error wrapping
// [es.ErrConflict]. It goes through the writer like InsertEvents.
func (r *ProcessRecorder) InsertTracking(ctx context.Context, t es.Tracking) error {
	const op = "insert tracking"
	if err := r.check(ctx); err != nil {
		return opError(op, err)
	}
	if err := recorder.ValidateTracking(t); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := r.w.submit(ctx, newRequest(ctx, nil, &t)); err != nil {
		return opError(op, err)
	}
	return nil
}

// recordTracking records t inside the writer's transaction: the compare-and-set of the tracking
// queries.
func recordTracking(ctx context.Context, q *dbsqlc.Queries, t *es.Tracking) error {
	if t.Prior == 0 {
		err := q.InsertFirstTracking(ctx, dbsqlc.InsertFirstTrackingParams{Consumer: t.Consumer, Upstream: t.Upstream, NotificationID: t.NotificationID})
		if err == nil {
			return nil
		}
		if !isUniqueViolation(err) {
			return fmt.Errorf("tracking consumer %q upstream %q: %w", t.Consumer, t.Upstream, err)
		}
	} else {
		n, err := q.AdvanceTracking(ctx, dbsqlc.AdvanceTrackingParams{Consumer: t.Consumer, Upstream: t.Upstream, NotificationID: t.NotificationID, Prior: t.Prior})
		if err != nil {
			return fmt.Errorf("tracking consumer %q upstream %q: %w", t.Consumer, t.Upstream, err)
		}
		if n == 1 {
			return nil
		}
	}
	mark, err := q.MaxTrackingID(ctx, dbsqlc.MaxTrackingIDParams{Consumer: t.Consumer, Upstream: t.Upstream})
	if err != nil {
		return fmt.Errorf("tracking consumer %q upstream %q: read the mark after a conflict: %w", t.Consumer, t.Upstream, err)
	}
	return recorder.MarkConflict(*t, mark)
}

// ProcessTracked records t and runs fn in the same transaction, so that a projection's read-model
// changes and the position it has reached commit together or not at all (see package projection).
// When the mark is not t.Prior it fails with an error wrapping [es.ErrConflict] before fn runs. If fn
// fails or panics, nothing of it nor of t is written and the error (or the panic, as an error) is
// returned.
//
// fn runs on the recorder's writer connection, inside a transaction that may also hold other callers'
// appends (group commit): it must not begin, commit or roll back transactions itself, and while it
// runs no other write of this recorder proceeds. The read model's tables belong in the same database
// as the recorder's tracking table.
func (r *ProcessRecorder) ProcessTracked(ctx context.Context, t es.Tracking, fn func(ctx context.Context, tx projection.SQLTx) error) error {
	const op = "process tracked"
	if err := r.check(ctx); err != nil {
		return opError(op, err)
	}
	if fn == nil {
		return fmt.Errorf("sqlite: %s: nil function", op)
	}
	if err := recorder.ValidateTracking(t); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	req := newRequest(ctx, nil, &t)
	conn := r.w.conn
	req.run = func(ctx context.Context) error { return fn(ctx, conn) }
	if err := r.w.submit(ctx, req); err != nil {
		return opError(op, err)
	}
	return nil
}

// MaxTrackingID returns the mark of consumer for upstream, 0 when nothing is tracked.
func (r *ProcessRecorder) MaxTrackingID(ctx context.Context, consumer, upstream string) (int64, error) {
	return recorder.Read(r.frame(), "max tracking ID", func() (int64, error) { return r.maxTrackingID(ctx, consumer, upstream) })
}

// HasTrackingID reports whether the mark of consumer for upstream is at or above notificationID.
func (r *ProcessRecorder) HasTrackingID(ctx context.Context, consumer, upstream string, notificationID int64) (bool, error) {
	id, err := recorder.Read(r.frame(), "has tracking ID", func() (int64, error) { return r.maxTrackingID(ctx, consumer, upstream) })
	return err == nil && id >= notificationID, err
}

func (r *ProcessRecorder) maxTrackingID(ctx context.Context, consumer, upstream string) (int64, error) {
	return whileLocked(ctx, r.cfg.busyTimeout, func() (int64, error) {
		return r.q.MaxTrackingID(ctx, dbsqlc.MaxTrackingIDParams{Consumer: consumer, Upstream: upstream})
	})
}

// TrackingMarks returns every mark, ordered by consumer and upstream.
func (r *ProcessRecorder) TrackingMarks(ctx context.Context) ([]es.Tracking, error) {
	rows, err := recorder.Read(r.frame(), "tracking marks", func() ([]dbsqlc.Tracking, error) {
		return whileLocked(ctx, r.cfg.busyTimeout, func() ([]dbsqlc.Tracking, error) { return r.q.TrackingMarks(ctx) })
	})
	if err != nil {
		return nil, err
	}
	return recorder.TrackingMarks(rows), nil
}

// DeleteTracking removes the mark of consumer for upstream. It goes through the writer like
// InsertEvents.
func (r *ProcessRecorder) DeleteTracking(ctx context.Context, consumer, upstream string) error {
	const op = "delete tracking"
	if err := r.check(ctx); err != nil {
		return opError(op, err)
	}
	req := newRequest(ctx, nil, nil)
	req.write = func(ctx context.Context, q *dbsqlc.Queries) error {
		return q.DeleteTracking(ctx, dbsqlc.DeleteTrackingParams{Consumer: consumer, Upstream: upstream})
	}
	if err := r.w.submit(ctx, req); err != nil {
		return opError(op, err)
	}
	return nil
}

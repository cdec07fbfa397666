package sqlite

import (
	"context"
	"fmt"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// InsertTracking raises the mark of t.ApplicationName to t.NotificationID. An ID at or below the mark
// fails with an error wrapping [es.ErrConflict]. It goes through the writer like
// InsertEvents.
func (r *ProcessRecorder) InsertTracking(ctx context.Context, t es.Tracking) error {
	const op = "insert tracking"
	if err := r.life.Err(); err != nil {
		return opError(op, err)
	}
	if err := ctx.Err(); err != nil {
		return opError(op, err)
	}
	if t.NotificationID <= 0 {
		return fmt.Errorf("sqlite: %s: application %q notification %d: not above the mark (at least 0): %w", op, t.ApplicationName, t.NotificationID, es.ErrConflict)
	}
	if err := r.w.submit(ctx, newRequest(ctx, nil, &t)); err != nil {
		return opError(op, err)
	}
	return nil
}

// ProcessTracked records t and runs fn in the same transaction, so that a projection's read-model
// changes and the position it has reached commit together or not at all (see package projection). If
// t is not above the application's mark, it fails with an error wrapping [es.ErrConflict]
// before fn runs. If fn fails or panics, nothing of it nor of t is written and the error (or the
// panic, as an error) is returned.
//
// fn runs on the recorder's writer connection, inside a transaction that may also hold other callers'
// appends (group commit): it must not begin, commit or roll back transactions itself, and while it
// runs no other write of this recorder proceeds, so keep it short. The read model's tables belong in
// the same database as the recorder's tracking table.
func (r *ProcessRecorder) ProcessTracked(ctx context.Context, t es.Tracking, fn func(ctx context.Context, tx projection.SQLTx) error) error {
	const op = "process tracked"
	if err := r.life.Err(); err != nil {
		return opError(op, err)
	}
	if err := ctx.Err(); err != nil {
		return opError(op, err)
	}
	if fn == nil {
		return fmt.Errorf("sqlite: %s: nil function", op)
	}
	if t.NotificationID <= 0 {
		return fmt.Errorf("sqlite: %s: application %q notification %d: not above the mark (at least 0): %w", op, t.ApplicationName, t.NotificationID, es.ErrConflict)
	}
	req := newRequest(ctx, nil, &t)
	conn := r.w.conn
	req.run = func(ctx context.Context) error { return fn(ctx, conn) }
	if err := r.w.submit(ctx, req); err != nil {
		return opError(op, err)
	}
	return nil
}

// MaxTrackingID returns the mark of applicationName, 0 when nothing is tracked.
func (r *ProcessRecorder) MaxTrackingID(ctx context.Context, applicationName string) (int64, error) {
	if err := r.life.Err(); err != nil {
		return 0, opError("max tracking ID", err)
	}
	id, err := r.q.MaxTrackingID(ctx, applicationName)
	if err != nil {
		return 0, opError("max tracking ID", err)
	}
	return id, nil
}

// HasTrackingID reports whether the mark of applicationName is at or above notificationID.
func (r *ProcessRecorder) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	if err := r.life.Err(); err != nil {
		return false, opError("has tracking ID", err)
	}
	id, err := r.q.MaxTrackingID(ctx, applicationName)
	if err != nil {
		return false, opError("has tracking ID", err)
	}
	return id >= notificationID, nil
}

package postgres

import (
	"context"
	"fmt"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// InsertTracking moves the mark of t.Consumer for t.Upstream from t.Prior to t.NotificationID (see
// [es.TrackingRecorder]); when the mark is not t.Prior it fails with an error wrapping
// [es.ErrConflict]. It is an append of no events, in one round trip.
func (r *ProcessRecorder) InsertTracking(ctx context.Context, t es.Tracking) error {
	const op = "insert tracking"
	if err := r.canWrite(op); err != nil {
		return err
	}
	if err := recorder.ValidateTracking(t); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if _, err := r.append(ctx, r.q, newColumns(nil, r.ids), &t); err != nil {
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
	return r.q.MaxTrackingID(ctx, dbsqlc.MaxTrackingIDParams{Consumer: consumer, Upstream: upstream})
}

// TrackingMarks returns every mark, ordered by consumer and upstream.
func (r *ProcessRecorder) TrackingMarks(ctx context.Context) ([]es.Tracking, error) {
	rows, err := recorder.Read(r.frame(), "tracking marks", func() ([]dbsqlc.TrackingMarksRow, error) { return r.q.TrackingMarks(ctx) })
	if err != nil {
		return nil, err
	}
	return recorder.TrackingMarks(rows), nil
}

// DeleteTracking removes the mark of consumer for upstream.
func (r *ProcessRecorder) DeleteTracking(ctx context.Context, consumer, upstream string) error {
	const op = "delete tracking"
	if err := r.canWrite(op); err != nil {
		return err
	}
	if err := r.q.DeleteTracking(ctx, dbsqlc.DeleteTrackingParams{Consumer: consumer, Upstream: upstream}); err != nil {
		return opError(op, err)
	}
	return nil
}

// ProcessTracked records t and runs fn in one transaction, so that a projection's read-model changes
// and the position it has reached commit together or not at all (see package projection). When the
// mark is not t.Prior it fails with an error wrapping [es.ErrConflict] before fn runs. If fn fails or
// panics, or ctx ends before the commit, the transaction is rolled back.
//
// fn gets the *sql.Tx itself. Table names in its SQL resolve through the connection's search_path, not
// through the recorder's schema: qualify them, or open the *sql.DB with a search_path. The tracking
// record gives the transaction an xid; with OrderingXID, readers of the notification logs in the
// cluster wait for it while it runs.
func (r *ProcessRecorder) ProcessTracked(ctx context.Context, t es.Tracking, fn func(ctx context.Context, tx projection.SQLTx) error) (err error) {
	const op = "process tracked"
	if err := r.canWrite(op); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("postgres: %s: nil function", op)
	}
	if err := recorder.ValidateTracking(t); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: %s: begin: %w", op, err)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	q := dbsqlc.New(r.qualifier.inTx(tx))
	if _, err := r.append(ctx, q, newColumns(nil, r.ids), &t); err != nil {
		return opError(op, err)
	}
	if err := recorder.RunTracked(ctx, func(ctx context.Context) error { return fn(ctx, tx) }); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: %s: commit: %w", op, err)
	}
	committed = true
	return nil
}

package postgres

import (
	"context"
	"fmt"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// InsertTracking raises the mark of t.ApplicationName to t.NotificationID; an ID at or below the mark
// fails with an error wrapping es.ErrConflict.
func (r *ProcessRecorder) InsertTracking(ctx context.Context, t es.Tracking) error {
	if err := r.life.Err(); err != nil {
		return opError("insert tracking", err)
	}
	if _, err := r.append(ctx, r.q, noEvents, &t); err != nil {
		return opError("insert tracking", err)
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

// ProcessTracked records t and runs fn in one transaction, so that a projection's read-model changes
// and the position it has reached commit together or not at all (see package projection). If t is not
// above the application's mark, it fails with an error wrapping [es.ErrConflict] before fn
// runs. If fn fails or panics, or ctx ends before the commit, the transaction is rolled back.
//
// fn gets the *sql.Tx itself. Table names in its SQL resolve through the connection's search_path, not
// through the recorder's schema: qualify them, or open the *sql.DB with a search_path. The tracking
// record gives the transaction an xid; with OrderingXID, readers of the notification logs in the
// cluster wait for it while it runs, so keep fn short.
func (r *ProcessRecorder) ProcessTracked(ctx context.Context, t es.Tracking, fn func(ctx context.Context, tx projection.SQLTx) error) (err error) {
	const op = "process tracked"
	if err := r.life.Err(); err != nil {
		return opError(op, err)
	}
	if fn == nil {
		return fmt.Errorf("postgres: %s: nil function", op)
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
	if _, err := r.append(ctx, q, noEvents, &t); err != nil {
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

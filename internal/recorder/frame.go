package recorder

import (
	"context"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// Frame is what the SQL recorders' methods do around their queries: a closed recorder fails before
// anything else, with an error wrapping es.ErrClosed; every error is named by the dialect's OpError
// (which prefixes the dialect and the operation and classifies the database's errors); reads of events
// and notifications are traced. Held here, it leaves each dialect's methods with their queries.
type Frame struct {
	Life    *Life
	Tracing Tracing
	OpError func(op string, err error) error
}

// Read runs query, the one query of the method named op, unless the recorder is closed, and names
// either error with f.OpError.
func Read[T any](f Frame, op string, query func() (T, error)) (T, error) {
	var zero T
	if err := f.Life.Err(); err != nil {
		return zero, f.OpError(op, err)
	}
	v, err := query()
	if err != nil {
		return zero, f.OpError(op, err)
	}
	return v, nil
}

// SelectEvents is Read traced as a read of the events of originatorID; query carries on with the
// context the tracer returns.
func (f Frame) SelectEvents(ctx context.Context, op string, originatorID uuid.UUID, query func(context.Context) ([]es.StoredEvent, error)) ([]es.StoredEvent, error) {
	return f.Tracing.SelectEvents(ctx, originatorID, func(ctx context.Context) ([]es.StoredEvent, error) {
		return Read(f, op, func() ([]es.StoredEvent, error) { return query(ctx) })
	})
}

// SelectNotifications is Read traced as a read of the notification log; query carries on with the
// context the tracer returns.
func (f Frame) SelectNotifications(ctx context.Context, op string, query func(context.Context) ([]es.Notification, error)) ([]es.Notification, error) {
	return f.Tracing.SelectNotifications(ctx, func(ctx context.Context) ([]es.Notification, error) {
		return Read(f, op, func() ([]es.Notification, error) { return query(ctx) })
	})
}

// InsertSnapshots is the InsertEvents of a snapshot recorder, traced as an append: a snapshot store has
// no notification log, so it returns nil IDs, and keeps no tracking records, so es.WithTracking is
// refused. insert writes events, which are valid and not empty, in one transaction; it carries on with
// the context the tracer returns.
func (f Frame) InsertSnapshots(ctx context.Context, events []es.StoredEvent, opts []es.InsertOption, insert func(context.Context) error) ([]int64, error) {
	return f.Tracing.Append(ctx, events, opts, func(ctx context.Context) ([]int64, error) {
		err := f.Life.Err()
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = RefuseTracking("a SnapshotRecorder", opts)
		}
		if err == nil {
			err = ValidateEvents(events)
		}
		if err == nil && len(events) > 0 {
			err = insert(ctx)
		}
		if err != nil {
			return nil, f.OpError("insert snapshots", err)
		}
		return nil, nil
	})
}

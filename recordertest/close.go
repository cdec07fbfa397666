package recordertest

import (
	"io"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// runClose runs the rules of Close for a recorder that implements io.Closer (every recorder of this
// module does, so that code that switches backends behaves the same): Close returns nil, and again
// when called twice; every later call fails with an error wrapping es.ErrClosed; a subscription that
// is waiting when the recorder is closed ends with such an error.
func runClose(t *testing.T, newRecorder func(t *testing.T) es.AggregateRecorder) {
	t.Helper()
	t.Run("Close", func(t *testing.T) {
		r := newRecorder(t)
		c, ok := r.(io.Closer)
		if !ok {
			t.Skipf("%T does not implement io.Closer", r)
		}
		id := uuid.New()
		insert(t, r, ev(id, 1, "topic", "before close"))
		var sub *subscription
		if app, ok := r.(es.ApplicationRecorder); ok {
			sub = subscribe(t, app, 1) // caught up and waiting when Close comes
		}
		run(t, "Close", func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close again: %v", err)
			}
		})
		if sub != nil {
			requireClosed(t, sub.end(t), "a subscription waiting at Close")
		}
		ctx := t.Context()
		_, err := r.InsertEvents(ctx, []es.StoredEvent{ev(id, 2, "topic", "after close")})
		requireClosed(t, err, "InsertEvents after Close")
		_, err = r.SelectEvents(ctx, id, es.EventQuery{})
		requireClosed(t, err, "SelectEvents after Close")
		if app, ok := r.(es.ApplicationRecorder); ok {
			_, err = app.SelectNotifications(ctx, es.NotificationQuery{Limit: 10})
			requireClosed(t, err, "SelectNotifications after Close")
			_, err = app.MaxNotificationID(ctx)
			requireClosed(t, err, "MaxNotificationID after Close")
			for _, err := range app.Subscribe(ctx, 0) {
				requireClosed(t, err, "Subscribe after Close")
				break
			}
		}
		if tr, ok := r.(es.TrackingRecorder); ok {
			requireClosed(t, tr.InsertTracking(ctx, proj.tracking(0, 1)), "InsertTracking after Close")
			_, err = tr.MaxTrackingID(ctx, proj.consumer, proj.upstream)
			requireClosed(t, err, "MaxTrackingID after Close")
			_, err = tr.HasTrackingID(ctx, proj.consumer, proj.upstream, 1)
			requireClosed(t, err, "HasTrackingID after Close")
			_, err = tr.TrackingMarks(ctx)
			requireClosed(t, err, "TrackingMarks after Close")
			requireClosed(t, tr.DeleteTracking(ctx, proj.consumer, proj.upstream), "DeleteTracking after Close")
		}
	})
}

// requireClosed fails the test unless err wraps es.ErrClosed.
func requireClosed(t *testing.T, err error, call string) {
	t.Helper()
	requireWraps(t, t.Errorf, err, es.ErrClosed, "eventsourcing.ErrClosed", call)
}

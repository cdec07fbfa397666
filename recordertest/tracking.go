package recordertest

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// runTracking runs the rules of an eventsourcing.TrackingRecorder.
func runTracking(t *testing.T, newRecorder func(t *testing.T) es.TrackingRecorder) {
	t.Helper()
	t.Run("Tracking", func(t *testing.T) {
		t.Run("NothingTracked", func(t *testing.T) {
			r := newRecorder(t)
			requireMark(t, r, "upstream", 0)
			requireHas(t, r, "upstream", 1, false)
		})
		t.Run("HighWaterMark", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, "upstream", 3)
			requireMark(t, r, "upstream", 3)
			insertTracking(t, r, "upstream", 4)
			requireMark(t, r, "upstream", 4)
			for n, want := range map[int64]bool{1: true, 3: true, 4: true, 5: false, 100: false} {
				requireHas(t, r, "upstream", n, want)
			}
		})
		t.Run("GapsAreNeverFilled", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, "upstream", 2)
			insertTracking(t, r, "upstream", 10)
			requireMark(t, r, "upstream", 10)
			requireHas(t, r, "upstream", 5, true) // below the mark counts as processed
			err := r.InsertTracking(t.Context(), es.Tracking{ApplicationName: "upstream", NotificationID: 5})
			requireConflict(t, err, "InsertTracking(upstream, 5) in the gap below the mark 10")
			requireMark(t, r, "upstream", 10)
		})
		t.Run("AtOrBelowMarkConflicts", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, "upstream", 5)
			for _, n := range []int64{5, 4, 1} {
				err := r.InsertTracking(t.Context(), es.Tracking{ApplicationName: "upstream", NotificationID: n})
				requireConflict(t, err, fmt.Sprintf("InsertTracking(upstream, %d) with the mark at 5", n))
			}
			requireMark(t, r, "upstream", 5)
			insertTracking(t, r, "upstream", 6)
			requireMark(t, r, "upstream", 6)
		})
		t.Run("ApplicationsAreIndependent", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, "first", 7)
			insertTracking(t, r, "second", 2)
			insertTracking(t, r, "second", 3)
			requireMark(t, r, "first", 7)
			requireMark(t, r, "second", 3)
			requireMark(t, r, "third", 0)
			requireHas(t, r, "second", 7, false)
			requireHas(t, r, "third", 1, false)
			insertTracking(t, r, "third", 1)
			requireMark(t, r, "first", 7)
		})
		t.Run("ConcurrentInsertsOfOneID", func(t *testing.T) {
			r := newRecorder(t)
			const n = 8
			var o outcomes
			concurrently(n, func(i int) {
				o.add(i, r.InsertTracking(t.Context(), es.Tracking{ApplicationName: "upstream", NotificationID: 1}))
			})
			o.winner(t, n, "InsertTracking(upstream, 1)")
			requireMark(t, r, "upstream", 1)
		})
		t.Run("CancelledContext", func(t *testing.T) {
			r := newRecorder(t)
			requireCanceled(t, r.InsertTracking(cancelled(t), es.Tracking{ApplicationName: "upstream", NotificationID: 1}), "InsertTracking")
			_, err := r.MaxTrackingID(cancelled(t), "upstream")
			requireCanceled(t, err, "MaxTrackingID")
			_, err = r.HasTrackingID(cancelled(t), "upstream", 1)
			requireCanceled(t, err, "HasTrackingID")
			requireMark(t, r, "upstream", 0)
		})
	})
}

// runProcess runs the rules of events and tracking recorded together (eventsourcing.WithTracking).
func runProcess(t *testing.T, newRecorder func(t *testing.T) es.ProcessRecorder) {
	t.Helper()
	t.Run("WithTracking", func(t *testing.T) {
		upstream := func(n int64) es.InsertOption {
			return es.WithTracking(es.Tracking{ApplicationName: "upstream", NotificationID: n})
		}
		t.Run("EventsAndTracking", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			events := series(id, 1, 2, "topic")
			ids, err := r.InsertEvents(t.Context(), events, upstream(4))
			if err != nil {
				t.Fatalf("InsertEvents(%s, WithTracking(upstream, 4)): %v", describe(events), err)
			}
			checkIDs(t, r, events, ids)
			requireEvents(t, "SelectEvents", selectEvents(t, r, id, es.EventQuery{}), events)
			requireNotifications(t, "SelectNotifications", readAll(t, r, 0), notifications(ids, events))
			requireMark(t, r, "upstream", 4)
			requireHas(t, r, "upstream", 4, true)
		})
		t.Run("ConflictingTrackingWritesNoEvents", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, "upstream", 4)
			id := uuid.New()
			for _, n := range []int64{4, 3} {
				_, err := r.InsertEvents(t.Context(), series(id, 1, 2, "topic"), upstream(n))
				requireConflict(t, err, fmt.Sprintf("InsertEvents(…, WithTracking(upstream, %d)) with the mark at 4", n))
				requireNoEvents(t, r, id, "after InsertEvents failed on its tracking record")
				requireMax(t, r, 0)
				requireMark(t, r, "upstream", 4)
			}
		})
		t.Run("ConflictingEventsWriteNoTracking", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			recorded := series(id, 1, 1, "topic")
			ids := insert(t, r, recorded...)
			_, err := r.InsertEvents(t.Context(), series(id, 1, 2, "topic"), upstream(1))
			requireConflict(t, err, "InsertEvents(version 1 recorded already, WithTracking(upstream, 1))")
			requireMark(t, r, "upstream", 0)
			requireHas(t, r, "upstream", 1, false)
			requireEvents(t, "SelectEvents after the failed insert", selectEvents(t, r, id, es.EventQuery{}), recorded)
			requireMax(t, r, ids[0])
		})
		t.Run("NoEventsWithTracking", func(t *testing.T) {
			// A processed notification that caused no event is still recorded as processed.
			r := newRecorder(t)
			ids, err := r.InsertEvents(t.Context(), nil, upstream(9))
			if err != nil {
				t.Fatalf("InsertEvents(no events, WithTracking(upstream, 9)): %v", err)
			}
			if len(ids) != 0 {
				t.Fatalf("InsertEvents(no events, WithTracking(upstream, 9)) returned IDs %v, want none", ids)
			}
			requireMark(t, r, "upstream", 9)
			requireMax(t, r, 0)
			_, err = r.InsertEvents(t.Context(), []es.StoredEvent{}, upstream(9))
			requireConflict(t, err, "InsertEvents(no events, WithTracking(upstream, 9)) again")
		})
		t.Run("ConcurrentProcessingOfOneNotification", func(t *testing.T) {
			// Exactly once: of writers racing to record the processing of the same upstream
			// notification, one wins and only its events are recorded.
			r := newRecorder(t)
			const n = 8
			originators := make([]uuid.UUID, n)
			for i := range originators {
				originators[i] = uuid.New()
			}
			var o outcomes
			concurrently(n, func(i int) {
				_, err := r.InsertEvents(t.Context(), series(originators[i], 1, 2, "topic"), upstream(1))
				o.add(i, err)
			})
			w := o.winner(t, n, "InsertEvents(…, WithTracking(upstream, 1))")
			for i, id := range originators {
				if i != w {
					requireNoEvents(t, r, id, fmt.Sprintf("writer %d lost the race to writer %d", i, w))
				}
			}
			requireEvents(t, "SelectEvents of the winner", selectEvents(t, r, originators[w], es.EventQuery{}), series(originators[w], 1, 2, "topic"))
			if got := readAll(t, r, 0); len(got) != 2 {
				t.Fatalf("the log holds %d notifications after the race, want the winner's 2", len(got))
			}
			requireMark(t, r, "upstream", 1)
		})
		t.Run("CancelledContext", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			_, err := r.InsertEvents(cancelled(t), series(id, 1, 1, "topic"), upstream(1))
			requireCanceled(t, err, "InsertEvents with WithTracking")
			requireNoEvents(t, r, id, "after InsertEvents with a cancelled context")
			requireMark(t, r, "upstream", 0)
		})
	})
}

func insertTracking(t *testing.T, r es.TrackingRecorder, app string, n int64) {
	t.Helper()
	if err := r.InsertTracking(t.Context(), es.Tracking{ApplicationName: app, NotificationID: n}); err != nil {
		t.Fatalf("InsertTracking(%s, %d): unexpected error: %v", app, n, err)
	}
}

func requireMark(t *testing.T, r es.TrackingRecorder, app string, want int64) {
	t.Helper()
	got, err := r.MaxTrackingID(t.Context(), app)
	if err != nil {
		t.Fatalf("MaxTrackingID(%s): unexpected error: %v", app, err)
	}
	if got != want {
		t.Fatalf("MaxTrackingID(%s) = %d, want %d", app, got, want)
	}
}

func requireHas(t *testing.T, r es.TrackingRecorder, app string, n int64, want bool) {
	t.Helper()
	got, err := r.HasTrackingID(t.Context(), app, n)
	if err != nil {
		t.Fatalf("HasTrackingID(%s, %d): unexpected error: %v", app, n, err)
	}
	if got != want {
		t.Fatalf("HasTrackingID(%s, %d) = %v, want %v", app, n, got, want)
	}
}

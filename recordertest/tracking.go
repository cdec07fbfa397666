package recordertest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// A consumer's mark for an upstream, as the tracking rules address it.
type markKey struct{ consumer, upstream string }

// The marks most rules use.
var (
	proj = markKey{"projection", "upstream"}
	peer = markKey{"other projection", "upstream"}
	away = markKey{"projection", "other upstream"}
)

// tracking makes the record that moves k's mark from prior to n.
func (k markKey) tracking(prior, n int64) es.Tracking {
	return es.Tracking{Consumer: k.consumer, Upstream: k.upstream, NotificationID: n, Prior: prior}
}

func (k markKey) String() string { return fmt.Sprintf("%s/%s", k.consumer, k.upstream) }

// runTracking runs the rules of an eventsourcing.TrackingRecorder.
func runTracking(t *testing.T, newRecorder func(t *testing.T) es.TrackingRecorder) {
	t.Helper()
	t.Run("Tracking", func(t *testing.T) {
		t.Run("NothingTracked", func(t *testing.T) {
			r := newRecorder(t)
			requireMark(t, r, proj, 0)
			requireHas(t, r, proj, 1, false)
			requireMarks(t, r, nil)
		})
		t.Run("CompareAndSet", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, proj.tracking(0, 3))
			requireMark(t, r, proj, 3)
			insertTracking(t, r, proj.tracking(3, 4))
			requireMark(t, r, proj, 4)
			for n, want := range map[int64]bool{1: true, 3: true, 4: true, 5: false, 100: false} {
				requireHas(t, r, proj, n, want)
			}
		})
		t.Run("PriorMustBeTheMark", func(t *testing.T) {
			// A record whose work started after another mark than the recorded one (a second instance
			// of the consumer, or a stale one) must not commit: it would apply notifications twice.
			r := newRecorder(t)
			requireConflict(t, r.InsertTracking(t.Context(), proj.tracking(2, 3)), "InsertTracking(prior 2, 3) with no mark")
			requireMark(t, r, proj, 0)
			insertTracking(t, r, proj.tracking(0, 5))
			for _, rec := range []es.Tracking{proj.tracking(4, 6), proj.tracking(0, 7), proj.tracking(0, 5), proj.tracking(6, 8)} {
				requireConflict(t, r.InsertTracking(t.Context(), rec), fmt.Sprintf("InsertTracking(prior %d, %d) with the mark at 5", rec.Prior, rec.NotificationID))
			}
			requireMark(t, r, proj, 5)
			insertTracking(t, r, proj.tracking(5, 6))
			requireMark(t, r, proj, 6)
		})
		t.Run("MarksNeverGoBack", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, proj.tracking(0, 2))
			insertTracking(t, r, proj.tracking(2, 10))
			requireHas(t, r, proj, 5, true) // below the mark counts as processed
			for _, n := range []int64{10, 5, 1} {
				requireConflict(t, r.InsertTracking(t.Context(), proj.tracking(10, n)), fmt.Sprintf("InsertTracking(prior 10, %d)", n))
			}
			requireMark(t, r, proj, 10)
		})
		t.Run("ConsumersAndUpstreamsAreIndependent", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, proj.tracking(0, 7))
			insertTracking(t, r, peer.tracking(0, 2))
			insertTracking(t, r, peer.tracking(2, 3))
			insertTracking(t, r, away.tracking(0, 1))
			requireMark(t, r, proj, 7)
			requireMark(t, r, peer, 3)
			requireMark(t, r, away, 1)
			requireMark(t, r, markKey{"nobody", "upstream"}, 0)
			requireHas(t, r, peer, 7, false)
			requireMarks(t, r, []es.Tracking{
				peer.tracking(0, 3), away.tracking(0, 1), proj.tracking(0, 7), // by consumer, then upstream
			})
		})
		t.Run("ConcurrentFirstMarks", func(t *testing.T) {
			r := newRecorder(t)
			const n = 8
			var o outcomes
			concurrently(n, func(i int) {
				o.add(i, r.InsertTracking(t.Context(), proj.tracking(0, 1)))
			})
			o.winner(t, n, "InsertTracking(prior 0, 1)")
			requireMark(t, r, proj, 1)
		})
		t.Run("ConcurrentBatchesFromOneMark", func(t *testing.T) {
			// Instances that started from the same mark with batches of different lengths: one wins.
			r := newRecorder(t)
			insertTracking(t, r, proj.tracking(0, 10))
			const n = 8
			var o outcomes
			concurrently(n, func(i int) {
				o.add(i, r.InsertTracking(t.Context(), proj.tracking(10, int64(11+i))))
			})
			w := o.winner(t, n, "InsertTracking(prior 10, 11+i)")
			requireMark(t, r, proj, int64(11+w))
		})
		t.Run("DeleteTracking", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, proj.tracking(0, 7))
			insertTracking(t, r, peer.tracking(0, 4))
			insertTracking(t, r, away.tracking(0, 2))
			deleteTracking(t, r, proj)
			requireMark(t, r, proj, 0)
			requireMarks(t, r, []es.Tracking{peer.tracking(0, 4), away.tracking(0, 2)})
			deleteTracking(t, r, proj) // a mark that is not there
			// A deleted mark starts over: the rebuild of a projection.
			requireConflict(t, r.InsertTracking(t.Context(), proj.tracking(7, 8)), "InsertTracking(prior 7, 8) after the mark was deleted")
			insertTracking(t, r, proj.tracking(0, 3))
			requireMark(t, r, proj, 3)
		})
		t.Run("CancelledContext", func(t *testing.T) {
			r := newRecorder(t)
			requireCanceled(t, r.InsertTracking(cancelled(t), proj.tracking(0, 1)), "InsertTracking")
			_, err := r.MaxTrackingID(cancelled(t), proj.consumer, proj.upstream)
			requireCanceled(t, err, "MaxTrackingID")
			_, err = r.HasTrackingID(cancelled(t), proj.consumer, proj.upstream, 1)
			requireCanceled(t, err, "HasTrackingID")
			_, err = r.TrackingMarks(cancelled(t))
			requireCanceled(t, err, "TrackingMarks")
			requireCanceled(t, r.DeleteTracking(cancelled(t), proj.consumer, proj.upstream), "DeleteTracking")
			requireMark(t, r, proj, 0)
		})
	})
}

// runProcess runs the rules of events and tracking recorded together (eventsourcing.WithTracking).
func runProcess(t *testing.T, newRecorder func(t *testing.T) es.ProcessRecorder) {
	t.Helper()
	t.Run("WithTracking", func(t *testing.T) {
		track := func(prior, n int64) es.InsertOption { return es.WithTracking(proj.tracking(prior, n)) }
		t.Run("EventsAndTracking", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			events := series(id, 1, 2, "topic")
			ids, err := r.InsertEvents(t.Context(), events, track(0, 4))
			if err != nil {
				t.Fatalf("InsertEvents(%s, WithTracking(prior 0, 4)): %v", describe(events), err)
			}
			checkIDs(t, r, events, ids)
			requireEvents(t, "SelectEvents", selectEvents(t, r, id, es.EventQuery{}), events)
			requireNotifications(t, "SelectNotifications", readAll(t, r, 0), notifications(ids, events))
			requireMark(t, r, proj, 4)
			requireHas(t, r, proj, 4, true)
		})
		t.Run("ConflictingTrackingWritesNoEvents", func(t *testing.T) {
			r := newRecorder(t)
			insertTracking(t, r, proj.tracking(0, 4))
			id := uuid.New()
			for _, tr := range [][2]int64{{0, 5}, {4, 4}, {4, 3}, {3, 6}} {
				_, err := r.InsertEvents(t.Context(), series(id, 1, 2, "topic"), track(tr[0], tr[1]))
				requireConflict(t, err, fmt.Sprintf("InsertEvents(…, WithTracking(prior %d, %d)) with the mark at 4", tr[0], tr[1]))
				requireNoEvents(t, r, id, "after InsertEvents failed on its tracking record")
				requireMax(t, r, 0)
				requireMark(t, r, proj, 4)
			}
		})
		t.Run("ConflictingEventsWriteNoTracking", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			recorded := series(id, 1, 1, "topic")
			ids := insert(t, r, recorded...)
			_, err := r.InsertEvents(t.Context(), series(id, 1, 2, "topic"), track(0, 1))
			requireConflict(t, err, "InsertEvents(version 1 recorded already, WithTracking(prior 0, 1))")
			requireMark(t, r, proj, 0)
			requireHas(t, r, proj, 1, false)
			requireEvents(t, "SelectEvents after the failed insert", selectEvents(t, r, id, es.EventQuery{}), recorded)
			requireMax(t, r, ids[0])
		})
		t.Run("NoEventsWithTracking", func(t *testing.T) {
			// A processed batch that caused no event is still recorded as processed.
			r := newRecorder(t)
			ids, err := r.InsertEvents(t.Context(), nil, track(0, 9))
			if err != nil {
				t.Fatalf("InsertEvents(no events, WithTracking(prior 0, 9)): %v", err)
			}
			if len(ids) != 0 {
				t.Fatalf("InsertEvents(no events, WithTracking(prior 0, 9)) returned IDs %v, want none", ids)
			}
			requireMark(t, r, proj, 9)
			requireMax(t, r, 0)
			_, err = r.InsertEvents(t.Context(), []es.StoredEvent{}, track(0, 9))
			requireConflict(t, err, "InsertEvents(no events, WithTracking(prior 0, 9)) again")
		})
		t.Run("StaleInstance", func(t *testing.T) {
			// Two instances read the mark 3. One records the batch up to 5; the other, which read the
			// same notifications and more, must not record its batch up to 8 over it: that would apply
			// 4 and 5 twice. "Above the mark" alone would let it.
			r := newRecorder(t)
			insertTracking(t, r, proj.tracking(0, 3))
			first, stale := uuid.New(), uuid.New()
			if _, err := r.InsertEvents(t.Context(), series(first, 1, 2, "topic"), track(3, 5)); err != nil {
				t.Fatalf("InsertEvents(…, WithTracking(prior 3, 5)): %v", err)
			}
			_, err := r.InsertEvents(t.Context(), series(stale, 1, 5, "topic"), track(3, 8))
			requireConflict(t, err, "InsertEvents(…, WithTracking(prior 3, 8)) after the mark moved to 5")
			requireNoEvents(t, r, stale, "after the stale instance's batch failed")
			requireMark(t, r, proj, 5)
		})
		t.Run("ConcurrentBatchesFromOneMark", func(t *testing.T) {
			// Exactly once: of instances racing to record batches that start after the same mark, one
			// wins and only its events are recorded.
			r := newRecorder(t)
			insertTracking(t, r, proj.tracking(0, 3))
			const n = 8
			originators := make([]uuid.UUID, n)
			for i := range originators {
				originators[i] = uuid.New()
			}
			var o outcomes
			concurrently(n, func(i int) {
				_, err := r.InsertEvents(t.Context(), series(originators[i], 1, 2, "topic"), track(3, int64(4+i)))
				o.add(i, err)
			})
			w := o.winner(t, n, "InsertEvents(…, WithTracking(prior 3, 4+i))")
			for i, id := range originators {
				if i != w {
					requireNoEvents(t, r, id, fmt.Sprintf("writer %d lost the race to writer %d", i, w))
				}
			}
			requireEvents(t, "SelectEvents of the winner", selectEvents(t, r, originators[w], es.EventQuery{}), series(originators[w], 1, 2, "topic"))
			if got := readAll(t, r, 0); len(got) != 2 {
				t.Fatalf("the log holds %d notifications after the race, want the winner's 2", len(got))
			}
			requireMark(t, r, proj, int64(4+w))
		})
		t.Run("CancelledContext", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			_, err := r.InsertEvents(cancelled(t), series(id, 1, 1, "topic"), track(0, 1))
			requireCanceled(t, err, "InsertEvents with WithTracking")
			requireNoEvents(t, r, id, "after InsertEvents with a cancelled context")
			requireMark(t, r, proj, 0)
		})
	})
}

func insertTracking(t *testing.T, r es.TrackingRecorder, rec es.Tracking) {
	t.Helper()
	if err := r.InsertTracking(t.Context(), rec); err != nil {
		t.Fatalf("InsertTracking(%+v): unexpected error: %v", rec, err)
	}
}

func deleteTracking(t *testing.T, r es.TrackingRecorder, k markKey) {
	t.Helper()
	if err := r.DeleteTracking(t.Context(), k.consumer, k.upstream); err != nil {
		t.Fatalf("DeleteTracking(%s): unexpected error: %v", k, err)
	}
}

func requireMark(t *testing.T, r es.TrackingRecorder, k markKey, want int64) {
	t.Helper()
	got, err := r.MaxTrackingID(t.Context(), k.consumer, k.upstream)
	if err != nil {
		t.Fatalf("MaxTrackingID(%s): unexpected error: %v", k, err)
	}
	if got != want {
		t.Fatalf("MaxTrackingID(%s) = %d, want %d", k, got, want)
	}
}

func requireHas(t *testing.T, r es.TrackingRecorder, k markKey, n int64, want bool) {
	t.Helper()
	got, err := r.HasTrackingID(t.Context(), k.consumer, k.upstream, n)
	if err != nil {
		t.Fatalf("HasTrackingID(%s, %d): unexpected error: %v", k, n, err)
	}
	if got != want {
		t.Fatalf("HasTrackingID(%s, %d) = %v, want %v", k, n, got, want)
	}
}

// requireMarks checks TrackingMarks against want (whose Prior fields are 0).
func requireMarks(t *testing.T, r es.TrackingRecorder, want []es.Tracking) {
	t.Helper()
	got, err := r.TrackingMarks(t.Context())
	if err != nil {
		t.Fatalf("TrackingMarks: unexpected error: %v", err)
	}
	if len(got) != 0 || len(want) != 0 {
		if !slices.Equal(got, want) {
			t.Fatalf("TrackingMarks = %+v, want %+v", got, want)
		}
	}
}

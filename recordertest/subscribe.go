package recordertest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// runSubscribe runs the rules of eventsourcing.ApplicationRecorder.Subscribe.
func runSubscribe(t *testing.T, newRecorder func(t *testing.T) es.ApplicationRecorder) {
	t.Helper()
	t.Run("Subscribe", func(t *testing.T) {
		t.Run("History", func(t *testing.T) {
			r := newRecorder(t)
			a, b := uuid.New(), uuid.New()
			var want []es.Notification
			for _, batch := range [][]es.StoredEvent{series(a, 1, 3, "x"), {ev(b, 1, "y", "b1")}, {ev(a, 4, "x", "a4"), ev(b, 2, "y", "b2"), ev(a, 5, "x", "a5")}} {
				want = append(want, notifications(insert(t, r, batch...), batch)...)
			}
			s := subscribe(t, r, 0)
			got := s.expect(t, "Subscribe(after 0)", want)
			// What a subscription yields is the caller's to modify (want is copied first, in case the
			// recorder yields the very slices it was given).
			want = deepCopy(want)
			for _, n := range got {
				for i := range n.State {
					n.State[i] = 'X'
				}
			}
			requireNotifications(t, "SelectNotifications after modifying the states a subscription yielded", readAll(t, r, 0), want)
			s.stop(t)
		})
		t.Run("HistoryThenLive", func(t *testing.T) {
			r := newRecorder(t)
			a, b := uuid.New(), uuid.New()
			first := series(a, 1, 4, "x")
			want := notifications(insert(t, r, first...), first)
			s := subscribe(t, r, 0)
			s.expect(t, "Subscribe(after 0): the history", want)
			for _, batch := range [][]es.StoredEvent{{ev(b, 1, "y", "b1"), ev(a, 5, "x", "a5"), ev(b, 2, "y", "b2")}, {ev(a, 6, "x", "a6")}, {ev(b, 3, "y", "b3")}} {
				live := notifications(insert(t, r, batch...), batch)
				s.expect(t, fmt.Sprintf("Subscribe(after 0): the events of InsertEvents(%s) recorded after it caught up", describe(batch)), live)
			}
			s.quiet(t)
			s.stop(t)
		})
		t.Run("LiveFromEmptyStore", func(t *testing.T) {
			r := newRecorder(t)
			s := subscribe(t, r, 0)
			id := uuid.New()
			for v := int64(1); v <= 3; v++ {
				e := ev(id, v, "topic", fmt.Sprintf("v%d", v))
				want := notifications(insert(t, r, e), []es.StoredEvent{e})
				s.expect(t, fmt.Sprintf("a subscription started on an empty store, after version %d was recorded", v), want)
			}
			s.stop(t)
		})
		t.Run("After", func(t *testing.T) {
			r := newRecorder(t)
			events := series(uuid.New(), 1, 10, "topic")
			all := notifications(insert(t, r, events...), events)
			s := subscribe(t, r, all[3].ID)
			s.expect(t, fmt.Sprintf("Subscribe(after %d)", all[3].ID), all[4:])
			more := ev(events[0].OriginatorID, 11, "topic", "v11")
			live := notifications(insert(t, r, more), []es.StoredEvent{more})
			s.expect(t, "the subscription, after another event", live)
			s.stop(t)
		})
		t.Run("AfterAheadOfLog", func(t *testing.T) {
			// after may be above the highest ID: only later notifications above it are yielded.
			r := newRecorder(t)
			id := uuid.New()
			ids := insert(t, r, series(id, 1, 3, "topic")...)
			after := ids[2] + 2
			s := subscribe(t, r, after)
			events := series(id, 4, 8, "topic")
			var want []es.Notification
			for _, n := range notifications(insert(t, r, events...), events) {
				if n.ID > after {
					want = append(want, n)
				}
			}
			s.expect(t, fmt.Sprintf("Subscribe(after %d) with the highest ID %d", after, ids[2]), want)
			s.quiet(t)
			s.stop(t)
		})
		t.Run("Topics", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			var all []es.Notification
			for i := int64(1); i <= 12; i++ {
				e := ev(id, i, []string{"a", "b", "c"}[i%3], fmt.Sprintf("v%d", i))
				all = append(all, notifications(insert(t, r, e), []es.StoredEvent{e})...)
			}
			only := func(ns []es.Notification, after int64, topics ...string) []es.Notification {
				var out []es.Notification
				for _, n := range ns {
					if n.ID > after && slices.Contains(topics, n.Topic) {
						out = append(out, n)
					}
				}
				return out
			}
			s := subscribe(t, r, 0, "a", "c")
			want := only(all, 0, "a", "c")
			s.expect(t, `Subscribe(after 0, "a", "c")`, want)
			s2 := subscribe(t, r, all[6].ID, "b")
			want = only(all, all[6].ID, "b")
			s2.expect(t, fmt.Sprintf(`Subscribe(after %d, "b")`, all[6].ID), want)

			// Live: events of other topics are passed over.
			batch := []es.StoredEvent{ev(id, 13, "b", "v13"), ev(id, 14, "b", "v14"), ev(id, 15, "c", "v15")}
			live := notifications(insert(t, r, batch...), batch)
			s.expect(t, `Subscribe(after 0, "a", "c") after events of topics b, b, c`, live[2:])
			s2.expect(t, fmt.Sprintf(`Subscribe(after %d, "b") after events of topics b, b, c`, all[6].ID), live[:2])
			s.quiet(t)
			s.stop(t)
			s2.stop(t)
		})
		t.Run("ConcurrentWriters", func(t *testing.T) {
			// Writers commit batches while subscriptions start and catch up: each must yield every
			// notification above its after exactly once, in order.
			r := newRecorder(t)
			writers, batches := concurrency()
			writers, batches = max(writers/2, 2), max(batches/3, 5)
			var done atomic.Int64
			midway := make(chan struct{})
			var once sync.Once
			var firstWave []batchResult
			firstDone := make(chan struct{})
			t.Cleanup(func() { waitBriefly(firstDone) })
			go func() {
				defer close(firstDone)
				firstWave = writeBatches(t, r, writers, batches, func() {
					if done.Add(1) >= int64(writers*batches/3) {
						once.Do(func() { close(midway) })
					}
				})
			}()
			select {
			case <-midway:
			case <-firstDone:
			case <-time.After(waitTimeout):
				t.Fatalf("writers did not record a third of their batches within %v", waitTimeout)
			}
			m, err := r.MaxNotificationID(t.Context())
			if err != nil {
				t.Fatalf("MaxNotificationID: %v", err)
			}
			after := m / 2
			all := subscribe(t, r, after)
			filtered := subscribe(t, r, after, "topic-x")
			// A second wave of writers starts after the subscriptions did, so that they also follow live.
			secondWave := writeBatches(t, r, writers, batches, nil)
			run(t, "the first wave of writers", func() { <-firstDone })
			if t.Failed() {
				return
			}

			byID := make(map[int64]es.StoredEvent)
			for _, b := range slices.Concat(firstWave, secondWave) {
				for i, id := range b.ids {
					byID[id] = b.events[i]
				}
			}
			var want, wantX []es.Notification
			for _, id := range sortedKeys(byID) {
				if id > after {
					n := es.Notification{ID: id, StoredEvent: byID[id]}
					want = append(want, n)
					if n.Topic == "topic-x" {
						wantX = append(wantX, n)
					}
				}
			}
			all.expect(t, fmt.Sprintf("Subscribe(after %d) with concurrent writers", after), want)
			filtered.expect(t, fmt.Sprintf(`Subscribe(after %d, "topic-x") with concurrent writers`, after), wantX)
			all.quiet(t)
			filtered.quiet(t)
			all.stop(t)
			filtered.stop(t)
		})
		t.Run("StartedDuringWrites", func(t *testing.T) { subscribeDuringWrites(t, newRecorder) })
		t.Run("CancelWhileWaiting", func(t *testing.T) {
			r := newRecorder(t)
			insert(t, r, series(uuid.New(), 1, 2, "topic")...)
			s := subscribe(t, r, 0)
			s.take(t, 2)
			s.stop(t) // the iteration must end, without an error
		})
		t.Run("CancelWhileReadingHistory", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			for v := int64(1); v <= 60; v += 20 {
				insert(t, r, series(id, v, v+19, "topic")...)
			}
			s := subscribe(t, r, 0)
			s.take(t, 1)
			s.stop(t)
		})
		t.Run("CancelledContext", func(t *testing.T) {
			r := newRecorder(t)
			insert(t, r, series(uuid.New(), 1, 3, "topic")...)
			var errs []error
			run(t, "a range loop over Subscribe with a cancelled context", func() {
				for _, err := range r.Subscribe(cancelled(t), 0) {
					if err != nil {
						errs = append(errs, err)
					}
				}
			})
			if len(errs) > 0 {
				t.Fatalf("Subscribe with a cancelled context yielded errors %v; the end of ctx ends it without an error", errs)
			}
		})
		t.Run("BreakEarly", func(t *testing.T) {
			// Breaking out of the range loop ends the subscription: the loop returns and nothing is left
			// running, whether it broke out during the history or live.
			r := newRecorder(t)
			id := uuid.New()
			insert(t, r, series(id, 1, 3, "topic")...)
			version := int64(3)
			fromHistory := func() {
				t.Helper()
				run(t, "a range loop over Subscribe that breaks out during the history", func() {
					for _, err := range r.Subscribe(t.Context(), 0) {
						if err != nil {
							report(t, "Subscribe(after 0): %v", err)
						}
						break
					}
				})
			}
			live := func() {
				t.Helper()
				m, err := r.MaxNotificationID(t.Context())
				if err != nil {
					t.Fatalf("MaxNotificationID: %v", err)
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					for _, err := range r.Subscribe(t.Context(), m) {
						if err != nil {
							report(t, "Subscribe(after %d): %v", m, err)
						}
						break
					}
				}()
				version++
				insert(t, r, ev(id, version, "topic", "live"))
				run(t, "a range loop over Subscribe that breaks out after a live notification", func() { <-done })
			}
			fromHistory() // warm-up: whatever a recorder starts once and keeps is not a leak
			live()
			before := runtime.NumGoroutine()
			for range 5 {
				fromHistory()
				live()
			}
			deadline := time.Now().Add(waitTimeout)
			for {
				after := runtime.NumGoroutine()
				if after <= before+2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines before 10 subscriptions ended by breaking out of the loop, still %d after %v: subscriptions leak goroutines", before, after, waitTimeout)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	})
}

// writeBatches has writers record batches of 3 events each concurrently, over two originators per writer
// and the topics topic-x and topic-y, calling onBatch (if not nil) after each, and returns what they
// recorded. Errors fail the test.
func writeBatches(t *testing.T, r es.AggregateRecorder, writers, batches int, onBatch func()) []batchResult {
	results := make([][]batchResult, writers)
	concurrently(writers, func(w int) {
		a, b := uuid.New(), uuid.New()
		topics := []string{"topic-x", "topic-y"}
		for i := range int64(batches) {
			batch := []es.StoredEvent{
				ev(a, 2*i+1, topics[i%2], fmt.Sprintf("a%d", 2*i+1)),
				ev(b, i+1, topics[(i+1)%2], fmt.Sprintf("b%d", i+1)),
				ev(a, 2*i+2, topics[(i+int64(w))%2], fmt.Sprintf("a%d", 2*i+2)),
			}
			ids, err := r.InsertEvents(t.Context(), batch)
			if err != nil {
				report(t, "writer %d: InsertEvents(%s): %v", w, describe(batch), err)
				return
			}
			if len(ids) != len(batch) {
				report(t, "writer %d: InsertEvents(%s) returned %d IDs, want %d", w, describe(batch), len(ids), len(batch))
				return
			}
			results[w] = append(results[w], batchResult{ids, batch})
			if onBatch != nil {
				onBatch()
			}
		}
	})
	return slices.Concat(results...)
}

// subscription follows a Subscribe iteration running in its own goroutine.
type subscription struct {
	what     string
	cancel   context.CancelFunc
	items    chan es.Notification
	discard  chan struct{} // closed by stop: nobody takes items any more
	done     chan struct{} // closed when the iteration has ended
	last     int64         // the highest ID taken
	mu       sync.Mutex
	errs     []error
	stopOnce sync.Once
}

// subscribe starts ranging over r.Subscribe(ctx, after, topics...) in a goroutine. The test's cleanup
// stops it.
func subscribe(t *testing.T, r es.ApplicationRecorder, after int64, topics ...string) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &subscription{
		what:    fmt.Sprintf("Subscribe(after %d, topics %q)", after, topics),
		cancel:  cancel,
		items:   make(chan es.Notification),
		discard: make(chan struct{}),
		done:    make(chan struct{}),
		last:    after,
	}
	seq := r.Subscribe(ctx, after, topics...)
	go func() {
		defer close(s.done)
		for n, err := range seq {
			if err != nil {
				s.mu.Lock()
				s.errs = append(s.errs, err)
				s.mu.Unlock()
				continue
			}
			select {
			case s.items <- n:
			case <-s.discard:
			}
		}
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// expect waits for the notifications up to the last ID of want and checks that they are want.
func (s *subscription) expect(t *testing.T, call string, want []es.Notification) []es.Notification {
	t.Helper()
	if len(want) == 0 {
		return nil
	}
	got := s.until(t, want[len(want)-1].ID)
	requireNotifications(t, call, got, want)
	return got
}

// take waits for the next n notifications, checking that IDs ascend.
func (s *subscription) take(t *testing.T, n int) []es.Notification {
	t.Helper()
	return s.receive(t, func(got []es.Notification) bool { return len(got) >= n }, fmt.Sprintf("%d notifications", n))
}

// until waits for notifications up to and including ID id, checking that IDs ascend.
func (s *subscription) until(t *testing.T, id int64) []es.Notification {
	t.Helper()
	return s.receive(t, func([]es.Notification) bool { return s.last >= id }, fmt.Sprintf("notifications up to ID %d", id))
}

func (s *subscription) receive(t *testing.T, enough func([]es.Notification) bool, want string) []es.Notification {
	t.Helper()
	var got []es.Notification
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for !enough(got) {
		select {
		case n := <-s.items:
			if n.ID <= s.last {
				t.Fatalf("%s yielded ID %d after ID %d: IDs must ascend, each once (received so far: %v)", s.what, n.ID, s.last, abbreviate(notificationIDs(got)))
			}
			s.last = n.ID
			got = append(got, n)
		case <-s.done:
			s.mu.Lock()
			errs := s.errs
			s.mu.Unlock()
			t.Fatalf("%s ended before yielding %s (received %v); errors yielded: %v", s.what, want, abbreviate(notificationIDs(got)), errs)
		case <-timer.C:
			t.Fatalf("%s did not yield %s within %v: received %v", s.what, want, waitTimeout, abbreviate(notificationIDs(got)))
		}
	}
	return got
}

// quiet checks that nothing more arrives for a moment: a duplicate or a notification the subscription
// should not yield would show up here. It cannot fail a correct recorder, however slow.
func (s *subscription) quiet(t *testing.T) {
	t.Helper()
	select {
	case n := <-s.items:
		t.Fatalf("%s yielded ID %d (%s) after every expected notification (last %d)", s.what, n.ID, show(n.StoredEvent), s.last)
	case <-s.done:
		t.Fatalf("%s ended by itself before its context was cancelled", s.what)
	case <-time.After(100 * time.Millisecond):
	}
}

// stop cancels the subscription's context and checks that the iteration ends, without an error.
func (s *subscription) stop(t *testing.T) {
	t.Helper()
	s.stopOnce.Do(func() {
		s.cancel()
		close(s.discard)
		select {
		case <-s.done:
		case <-time.After(waitTimeout):
			t.Errorf("%s did not end within %v after its context was cancelled", s.what, waitTimeout)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, err := range s.errs {
			t.Errorf("%s yielded an error: %v (the end of its context must end it without one)", s.what, err)
		}
	})
}

// end waits for the subscription to end by itself (without its context ending) and returns the error
// it ended with, nil if none.
func (s *subscription) end(t *testing.T) error {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not end within %v", s.what, waitTimeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := s.errs
	s.errs = nil
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

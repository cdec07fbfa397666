package recordertest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// runApplication runs the rules of an eventsourcing.ApplicationRecorder beyond those of an
// AggregateRecorder.
func runApplication(t *testing.T, newRecorder func(t *testing.T) es.ApplicationRecorder) {
	t.Helper()
	t.Run("NotificationIDs", func(t *testing.T) {
		t.Run("FreshStoreStartsAtOne", func(t *testing.T) {
			r := newRecorder(t)
			ids := insert(t, r, ev(uuid.New(), 1, "topic", "first"))
			if ids[0] != 1 {
				t.Fatalf("the first event recorded in a fresh store got notification ID %d, want 1", ids[0])
			}
		})
		t.Run("SequentialBatchesWithoutGaps", func(t *testing.T) {
			// No transaction fails, so there is no gap: 1, 2, 3 … in input order across batches, each
			// batch spanning several originators.
			r := newRecorder(t)
			a, b, c := uuid.New(), uuid.New(), uuid.New()
			batches := [][]es.StoredEvent{
				{ev(a, 1, "x", "a1")},
				{ev(b, 1, "y", "b1"), ev(a, 2, "x", "a2"), ev(c, 1, "z", "c1")},
				{ev(c, 2, "z", "c2"), ev(b, 2, "y", "b2")},
				{ev(a, 3, "x", "a3"), ev(a, 4, "x", "a4"), ev(b, 3, "y", "b3"), ev(c, 3, "z", "c3"), ev(a, 5, "x", "a5")},
			}
			var want []es.Notification
			for _, batch := range batches {
				ids := insert(t, r, batch...)
				for i, e := range batch {
					n := int64(len(want)) + 1
					if ids[i] != n {
						t.Fatalf("InsertEvents(%s) returned IDs %v, want %d… (consecutive from 1, in input order, with no failed transaction)", describe(batch), ids, int64(len(want))+1)
					}
					want = append(want, es.Notification{ID: n, StoredEvent: e})
				}
			}
			requireNotifications(t, "SelectNotifications of the whole log", readAll(t, r, 0), want)
			requireMax(t, r, int64(len(want)))
		})
		t.Run("FailedBatchesLeaveNoTrace", func(t *testing.T) {
			r := newRecorder(t)
			a, b := uuid.New(), uuid.New()
			first := []es.StoredEvent{ev(a, 1, "x", "a1"), ev(a, 2, "x", "a2"), ev(b, 1, "y", "b1")}
			ids := insert(t, r, first...)
			want := notifications(ids, first)

			c := uuid.New()
			failing := [][]es.StoredEvent{
				{ev(c, 1, "z", "c1"), ev(a, 2, "x", "clash")}, // version recorded already
				{ev(c, 1, "z", "c1"), ev(c, 1, "z", "twice")}, // version twice in the batch
			}
			for _, batch := range failing {
				_, err := r.InsertEvents(t.Context(), batch)
				requireConflict(t, err, fmt.Sprintf("InsertEvents(%s)", describe(batch)))
				requireMax(t, r, ids[len(ids)-1])
				requireNotifications(t, "SelectNotifications after a failed batch", readAll(t, r, 0), want)
				requireNoEvents(t, r, c, "after a failed batch")
			}

			second := []es.StoredEvent{ev(c, 1, "z", "c1"), ev(b, 2, "y", "b2")}
			ids2 := insert(t, r, second...)
			if ids2[0] <= ids[len(ids)-1] {
				t.Fatalf("after failed batches, InsertEvents returned IDs %v, not above the IDs %v recorded before", ids2, ids)
			}
			want = append(want, notifications(ids2, second)...)
			requireNotifications(t, "SelectNotifications after failed batches and a successful one", readAll(t, r, 0), want)
			requireMax(t, r, ids2[len(ids2)-1])
		})
		t.Run("ConcurrentBatchesDisjointAndNotInterleaved", func(t *testing.T) {
			r := newRecorder(t)
			writers, batches := concurrency()
			results := make([][]batchResult, writers)
			concurrently(writers, func(w int) {
				a, b := uuid.New(), uuid.New()
				for i := range int64(batches) {
					batch := []es.StoredEvent{
						ev(a, 2*i+1, "topic-a", fmt.Sprintf("w%d a%d", w, 2*i+1)),
						ev(b, i+1, "topic-b", fmt.Sprintf("w%d b%d", w, i+1)),
						ev(a, 2*i+2, "topic-a", fmt.Sprintf("w%d a%d", w, 2*i+2)),
					}
					ids, err := r.InsertEvents(t.Context(), batch)
					if err != nil {
						report(t, "writer %d: InsertEvents(%s): %v", w, describe(batch), err)
						return
					}
					results[w] = append(results[w], batchResult{ids, batch})
				}
			})
			if t.Failed() {
				return
			}
			checkBatches(t, r, slices.Concat(results...))
		})
		t.Run("NoLateFills", func(t *testing.T) {
			// A reader tails the log with SelectNotifications while writers commit batches, some of which
			// fail. Once the reader has seen ID n, no ID below n may appear: everything a full read
			// returns at the end must have been seen by the tailing reader.
			r := newRecorder(t)
			writers, batches := concurrency()
			writers, batches = max(writers/2, 2), max(batches/2, 10)

			var finished atomic.Bool
			var seen []es.Notification
			tailerDone := make(chan struct{})
			t.Cleanup(func() { waitBriefly(tailerDone) })
			go func() {
				defer close(tailerDone)
				var cursor int64
				for {
					last := finished.Load()
					page, err := r.SelectNotifications(t.Context(), es.NotificationQuery{After: cursor, Limit: 50})
					if err != nil {
						report(t, "tailing reader: SelectNotifications(After %d): %v", cursor, err)
						return
					}
					for _, n := range page {
						if n.ID <= cursor {
							report(t, "tailing reader: SelectNotifications(After %d) returned ID %d", cursor, n.ID)
							return
						}
						cursor = n.ID
					}
					seen = append(seen, page...)
					if len(page) == 0 {
						if last {
							return
						}
						time.Sleep(100 * time.Microsecond)
					}
				}
			}()

			results := make([][]batchResult, writers)
			var failedOriginators sync.Map
			concurrently(writers, func(w int) {
				a := uuid.New()
				for i := range int64(batches) {
					batch := []es.StoredEvent{ev(a, 2*i+1, "topic", fmt.Sprintf("w%d v%d", w, 2*i+1)), ev(a, 2*i+2, "topic", fmt.Sprintf("w%d v%d", w, 2*i+2))}
					ids, err := r.InsertEvents(t.Context(), batch)
					if err != nil {
						report(t, "writer %d: InsertEvents(%s): %v", w, describe(batch), err)
						return
					}
					results[w] = append(results[w], batchResult{ids, batch})
					if i%4 == 1 {
						// A failing batch whose first event would be fine: a rolled-back transaction.
						c := uuid.New()
						failedOriginators.Store(c, true)
						_, err := r.InsertEvents(t.Context(), []es.StoredEvent{ev(c, 1, "topic", "fails"), ev(a, 1, "topic", "clash")})
						if !errors.Is(err, es.ErrConflict) {
							report(t, "writer %d: InsertEvents with version 1 of %s recorded already: error %v, want one wrapping ErrConflict", w, a, err)
							return
						}
					}
				}
			})
			finished.Store(true)
			run(t, "the tailing reader, after the writers finished,", func() { <-tailerDone })
			if t.Failed() {
				return
			}
			all := readAll(t, r, 0)
			seenIDs := make(map[int64]bool, len(seen))
			for _, n := range seen {
				seenIDs[n.ID] = true
			}
			var late []int64
			for _, n := range all {
				if !seenIDs[n.ID] {
					late = append(late, n.ID)
				}
			}
			if len(late) > 0 {
				t.Fatalf("late fills: a reader tailing the log never saw IDs %v (of %d), which a full read returns afterwards: they appeared below IDs it had already seen", abbreviate(late), len(all))
			}
			checkBatches(t, r, slices.Concat(results...))
			failedOriginators.Range(func(k, _ any) bool {
				requireNoEvents(t, r, k.(uuid.UUID), "after a failed batch")
				return true
			})
		})
	})

	t.Run("SelectNotifications", func(t *testing.T) {
		t.Run("LimitBelowOneRefused", func(t *testing.T) {
			r := newRecorder(t)
			_, err := r.SelectNotifications(t.Context(), es.NotificationQuery{})
			if err == nil || !strings.Contains(err.Error(), "limit 0: must be at least 1") {
				t.Fatalf("SelectNotifications with limit 0: %v, want an error naming the limit", err)
			}
		})
		// fixture records 30 events of 3 originators with topics a, b, c in turn, in batches of 1 to 5.
		fixture := func(t *testing.T) (es.ApplicationRecorder, []es.Notification) {
			t.Helper()
			r := newRecorder(t)
			originators := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
			topics := []string{"a", "b", "c"}
			var all []es.StoredEvent
			for i := range 30 {
				id := originators[i%3]
				all = append(all, ev(id, int64(i/3+1), topics[(i/2)%3], fmt.Sprintf("event %d", i)))
			}
			var want []es.Notification
			for i, size := 0, 1; i < len(all); i, size = i+size, size%5+1 {
				batch := all[i:min(i+size, len(all))]
				want = append(want, notifications(insert(t, r, batch...), batch)...)
			}
			return r, want
		}
		// model applies a query to the notifications recorded.
		model := func(all []es.Notification, q es.NotificationQuery) []es.Notification {
			var out []es.Notification
			for _, n := range all {
				if n.ID > q.After && (q.UpTo == 0 || n.ID <= q.UpTo) && (len(q.Topics) == 0 || slices.Contains(q.Topics, n.Topic)) && len(out) < q.Limit {
					out = append(out, n)
				}
			}
			return out
		}
		t.Run("Queries", func(t *testing.T) {
			r, all := fixture(t)
			id := func(i int) int64 { return all[i].ID }
			cases := []struct {
				name string
				q    es.NotificationQuery
			}{
				{"All", es.NotificationQuery{Limit: 100}},
				{"AfterExclusive", es.NotificationQuery{After: id(9), Limit: 100}},
				{"AfterLast", es.NotificationQuery{After: id(29), Limit: 100}},
				{"UpToInclusive", es.NotificationQuery{UpTo: id(9), Limit: 100}},
				{"AfterAndUpTo", es.NotificationQuery{After: id(4), UpTo: id(12), Limit: 100}},
				{"AfterAboveUpTo", es.NotificationQuery{After: id(12), UpTo: id(4), Limit: 100}},
				{"Limit", es.NotificationQuery{Limit: 7}},
				{"AfterLimit", es.NotificationQuery{After: id(20), Limit: 4}},
				{"Topic", es.NotificationQuery{Topics: []string{"b"}, Limit: 100}},
				{"TopicFilterBeforeLimit", es.NotificationQuery{Topics: []string{"c"}, Limit: 3}},
				{"SeveralTopics", es.NotificationQuery{Topics: []string{"c", "a"}, Limit: 100}},
				{"UnknownTopic", es.NotificationQuery{Topics: []string{"nope"}, Limit: 100}},
				{"TopicAfterUpToLimit", es.NotificationQuery{After: id(3), UpTo: id(25), Topics: []string{"a"}, Limit: 4}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					requireNotifications(t, fmt.Sprintf("SelectNotifications(%+v)", c.q), selectNotifications(t, r, c.q), model(all, c.q))
				})
			}
		})
		t.Run("AllCombinations", func(t *testing.T) {
			r, all := fixture(t)
			last := all[len(all)-1].ID
			for _, after := range []int64{0, all[0].ID, all[6].ID, all[28].ID, last, last + 5} {
				for _, upTo := range []int64{0, all[0].ID, all[10].ID, last, last + 10} {
					for _, limit := range []int{1, 3, 100} {
						for _, topics := range [][]string{nil, {"a"}, {"a", "c"}, {"zzz"}} {
							q := es.NotificationQuery{After: after, UpTo: upTo, Limit: limit, Topics: topics}
							requireNotifications(t, fmt.Sprintf("SelectNotifications(%+v)", q), selectNotifications(t, r, q), model(all, q))
						}
					}
				}
			}
		})
		t.Run("LimitBelowOneIsAnError", func(t *testing.T) {
			r, _ := fixture(t)
			for _, limit := range []int{0, -1} {
				got, err := r.SelectNotifications(t.Context(), es.NotificationQuery{Limit: limit})
				if err == nil {
					t.Errorf("SelectNotifications(Limit %d): no error (and %d notifications), want an error", limit, len(got))
				}
			}
		})
		t.Run("EmptyStore", func(t *testing.T) {
			r := newRecorder(t)
			if got := selectNotifications(t, r, es.NotificationQuery{Limit: 10}); len(got) != 0 {
				t.Fatalf("SelectNotifications on an empty store returned %d notifications, want none", len(got))
			}
		})
		t.Run("NoAliasingOfOutput", func(t *testing.T) {
			r, all := fixture(t)
			got := selectNotifications(t, r, es.NotificationQuery{Limit: 100})
			all = deepCopy(all) // in case the recorder returns the very slices it was given
			for i := range got {
				for j := range got[i].State {
					got[i].State[j] = 'X'
				}
			}
			requireNotifications(t, "SelectNotifications after modifying the states of an earlier result", selectNotifications(t, r, es.NotificationQuery{Limit: 100}), all)
			id := all[0].OriginatorID
			var want []es.StoredEvent
			for _, n := range all {
				if n.OriginatorID == id {
					want = append(want, n.StoredEvent)
				}
			}
			requireEvents(t, "SelectEvents after modifying the states returned by SelectNotifications", selectEvents(t, r, id, es.EventQuery{}), want)
		})
		t.Run("CancelledContext", func(t *testing.T) {
			r, _ := fixture(t)
			_, err := r.SelectNotifications(cancelled(t), es.NotificationQuery{Limit: 10})
			requireCanceled(t, err, "SelectNotifications")
		})
	})

	t.Run("MaxNotificationID", func(t *testing.T) {
		t.Run("EmptyStore", func(t *testing.T) {
			requireMax(t, newRecorder(t), 0)
		})
		t.Run("AfterInserts", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			ids := insert(t, r, series(id, 1, 3, "topic")...)
			requireMax(t, r, ids[2])
			ids = insert(t, r, series(id, 4, 4, "topic")...)
			requireMax(t, r, ids[0])
			insert(t, r)
			requireMax(t, r, ids[0])
		})
		t.Run("CancelledContext", func(t *testing.T) {
			r := newRecorder(t)
			_, err := r.MaxNotificationID(cancelled(t))
			requireCanceled(t, err, "MaxNotificationID")
		})
	})

	runSubscribe(t, newRecorder)
}

// batchResult is a batch that a writer recorded and the IDs it got.
type batchResult struct {
	ids    []int64
	events []es.StoredEvent
}

// checkBatches checks batches recorded concurrently: each batch's IDs increase in input order, no ID is
// given twice, no batch's ID falls between another batch's lowest and highest, and the log holds exactly
// these events under these IDs.
func checkBatches(t *testing.T, r es.ApplicationRecorder, batches []batchResult) {
	t.Helper()
	byID := make(map[int64]es.StoredEvent)
	for _, b := range batches {
		if len(b.ids) != len(b.events) {
			t.Fatalf("InsertEvents(%s) returned %d IDs %v, want %d", describe(b.events), len(b.ids), b.ids, len(b.events))
		}
		for i, id := range b.ids {
			if i > 0 && id <= b.ids[i-1] {
				t.Fatalf("InsertEvents(%s) returned IDs %v: not increasing in input order", describe(b.events), b.ids)
			}
			if prev, dup := byID[id]; dup {
				t.Fatalf("notification ID %d was given to two events: %s and %s", id, show(prev), show(b.events[i]))
			}
			byID[id] = b.events[i]
		}
	}
	sorted := slices.Clone(batches)
	slices.SortFunc(sorted, func(x, y batchResult) int { return cmp.Compare(x.ids[0], y.ids[0]) })
	for i := 1; i < len(sorted); i++ {
		prev, next := sorted[i-1].ids, sorted[i].ids
		if next[0] <= prev[len(prev)-1] {
			t.Fatalf("concurrent batches interleave: one got IDs %v, another %v", prev, next)
		}
	}
	var want []es.Notification
	for _, id := range sortedKeys(byID) {
		want = append(want, es.Notification{ID: id, StoredEvent: byID[id]})
	}
	requireNotifications(t, "SelectNotifications of the whole log after concurrent batches", readAll(t, r, 0), want)
	requireMax(t, r, want[len(want)-1].ID)
}

// deepCopy copies notifications with their states.
func deepCopy(ns []es.Notification) []es.Notification {
	out := slices.Clone(ns)
	for i := range out {
		out[i].State = slices.Clone(out[i].State)
	}
	return out
}

// notifications pairs IDs with the events they were returned for.
func notifications(ids []int64, events []es.StoredEvent) []es.Notification {
	out := make([]es.Notification, len(events))
	for i, e := range events {
		out[i] = es.Notification{ID: ids[i], StoredEvent: e}
	}
	return out
}

func selectNotifications(t *testing.T, r es.ApplicationRecorder, q es.NotificationQuery) []es.Notification {
	t.Helper()
	got, err := r.SelectNotifications(t.Context(), q)
	if err != nil {
		t.Fatalf("SelectNotifications(%+v): unexpected error: %v", q, err)
	}
	return got
}

// readAll reads the log after the given ID page by page, checking that IDs ascend.
func readAll(t *testing.T, r es.ApplicationRecorder, after int64) []es.Notification {
	t.Helper()
	var out []es.Notification
	for {
		page := selectNotifications(t, r, es.NotificationQuery{After: after, Limit: 37})
		if len(page) == 0 {
			return out
		}
		if len(page) > 37 {
			t.Fatalf("SelectNotifications(After %d, Limit 37) returned %d notifications", after, len(page))
		}
		for _, n := range page {
			if n.ID <= after {
				t.Fatalf("SelectNotifications(After %d, Limit 37) returned IDs %v: not ascending after %d", after, notificationIDs(page), after)
			}
			after = n.ID
		}
		out = append(out, page...)
	}
}

// requireNotifications fails the test unless got equals want, element by element.
func requireNotifications(t *testing.T, call string, got, want []es.Notification) {
	t.Helper()
	if len(got) != len(want) || !slices.Equal(notificationIDs(got), notificationIDs(want)) {
		t.Fatalf("%s returned IDs %v, want %v", call, abbreviate(notificationIDs(got)), abbreviate(notificationIDs(want)))
	}
	for i := range got {
		if !sameEvent(got[i].StoredEvent, want[i].StoredEvent) {
			t.Fatalf("%s: notification %d is %s, want %s", call, got[i].ID, show(got[i].StoredEvent), show(want[i].StoredEvent))
		}
	}
}

// abbreviate shortens a long list of IDs for a failure message.
func abbreviate(ids []int64) string {
	if len(ids) <= 40 {
		return fmt.Sprint(ids)
	}
	return fmt.Sprintf("%v … %v (%d IDs)", ids[:20], ids[len(ids)-10:], len(ids))
}

func requireMax(t *testing.T, r es.ApplicationRecorder, want int64) {
	t.Helper()
	got, err := r.MaxNotificationID(t.Context())
	if err != nil {
		t.Fatalf("MaxNotificationID: unexpected error: %v", err)
	}
	if got != want {
		t.Fatalf("MaxNotificationID = %d, want %d", got, want)
	}
}

package recordertest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// runAggregate runs the rules of an eventsourcing.AggregateRecorder.
func runAggregate(t *testing.T, newRecorder func(t *testing.T) es.AggregateRecorder) {
	t.Helper()
	t.Run("InsertEvents", func(t *testing.T) {
		t.Run("OneEvent", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			e := ev(id, 1, "topic", "state")
			insert(t, r, e)
			requireEvents(t, "SelectEvents after inserting one event", selectEvents(t, r, id, es.EventQuery{}), []es.StoredEvent{e})
		})
		t.Run("SeveralOriginatorsInOneBatch", func(t *testing.T) {
			r := newRecorder(t)
			a, b, c := uuid.New(), uuid.New(), uuid.New()
			batch := []es.StoredEvent{ev(a, 1, "t1", "a1"), ev(b, 1, "t2", "b1"), ev(a, 2, "t3", "a2"), ev(c, 1, "t1", "c1"), ev(b, 2, "t2", "b2")}
			insert(t, r, batch...)
			requireEvents(t, "SelectEvents(a)", selectEvents(t, r, a, es.EventQuery{}), []es.StoredEvent{batch[0], batch[2]})
			requireEvents(t, "SelectEvents(b)", selectEvents(t, r, b, es.EventQuery{}), []es.StoredEvent{batch[1], batch[4]})
			requireEvents(t, "SelectEvents(c)", selectEvents(t, r, c, es.EventQuery{}), []es.StoredEvent{batch[3]})
		})
		t.Run("SuccessiveBatches", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			all := series(id, 1, 7, "topic")
			insert(t, r, all[:3]...)
			insert(t, r, all[3:4]...)
			insert(t, r, all[4:]...)
			requireEvents(t, "SelectEvents after three batches", selectEvents(t, r, id, es.EventQuery{}), all)
		})
		t.Run("EmptyBatch", func(t *testing.T) {
			r := newRecorder(t)
			for _, events := range [][]es.StoredEvent{nil, {}} {
				ids, err := r.InsertEvents(t.Context(), events)
				if err != nil {
					t.Fatalf("InsertEvents(%#v): unexpected error: %v", events, err)
				}
				if len(ids) != 0 {
					t.Fatalf("InsertEvents(%#v) returned IDs %v, want none", events, ids)
				}
			}
			id := uuid.New()
			insert(t, r, ev(id, 1, "topic", "after empty batches"))
			requireEvents(t, "SelectEvents after empty batches", selectEvents(t, r, id, es.EventQuery{}), []es.StoredEvent{ev(id, 1, "topic", "after empty batches")})
		})
		t.Run("ConflictWithRecordedVersionWritesNothing", func(t *testing.T) {
			// The conflicting event first, in the middle and last: nothing of the batch may remain.
			for pos, name := range []string{"first", "middle", "last"} {
				t.Run(name, func(t *testing.T) {
					r := newRecorder(t)
					a, b, c := uuid.New(), uuid.New(), uuid.New()
					recorded := series(a, 1, 2, "topic")
					insert(t, r, recorded...)
					others := []es.StoredEvent{ev(b, 1, "topic", "b1"), ev(b, 2, "topic", "b2"), ev(c, 1, "topic", "c1"), ev(a, 3, "topic", "a3")}
					clash := ev(a, 2, "topic", "clash")
					batch := slices.Insert(slices.Clone(others), pos*len(others)/2, clash)
					ids, err := r.InsertEvents(t.Context(), batch)
					requireConflict(t, err, fmt.Sprintf("InsertEvents(%s) with version 2 of %s recorded already", describe(batch), a))
					if len(ids) != 0 {
						t.Errorf("failed InsertEvents returned IDs %v, want none", ids)
					}
					requireEvents(t, "SelectEvents(a) after the conflicting batch", selectEvents(t, r, a, es.EventQuery{}), recorded)
					requireNoEvents(t, r, b, "after a conflicting batch")
					requireNoEvents(t, r, c, "after a conflicting batch")
				})
			}
		})
		t.Run("DuplicateVersionInBatchWritesNothing", func(t *testing.T) {
			r := newRecorder(t)
			a, b := uuid.New(), uuid.New()
			batch := []es.StoredEvent{ev(b, 1, "topic", "b1"), ev(a, 1, "topic", "a1"), ev(a, 2, "topic", "a2"), ev(a, 1, "topic", "a1 again")}
			_, err := r.InsertEvents(t.Context(), batch)
			requireConflict(t, err, fmt.Sprintf("InsertEvents(%s) with version 1 of %s twice", describe(batch), a))
			requireNoEvents(t, r, a, "after a batch with a duplicate version")
			requireNoEvents(t, r, b, "after a batch with a duplicate version")
			// The same events without the duplicate are fine afterwards.
			insert(t, r, batch[:3]...)
		})
		t.Run("SameVersionOfDifferentOriginators", func(t *testing.T) {
			r := newRecorder(t)
			a, b := uuid.New(), uuid.New()
			insert(t, r, ev(a, 1, "topic", "a1"), ev(b, 1, "topic", "b1"))
			insert(t, r, ev(a, 2, "topic", "a2"), ev(b, 2, "topic", "b2"))
			requireEvents(t, "SelectEvents(a)", selectEvents(t, r, a, es.EventQuery{}), []es.StoredEvent{ev(a, 1, "topic", "a1"), ev(a, 2, "topic", "a2")})
			requireEvents(t, "SelectEvents(b)", selectEvents(t, r, b, es.EventQuery{}), []es.StoredEvent{ev(b, 1, "topic", "b1"), ev(b, 2, "topic", "b2")})
		})
		t.Run("ConcurrentWritersOfOneOriginator", func(t *testing.T) {
			// Optimistic concurrency: of writers racing to record the same versions, exactly one wins and
			// only its events are recorded.
			r := newRecorder(t)
			id := uuid.New()
			insert(t, r, ev(id, 1, "topic", "v1"))
			const n = 8
			var o outcomes
			concurrently(n, func(i int) {
				_, err := r.InsertEvents(t.Context(), []es.StoredEvent{
					ev(id, 2, "topic", fmt.Sprintf("writer %d v2", i)), ev(id, 3, "topic", fmt.Sprintf("writer %d v3", i)),
				})
				o.add(i, err)
			})
			w := o.winner(t, n, "InsertEvents of versions 2 and 3 of one originator")
			requireEvents(t, "SelectEvents after the race", selectEvents(t, r, id, es.EventQuery{}), []es.StoredEvent{
				ev(id, 1, "topic", "v1"), ev(id, 2, "topic", fmt.Sprintf("writer %d v2", w)), ev(id, 3, "topic", fmt.Sprintf("writer %d v3", w)),
			})
		})
		t.Run("NonContiguousVersions", func(t *testing.T) {
			// Snapshot stores record versions with gaps, not always in ascending order.
			r := newRecorder(t)
			id := uuid.New()
			insert(t, r, ev(id, 10, "snapshot", "s10"))
			insert(t, r, ev(id, 30, "snapshot", "s30"), ev(id, 20, "snapshot", "s20"))
			insert(t, r, ev(id, 5, "snapshot", "s5"))
			want := []es.StoredEvent{ev(id, 5, "snapshot", "s5"), ev(id, 10, "snapshot", "s10"), ev(id, 20, "snapshot", "s20"), ev(id, 30, "snapshot", "s30")}
			requireEvents(t, "SelectEvents of versions 10, 30, 20, 5 recorded in that order", selectEvents(t, r, id, es.EventQuery{}), want)
			requireEvents(t, "SelectEvents(UpTo 25, Desc, Limit 1)", selectEvents(t, r, id, es.EventQuery{UpTo: 25, Desc: true, Limit: 1}), want[2:3])
			_, err := r.InsertEvents(t.Context(), []es.StoredEvent{ev(id, 20, "snapshot", "again")})
			requireConflict(t, err, "InsertEvents of version 20 recorded already")
		})
		t.Run("WithTrackingUnsupported", func(t *testing.T) {
			r := newRecorder(t)
			if _, ok := r.(es.TrackingRecorder); ok {
				t.Skip("the recorder is a TrackingRecorder; WithTracking is tested with the process recorder rules")
			}
			id := uuid.New()
			_, err := r.InsertEvents(t.Context(), []es.StoredEvent{ev(id, 1, "topic", "s")}, es.WithTracking(proj.tracking(0, 1)))
			if err == nil {
				t.Fatal("InsertEvents with WithTracking on a recorder that is not a TrackingRecorder: no error, want one")
			}
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("InsertEvents with WithTracking on a recorder that is not a TrackingRecorder: error %q does not wrap errors.ErrUnsupported", err)
			}
			requireNoEvents(t, r, id, "after InsertEvents failed with WithTracking")
		})
		t.Run("CancelledContext", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			_, err := r.InsertEvents(cancelled(t), []es.StoredEvent{ev(id, 1, "topic", "s")})
			requireCanceled(t, err, "InsertEvents")
			requireNoEvents(t, r, id, "after InsertEvents with a cancelled context")
		})
	})

	t.Run("SelectEvents", func(t *testing.T) {
		t.Run("NegativeLimitRefused", func(t *testing.T) {
			r := newRecorder(t)
			_, err := r.SelectEvents(t.Context(), uuid.New(), es.EventQuery{Limit: -1})
			if err == nil || !strings.Contains(err.Error(), "limit -1: must not be negative") {
				t.Fatalf("SelectEvents with limit -1: %v, want an error naming the limit", err)
			}
		})
		// fixture records versions 1..10 of one originator, interleaved with another's in the same batches.
		fixture := func(t *testing.T) (es.AggregateRecorder, uuid.UUID, []es.StoredEvent) {
			t.Helper()
			r := newRecorder(t)
			id, other := uuid.New(), uuid.New()
			all := series(id, 1, 10, "topic")
			noise := series(other, 1, 10, "noise")
			for i := 0; i < 10; i += 5 {
				var batch []es.StoredEvent
				for j := i; j < i+5; j++ {
					batch = append(batch, all[j], noise[j])
				}
				insert(t, r, batch...)
			}
			return r, id, all
		}
		pick := func(all []es.StoredEvent, vs ...int64) []es.StoredEvent {
			out := []es.StoredEvent{}
			for _, v := range vs {
				out = append(out, all[v-1])
			}
			return out
		}
		cases := []struct {
			name string
			q    es.EventQuery
			want []int64
		}{
			{"Ascending", es.EventQuery{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"Desc", es.EventQuery{Desc: true}, []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
			{"AfterExclusive", es.EventQuery{After: 7}, []int64{8, 9, 10}},
			{"AfterLast", es.EventQuery{After: 10}, nil},
			{"UpToInclusive", es.EventQuery{UpTo: 3}, []int64{1, 2, 3}},
			{"UpToBeyondLast", es.EventQuery{UpTo: 99}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"AfterAndUpTo", es.EventQuery{After: 3, UpTo: 6}, []int64{4, 5, 6}},
			{"AfterAboveUpTo", es.EventQuery{After: 6, UpTo: 3}, nil},
			{"Limit", es.EventQuery{Limit: 3}, []int64{1, 2, 3}},
			{"LimitAboveCount", es.EventQuery{Limit: 50}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"DescLimit", es.EventQuery{Desc: true, Limit: 2}, []int64{10, 9}},
			{"AfterLimit", es.EventQuery{After: 3, Limit: 2}, []int64{4, 5}},
			{"UpToLimit", es.EventQuery{UpTo: 8, Limit: 3}, []int64{1, 2, 3}},
			{"DescUpTo", es.EventQuery{Desc: true, UpTo: 4}, []int64{4, 3, 2, 1}},
			{"DescUpToLimit", es.EventQuery{Desc: true, UpTo: 7, Limit: 2}, []int64{7, 6}},
			{"DescAfterLimit", es.EventQuery{Desc: true, After: 8, Limit: 5}, []int64{10, 9}},
			{"DescAfterUpToLimit", es.EventQuery{Desc: true, After: 3, UpTo: 8, Limit: 3}, []int64{8, 7, 6}},
			{"AfterUpToLimit", es.EventQuery{After: 3, UpTo: 8, Limit: 3}, []int64{4, 5, 6}},
		}
		t.Run("Queries", func(t *testing.T) {
			r, id, all := fixture(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					requireEvents(t, fmt.Sprintf("SelectEvents(%+v)", c.q), selectEvents(t, r, id, c.q), pick(all, c.want...))
				})
			}
		})
		t.Run("AllCombinations", func(t *testing.T) {
			// Every combination of bounds, order and limit against a model of the rule: filter by
			// After < version <= UpTo, order, then limit.
			r, id, all := fixture(t)
			for _, after := range []int64{0, 1, 4, 9, 10, 12} {
				for _, upTo := range []int64{0, 1, 5, 10, 15} {
					for _, desc := range []bool{false, true} {
						for _, limit := range []int{0, 1, 3, 10, 20} {
							q := es.EventQuery{After: after, UpTo: upTo, Desc: desc, Limit: limit}
							var want []es.StoredEvent
							for _, e := range all {
								if e.OriginatorVersion > after && (upTo == 0 || e.OriginatorVersion <= upTo) {
									want = append(want, e)
								}
							}
							if desc {
								slices.Reverse(want)
							}
							if limit > 0 && len(want) > limit {
								want = want[:limit]
							}
							got := selectEvents(t, r, id, q)
							if !slices.Equal(versions(got), versions(want)) {
								t.Fatalf("SelectEvents(%+v) returned versions %v, want %v", q, versions(got), versions(want))
							}
							requireEvents(t, fmt.Sprintf("SelectEvents(%+v)", q), got, want)
						}
					}
				}
			}
		})
		t.Run("UnknownOriginator", func(t *testing.T) {
			r, _, _ := fixture(t)
			for _, q := range []es.EventQuery{{}, {Desc: true, Limit: 5}, {After: 2, UpTo: 8}} {
				got, err := r.SelectEvents(t.Context(), uuid.New(), q)
				if err != nil {
					t.Fatalf("SelectEvents(unknown originator, %+v): error %v, want an empty result", q, err)
				}
				if len(got) != 0 {
					t.Fatalf("SelectEvents(unknown originator, %+v) returned %s, want nothing", q, describe(got))
				}
			}
		})
		t.Run("EmptyStore", func(t *testing.T) {
			r := newRecorder(t)
			if got := selectEvents(t, r, uuid.New(), es.EventQuery{}); len(got) != 0 {
				t.Fatalf("SelectEvents on an empty store returned %s, want nothing", describe(got))
			}
		})
		t.Run("StateAndTopicRoundTrip", func(t *testing.T) {
			r := newRecorder(t)
			id := uuid.New()
			allBytes := make([]byte, 256)
			for i := range allBytes {
				allBytes[i] = byte(i)
			}
			large := make([]byte, 64<<10)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range large {
				large[i] = byte(rng.Uint32())
			}
			states := []struct {
				name  string
				state []byte
			}{
				{"nil", nil},
				{"empty", []byte{}},
				{"zero byte", []byte{0}},
				{"all byte values", allBytes},
				{"invalid UTF-8", []byte{0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80}},
				{"text with NUL and newlines", []byte("a\x00b\nc\r\n'\"\\%_")},
				{"64 KiB random", large},
			}
			topics := []string{"a", "Bank.AccountOpened", "ünïcødé/トピック", strings.Repeat("long-topic-", 20), "with 'quotes' and \"doubles\""}
			var batch []es.StoredEvent
			for i, s := range states {
				batch = append(batch, es.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i + 1), Topic: topics[i%len(topics)], State: s.state})
			}
			insert(t, r, batch...)
			got := selectEvents(t, r, id, es.EventQuery{})
			if len(got) != len(batch) {
				t.Fatalf("SelectEvents returned %d events, want %d", len(got), len(batch))
			}
			for i, s := range states {
				if !bytes.Equal(got[i].State, s.state) {
					t.Errorf("state %s did not round-trip: got %d bytes %.32x…, want %d bytes %.32x…", s.name, len(got[i].State), got[i].State, len(s.state), s.state)
				}
				if got[i].Topic != batch[i].Topic {
					t.Errorf("topic %q did not round-trip: got %q", batch[i].Topic, got[i].Topic)
				}
				if got[i].OriginatorID != id || got[i].OriginatorVersion != int64(i+1) {
					t.Errorf("event %d: got originator %s version %d, want %s version %d", i, got[i].OriginatorID, got[i].OriginatorVersion, id, i+1)
				}
			}
		})
		t.Run("NoAliasingOfInput", func(t *testing.T) {
			// Changing what was passed to InsertEvents afterwards must not change what is recorded.
			r := newRecorder(t)
			id := uuid.New()
			batch := []es.StoredEvent{ev(id, 1, "topic", "original one"), ev(id, 2, "topic", "original two")}
			insert(t, r, batch...)
			batch[0].State[0] = 'X'
			batch[1].State = append(batch[1].State[:0], "overwritten"...)
			batch[1].Topic = "changed"
			want := []es.StoredEvent{ev(id, 1, "topic", "original one"), ev(id, 2, "topic", "original two")}
			requireEvents(t, "SelectEvents after modifying the inserted slices", selectEvents(t, r, id, es.EventQuery{}), want)
		})
		t.Run("NoAliasingOfOutput", func(t *testing.T) {
			// Changing a returned state must change neither what is recorded nor other results.
			r := newRecorder(t)
			id := uuid.New()
			insert(t, r, ev(id, 1, "topic", "original one"), ev(id, 2, "topic", "original two"))
			want := []es.StoredEvent{ev(id, 1, "topic", "original one"), ev(id, 2, "topic", "original two")}
			got := selectEvents(t, r, id, es.EventQuery{})
			for i := range got {
				for j := range got[i].State {
					got[i].State[j] = 'X'
				}
				got[i].State = append(got[i].State, "appended"...)
			}
			requireEvents(t, "SelectEvents after modifying the states of an earlier result", selectEvents(t, r, id, es.EventQuery{}), want)
			requireEvents(t, "SelectEvents(Desc) after modifying the states of an earlier result", selectEvents(t, r, id, es.EventQuery{Desc: true}), []es.StoredEvent{want[1], want[0]})
		})
		t.Run("CancelledContext", func(t *testing.T) {
			r, id, _ := fixture(t)
			_, err := r.SelectEvents(cancelled(t), id, es.EventQuery{})
			requireCanceled(t, err, "SelectEvents")
		})
	})
}

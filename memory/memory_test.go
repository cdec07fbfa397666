package memory_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/recordertest"
)

func TestProcessRecorder(t *testing.T) {
	newAndZero(t, recordertest.TestProcessRecorder,
		func() es.ProcessRecorder { return memory.NewProcessRecorder() },
		func() es.ProcessRecorder { return new(memory.ProcessRecorder) })
}

func TestAggregateRecorder(t *testing.T) {
	newAndZero(t, recordertest.TestAggregateRecorder,
		func() es.AggregateRecorder { return memory.NewAggregateRecorder() },
		func() es.AggregateRecorder { return new(memory.AggregateRecorder) })
}

// newAndZero runs a conformance suite on recorders made by their constructor and on zero values.
func newAndZero[R any](t *testing.T, suite func(*testing.T, func(*testing.T) R), newRecorder, zero func() R) {
	for name, newR := range map[string]func() R{"New": newRecorder, "ZeroValue": zero} {
		t.Run(name, func(t *testing.T) { suite(t, func(*testing.T) R { return newR() }) })
	}
}

// TestInvalidEvents checks the input validation that goes beyond the contract.
func TestInvalidEvents(t *testing.T) {
	recorders := map[string]es.AggregateRecorder{
		"AggregateRecorder": memory.NewAggregateRecorder(),
		"ProcessRecorder":   memory.NewProcessRecorder(),
	}
	id := uuid.New()
	for name, r := range recorders {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				events []es.StoredEvent
				want   string
			}{
				{[]es.StoredEvent{{OriginatorID: id, OriginatorVersion: 1}, {OriginatorID: id, OriginatorVersion: 0}}, "event 1: originator " + id.String() + " version 0: versions start at 1"},
				{[]es.StoredEvent{{OriginatorID: id, OriginatorVersion: -3}}, "version -3"},
				{[]es.StoredEvent{{OriginatorID: uuid.Nil, OriginatorVersion: 1}}, "nil originator ID"},
			} {
				_, err := r.InsertEvents(t.Context(), c.events)
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "memory: insert events: ") {
					t.Errorf("InsertEvents(%v): error %v, want one containing %q", c.events, err, c.want)
				}
				if errors.Is(err, es.ErrConflict) {
					t.Errorf("InsertEvents(%v): error %v wraps ErrConflict", c.events, err)
				}
			}
			got, err := r.SelectEvents(t.Context(), id, es.EventQuery{})
			if err != nil || len(got) != 0 {
				t.Errorf("SelectEvents after invalid batches: %v, %v; want nothing recorded", got, err)
			}
			if _, err := r.SelectEvents(t.Context(), id, es.EventQuery{Limit: -1}); err == nil {
				t.Error("SelectEvents(Limit -1): no error")
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	ctx := t.Context()
	r := memory.NewProcessRecorder()
	id := uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	if _, err := r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: id, OriginatorVersion: 1}, {OriginatorID: id, OriginatorVersion: 2}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{second(r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: id, OriginatorVersion: 3}, {OriginatorID: id, OriginatorVersion: 2}})),
			"memory: insert events: originator 6ba7b810-9dad-11d1-80b4-00c04fd430c8 version 2: eventsourcing: conflict"},
		{second(r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: id, OriginatorVersion: 3}, {OriginatorID: id, OriginatorVersion: 3}})),
			"memory: insert events: originator 6ba7b810-9dad-11d1-80b4-00c04fd430c8 version 3 appears twice in the batch: eventsourcing: conflict"},
		{func() error {
			if err := r.InsertTracking(ctx, es.Tracking{Consumer: "c", Upstream: "up", NotificationID: 7}); err != nil {
				return err
			}
			return r.InsertTracking(ctx, es.Tracking{Consumer: "c", Upstream: "up", NotificationID: 7, Prior: 7})
		}(), `memory: insert tracking: tracking consumer "c" upstream "up": notification 7 is not above the prior mark 7: eventsourcing: conflict`},
		{second(r.InsertEvents(ctx, nil, es.WithTracking(es.Tracking{Consumer: "c", Upstream: "up", NotificationID: 9, Prior: 6}))),
			`memory: insert events: tracking consumer "c" upstream "up": the mark is 7, not the prior mark 6: eventsourcing: conflict`},
		{second(r.SelectNotifications(ctx, es.NotificationQuery{})), "memory: select notifications: limit 0: must be at least 1"},
		{second(memory.NewAggregateRecorder().InsertEvents(ctx, nil, es.WithTracking(es.Tracking{Consumer: "c", Upstream: "up", NotificationID: 1}))),
			`memory: insert events: tracking (consumer "c", upstream "up") given to an AggregateRecorder, which keeps no tracking records: unsupported operation`},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("error %v, want %q", c.err, c.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestAggregateRecorderReturnsNilIDs checks the snapshot-store shape explicitly.
func TestAggregateRecorderReturnsNilIDs(t *testing.T) {
	r := memory.NewAggregateRecorder()
	ids, err := r.InsertEvents(t.Context(), []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1}})
	if err != nil || ids != nil {
		t.Fatalf("InsertEvents = %v, %v; want nil, nil", ids, err)
	}
}

// TestSubscribeTopicFilterScansInPages checks a filtered subscription over more events than one scan
// (8192) and one page (500) hold, with matches sparse and dense.
func TestSubscribeTopicFilterScansInPages(t *testing.T) {
	r := memory.NewProcessRecorder()
	id := uuid.New()
	var events []es.StoredEvent
	const n = 20000
	for v := int64(1); v <= n; v++ {
		topic := "common"
		if v%5000 == 0 || (v > 15000 && v%2 == 0) {
			topic = "rare"
		}
		events = append(events, es.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: topic})
	}
	if _, err := r.InsertEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, e := range events {
		if e.Topic == "rare" {
			want = append(want, e.OriginatorVersion) // IDs equal versions here
		}
	}
	var got []int64
	for n, err := range r.Subscribe(t.Context(), 0, "rare") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n.ID)
		if len(got) == len(want) {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("filtered subscription yielded %d IDs, want %d", len(got), len(want))
	}
}

// BenchmarkInsertEvents appends n events of a new originator per call, as a new aggregate's first
// save does.
func BenchmarkInsertEvents(b *testing.B) {
	state := benchkit.SampleState()
	for _, size := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			benchkit.Run(b, benchkit.AppendOp("InsertEvents", benchkit.Inserts(memory.NewProcessRecorder()), size, state), "events")
		})
	}
}

func BenchmarkSelectEvents(b *testing.B) {
	r := memory.NewProcessRecorder()
	ctx := b.Context()
	id, state := uuid.New(), benchkit.SampleState()
	for v := int64(1); v <= 10000; v += 100 {
		if _, err := r.InsertEvents(ctx, benchkit.StoredEvents(id, v, 100, state)); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		q    es.EventQuery
		want int
	}{
		{"all=10000", es.EventQuery{}, 10000},
		{"after=9990", es.EventQuery{After: 9990}, 10},
		{"latest", es.EventQuery{Desc: true, Limit: 1}, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := r.SelectEvents(ctx, id, c.q)
				if err != nil || len(got) != c.want {
					b.Fatalf("SelectEvents = %d events, %v", len(got), err)
				}
			}
		})
	}
}

package observe_test

import (
	"context"
	"errors"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/testdomain"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/observe"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// counting is a tracer of repositories and event stores that counts the operations it is told of.
type counting struct{ starts, ends int }

func (c *counting) start(ctx context.Context) context.Context {
	c.starts++
	return ctx
}

func (c *counting) LoadStart(ctx context.Context, _ observe.Load) context.Context {
	return c.start(ctx)
}
func (c *counting) LoadEnd(context.Context, observe.Load) { c.ends++ }
func (c *counting) SaveStart(ctx context.Context, _ observe.Save) context.Context {
	return c.start(ctx)
}
func (c *counting) SaveEnd(context.Context, observe.Save) { c.ends++ }
func (c *counting) SnapshotStart(ctx context.Context, _ observe.Snapshot) context.Context {
	return c.start(ctx)
}
func (c *counting) SnapshotEnd(context.Context, observe.Snapshot)               { c.ends++ }
func (c *counting) PutStart(ctx context.Context, _ observe.Put) context.Context { return c.start(ctx) }
func (c *counting) PutEnd(context.Context, observe.Put)                         { c.ends++ }
func (c *counting) GetStart(ctx context.Context, _ observe.Get) context.Context { return c.start(ctx) }
func (c *counting) GetEnd(context.Context, observe.Get)                         { c.ends++ }

type Counter = testdomain.Counter

// A nil tracer of any kind (a nil interface, or a nil pointer that would panic at its first call) is
// no tracer; a tracer is told of every operation's start and end.
func TestUse(t *testing.T) {
	var nilPointer *counting
	tracer := &counting{}
	for _, tc := range []struct {
		name   string
		tracer *counting // what the operations are counted by
		give   interface {
			observe.RepositoryTracer
			observe.EventStoreTracer
		}
	}{
		{"nil interface", nil, nil},
		{"nil pointer", nil, nilPointer},
		{"tracer", tracer, tracer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := observe.Use[observe.RepositoryTracer](tc.give); (got == nil) != (tc.tracer == nil) {
				t.Fatalf("Use(%v) = %v", tc.give, got)
			}
			m, err := mapper.New(testdomain.Registry())
			if err != nil {
				t.Fatal(err)
			}
			store := eventstore.New(m, memory.NewProcessRecorder(), eventstore.WithTracer(tc.give))
			counters, err := repository.New[Counter](store, repository.WithTracer(tc.give))
			if err != nil {
				t.Fatal(err)
			}
			c := &Counter{}
			c.Inc(1)
			if _, err := counters.Save(t.Context(), c); err != nil {
				t.Fatal(err)
			}
			if got, err := counters.Get(t.Context(), c.ID); err != nil || got.Count != 1 {
				t.Fatalf("Get = %v, %v", got, err)
			}
			if tc.tracer != nil && (tc.tracer.starts != 4 || tc.tracer.ends != 4) {
				// A save and its put, a load and its get.
				t.Errorf("%d starts and %d ends, want 4 of each", tc.tracer.starts, tc.tracer.ends)
			}
		})
	}
}

func TestBatchLag(t *testing.T) {
	for _, tc := range []struct {
		b    observe.Batch
		want int64
	}{
		{observe.Batch{LastNotificationID: 10, Head: 15}, 5},
		{observe.Batch{LastNotificationID: 10, Head: 10}, 0},
		{observe.Batch{LastNotificationID: 10}, 0},                                 // head unknown
		{observe.Batch{LastNotificationID: 10, Head: 15, Err: errors.New("x")}, 0}, // failed
	} {
		if got := tc.b.Lag(); got != tc.want {
			t.Errorf("%+v: Lag() = %d, want %d", tc.b, got, tc.want)
		}
	}
}

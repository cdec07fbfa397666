package repository_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/testdomain"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// The tests' domain, shared with other packages' tests.
type (
	Started     = testdomain.Started
	Incremented = testdomain.Incremented
	Named       = testdomain.Named
	Counter     = testdomain.Counter
	Label       = testdomain.Label
)

var registry, newCounter = testdomain.Registry, testdomain.NewCounter

// countingRecorder counts the events that loads read, to show how far snapshots bound replay.
type countingRecorder struct {
	es.AggregateRecorder
	selected atomic.Int64
}

func (c *countingRecorder) SelectEvents(ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	events, err := c.AggregateRecorder.SelectEvents(ctx, id, q)
	c.selected.Add(int64(len(events)))
	return events, err
}

type fixture struct {
	events    *eventstore.EventStore
	snapshots *eventstore.EventStore
	recorder  *countingRecorder
	snapRec   *memory.AggregateRecorder
}

func newFixture() *fixture {
	m := must(mapper.New(registry()))
	rec := &countingRecorder{AggregateRecorder: memory.NewProcessRecorder()}
	snaps := memory.NewAggregateRecorder()
	return &fixture{events: eventstore.New(m, rec), snapshots: eventstore.New(m, snaps), recorder: rec, snapRec: snaps}
}

// counters returns a repository of counters on f's events, made with opts.
func (f *fixture) counters(opts ...repository.Option) *repository.Repository[Counter, *Counter] {
	return must(repository.New[Counter](f.events, opts...))
}

// savedCounter saves a new counter of incs increments with repo, failing t on an error, and returns it.
func savedCounter(ctx context.Context, t testing.TB, repo *repository.Repository[Counter, *Counter], name string, incs int) *Counter {
	t.Helper()
	c := newCounter(name, incs)
	mustSave(ctx, t, repo, c)
	return c
}

// mustSave saves aggs with repo, failing t on an error.
func mustSave[T any, P repository.Aggregate[T]](ctx context.Context, t testing.TB, repo *repository.Repository[T, P], aggs ...P) {
	t.Helper()
	if _, err := repo.Save(ctx, aggs...); err != nil {
		t.Fatal(err)
	}
}

// must returns v and panics on err: for constructors whose arguments the test controls.
func must[V any](v V, err error) V {
	if err != nil {
		panic(err)
	}
	return v
}

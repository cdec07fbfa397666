package repository_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// Fuse is an event that breaks things, as its field says: Apply panics on "apply", MarshalJSON on
// "marshal".
type Fuse struct{ Breaks string }

func (f Fuse) MarshalJSON() ([]byte, error) {
	if f.Breaks == "marshal" {
		panic("marshal boom")
	}
	return []byte(`{"Breaks":"` + f.Breaks + `"}`), nil
}

// Bomb is an aggregate whose Apply has a bug: it panics on a Fuse that says "apply".
type Bomb struct {
	aggregate.Base
	Fuses int
}

func (b *Bomb) Apply(e any) {
	if f, ok := e.(Fuse); ok {
		if f.Breaks == "apply" {
			panic("apply boom")
		}
		b.Fuses++
	}
}

// bombStore returns an event store of bombs, its recorder, a repository of bombs on it, and a new bomb
// with one harmless fuse pending.
func bombStore(t *testing.T) (*eventstore.EventStore, *memory.ProcessRecorder, *repository.Repository[Bomb, *Bomb], *Bomb) {
	t.Helper()
	reg := registry()
	mapper.Register[Fuse](reg, "test.Fuse")
	mapper.Register[Bomb](reg, "test.Bomb")
	rec := memory.NewProcessRecorder()
	store := eventstore.New(must(mapper.New(reg)), rec)
	b := &Bomb{}
	aggregate.Trigger(b, Fuse{})
	return store, rec, must(repository.New[Bomb](store)), b
}

func recorded(t *testing.T, rec *memory.ProcessRecorder) int64 {
	t.Helper()
	n, err := rec.MaxNotificationID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A pointer event would be applied live as nothing (Apply's type switch is on values) and replayed as
// its value: Save refuses the aggregate instead, and records nothing.
// An aggregate that triggered a pointer, or whose pending events' versions were tampered with, is
// refused, and nothing reaches the recorder.
func TestSaveRefusesInvalidPendingEvents(t *testing.T) {
	for _, tc := range []struct {
		name    string
		counter func() *Counter
		want    error
		message string // that the error must contain
	}{
		{"AggregateThatTriggeredAPointer", func() *Counter {
			c := newCounter("a", 0)
			aggregate.Trigger(c, &Incremented{By: 5})
			return c
		}, aggregate.ErrInvalidEvent, "*testdomain.Incremented is a pointer"},
		{"PendingEventsThatDoNotFollowOn", func() *Counter {
			c := newCounter("a", 2)
			c.Version = 7
			return c
		}, aggregate.ErrVersionGap, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			repo := newFixture().counters()
			c := tc.counter()
			if _, err := repo.Save(ctx, c); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("got %v, want an error wrapping %v that says %q", err, tc.want, tc.message)
			}
			if _, err := repo.Get(ctx, c.ID); !errors.Is(err, es.ErrNotFound) {
				t.Fatalf("something was recorded: %v", err)
			}
		})
	}
}

// A caller that recovers from a panicking Apply cannot save versions with a hole: Trigger leaves the
// aggregate as it was, and the save refuses it, so no later Get fails.
func TestSaveAfterRecoveredApplyPanicRecordsNothing(t *testing.T) {
	ctx := context.Background()
	_, rec, bombs, b := bombStore(t)
	func() {
		defer func() { _ = recover() }()
		aggregate.Trigger(b, Fuse{Breaks: "apply"})
	}()
	aggregate.Trigger(b, Fuse{})
	if _, err := bombs.Save(ctx, b); !errors.Is(err, aggregate.ErrApplyPanicked) {
		t.Fatalf("got %v, want ErrApplyPanicked", err)
	}
	if n := recorded(t, rec); n != 0 {
		t.Fatalf("%d events recorded", n)
	}
}

// A panic in Apply while loading, or in an event's MarshalJSON while saving, is an error that names the
// aggregate, the event and its version, not a panic out of the repository.
func TestPanicsInApplyAndMarshalAreErrors(t *testing.T) {
	ctx := context.Background()
	store, rec, bombs, b := bombStore(t)
	mustSave(ctx, t, bombs, b)
	// A later release of Apply has the bug; the event is recorded already.
	if _, err := store.Put(ctx, []aggregate.Event{{OriginatorID: b.ID, OriginatorVersion: 2, Data: Fuse{Breaks: "apply"}}}); err != nil {
		t.Fatal(err)
	}
	_, err := bombs.Get(ctx, b.ID)
	if !errors.Is(err, aggregate.ErrApplyPanicked) {
		t.Fatalf("get: got %v, want ErrApplyPanicked", err)
	}
	for _, want := range []string{"*repository_test.Bomb", b.ID.String(), "repository_test.Fuse", "version 2", "apply boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("get: the error does not say %q: %v", want, err)
		}
	}

	c := &Bomb{}
	aggregate.Trigger(c, Fuse{Breaks: "marshal"})
	_, err = bombs.Save(ctx, c)
	if err == nil {
		t.Fatal("save: no error")
	}
	for _, want := range []string{"*repository_test.Bomb " + c.ID.String(), "repository_test.Fuse", "version 1", "marshal boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("save: the error does not say %q: %v", want, err)
		}
	}
	if n := recorded(t, rec); n != 2 || len(c.Pending()) != 1 {
		t.Fatalf("after the failed save: %d events recorded, %d pending", n, len(c.Pending()))
	}
}

func TestSaveAllRefusesNilAggregates(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	c := newCounter("a", 0)
	for name, aggs := range map[string][]aggregate.Root{
		"nil interface":   {c, nil},
		"nil pointer":     {c, (*Counter)(nil)},
		"nil pointer too": {(*Label)(nil)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := repository.SaveAll(ctx, f.events, aggs)
			if err == nil || !strings.Contains(err.Error(), "is nil") {
				t.Fatalf("got %v, want an error saying an aggregate is nil", err)
			}
		})
	}
	if _, err := f.counters().Save(ctx, c, nil); err == nil {
		t.Fatal("Save with a nil aggregate: no error")
	}
	if len(c.Pending()) != 1 {
		t.Fatal("a refused save collected the pending events")
	}
}

// Order is the aggregate whose ID a cart repository is given by mistake.
type Order struct {
	aggregate.Base
	Placed bool
}

func (o *Order) Apply(e any) {
	if _, ok := e.(Started); ok {
		o.Placed = true
	}
}

func TestGetRefusesStreamOfAnotherType(t *testing.T) {
	ctx := context.Background()
	reg := registry()
	mapper.Register[Order](reg, "test.Order")
	m := must(mapper.New(reg))
	rec := memory.NewProcessRecorder()
	store := eventstore.New(m, rec)
	snaps := eventstore.New(m, memory.NewAggregateRecorder())
	orders := must(repository.New[Order](store))
	counters := must(repository.New[Counter](store))
	snapCounters := must(repository.New[Counter](store, repository.WithSnapshots(snaps, 10), repository.WithCache(10)))

	o := &Order{}
	aggregate.Trigger(o, Started{Name: "order"})
	mustSave(ctx, t, orders, o)
	for name, get := range map[string]func() (*Counter, error){
		"Get":                   func() (*Counter, error) { return counters.Get(ctx, o.ID) },
		"GetAt":                 func() (*Counter, error) { return counters.GetAt(ctx, o.ID, 1) },
		"with snapshots, cache": func() (*Counter, error) { return snapCounters.Get(ctx, o.ID) },
	} {
		c, err := get()
		if !errors.Is(err, repository.ErrWrongType) || c != nil {
			t.Fatalf("%s: a counter repository loaded an order's stream: %+v, %v", name, c, err)
		}
		for _, want := range []string{"repository_test.Order (topic", `"test.Order"`, "testdomain.Counter", `"test.Counter"`, o.ID.String()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: the error does not name %s: %v", name, want, err)
			}
		}
	}
	if got, err := orders.Get(ctx, o.ID); err != nil || !got.Placed {
		t.Fatalf("the order's own repository: %+v, %v", got, err)
	}

	// A stream recorded before streams were named loads into any repository, as it always did.
	old := aggregate.NewID()
	if _, err := store.Put(ctx, []aggregate.Event{{OriginatorID: old, OriginatorVersion: 1, Data: Started{Name: "old"}}}); err != nil {
		t.Fatal(err)
	}
	if c, err := counters.Get(ctx, old); err != nil || c.Name != "old" {
		t.Fatalf("an unnamed stream: %+v, %v", c, err)
	}
	// The name is stored with the first event only.
	c := savedCounter(ctx, t, counters, "x", 2)
	stored, _ := store.Get(ctx, c.ID, es.EventQuery{})
	if len(stored) != 3 || stored[0].OriginatorTopic != "test.Counter" || stored[1].OriginatorTopic != "" || stored[2].OriginatorTopic != "" {
		t.Fatalf("originator topics %q %q %q", stored[0].OriginatorTopic, stored[1].OriginatorTopic, stored[2].OriginatorTopic)
	}
}

// A stream started under an aggregate type's old topic still loads after the type's topic changed to
// a new one with an Alias.
func TestGetAcceptsStreamNamedByAnAlias(t *testing.T) {
	ctx := context.Background()
	before := mapper.NewRegistry()
	mapper.Register[Started](before, "test.Started")
	mapper.Register[Label](before, "test.Note") // the old topic
	rec := memory.NewProcessRecorder()
	l := &Label{}
	aggregate.Trigger(l, Started{Name: "x"})
	if _, err := must(repository.New[Label](eventstore.New(must(mapper.New(before)), rec))).Save(ctx, l); err != nil {
		t.Fatal(err)
	}
	after := mapper.NewRegistry()
	mapper.Register[Started](after, "test.Started")
	mapper.Register[Label](after, "test.Label", mapper.Alias("test.Note"))
	if _, err := must(repository.New[Label](eventstore.New(must(mapper.New(after)), rec))).Get(ctx, l.ID); err != nil {
		t.Fatalf("a stream named by the type's old topic: %v", err)
	}
}

func TestNewRefusesUnregisteredAggregateTypes(t *testing.T) {
	events := mapper.NewRegistry()
	mapper.Register[Named](events, "test.Named")
	withLabel := mapper.NewRegistry()
	mapper.Register[Named](withLabel, "test.Named")
	mapper.Register[Label](withLabel, "test.Label")
	eventsOnly := eventstore.New(must(mapper.New(events)), memory.NewProcessRecorder())
	full := eventstore.New(must(mapper.New(withLabel)), memory.NewProcessRecorder())
	snapsWithout := eventstore.New(must(mapper.New(events)), memory.NewAggregateRecorder())

	_, err := repository.New[Label](eventsOnly)
	if !errors.Is(err, mapper.ErrUnregistered) || !strings.Contains(err.Error(), "testdomain.Label") {
		t.Fatalf("events' mapper without the aggregate type: got %v", err)
	}
	_, err = repository.New[Label](full, repository.WithSnapshots(snapsWithout, 10))
	if !errors.Is(err, mapper.ErrUnregistered) || !strings.Contains(err.Error(), "WithSnapshots") {
		t.Fatalf("snapshot store's mapper without the aggregate type: got %v", err)
	}
	if _, err := repository.New[Label](full); err != nil {
		t.Fatal(err)
	}
}

// SaveAll names the streams it starts too, so its aggregates' types must be registered.
func TestSaveAllRefusesUnregisteredTypeOfANewStream(t *testing.T) {
	ctx := context.Background()
	reg := mapper.NewRegistry()
	mapper.Register[Named](reg, "test.Named")
	rec := memory.NewProcessRecorder()
	store := eventstore.New(must(mapper.New(reg)), rec)
	l := &Label{}
	aggregate.Trigger(l, Named{Name: "x"})
	_, err := repository.SaveAll(ctx, store, []aggregate.Root{l})
	if !errors.Is(err, mapper.ErrUnregistered) || !strings.Contains(err.Error(), "*testdomain.Label") {
		t.Fatalf("got %v, want an error wrapping mapper.ErrUnregistered naming the type", err)
	}
	if n := recorded(t, rec); n != 0 {
		t.Fatalf("%d events recorded", n)
	}
}

// pageRecorder records the largest page of events a load asked for and got.
type pageRecorder struct {
	es.AggregateRecorder
	largest int
	all     bool // a query without a limit
}

func (p *pageRecorder) SelectEvents(ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	events, err := p.AggregateRecorder.SelectEvents(ctx, id, q)
	p.largest = max(p.largest, len(events))
	p.all = p.all || q.Limit == 0
	return events, err
}

// A long stream is replayed page by page: no query asks for it whole.
func TestGetReplaysInPages(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	repo := f.counters()
	c := savedCounter(ctx, t, repo, "long", 2*eventstore.DefaultPageSize+10)
	rec := &pageRecorder{AggregateRecorder: f.recorder}
	paged := must(repository.New[Counter](eventstore.New(f.events.Mapper(), rec)))
	got, err := paged.Get(ctx, c.ID)
	if err != nil || got.Version != c.Version || got.Count != c.Count {
		t.Fatalf("got %+v, %v", got, err)
	}
	if rec.all || rec.largest > eventstore.DefaultPageSize {
		t.Fatalf("a query read %d events (unlimited: %v), more than a page of %d", rec.largest, rec.all, eventstore.DefaultPageSize)
	}
	at, err := paged.GetAt(ctx, c.ID, eventstore.DefaultPageSize+5)
	if err != nil || at.Version != eventstore.DefaultPageSize+5 {
		t.Fatalf("GetAt across a page boundary: %+v, %v", at, err)
	}
}

// Save returns the notification IDs of the events it recorded, for read-your-writes.
func TestSaveReturnsNotificationIDs(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	repo := f.counters()
	a, b := newCounter("a", 1), newCounter("b", 2)
	ids, err := repo.Save(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	log, err := f.recorder.AggregateRecorder.(*memory.ProcessRecorder).SelectNotifications(ctx, es.NotificationQuery{Limit: 10})
	if err != nil || len(log) != 5 || len(ids) != 5 {
		t.Fatalf("ids %v, log of %d, %v", ids, len(log), err)
	}
	for i, n := range log {
		want := a.ID
		if i >= 2 {
			want = b.ID
		}
		if ids[i] != n.ID || n.OriginatorID != want {
			t.Fatalf("ids %v; notification %d is %d of %s", ids, i, n.ID, n.OriginatorID)
		}
	}
	if ids, err := repo.Save(ctx, a); err != nil || ids != nil {
		t.Fatalf("saving nothing: %v, %v", ids, err)
	}
}

package repository_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

func TestSaveAndGet(t *testing.T) {
	ctx := context.Background()
	repo := newFixture().counters()
	c := savedCounter(ctx, t, repo, "a", 3)
	if len(c.Pending()) != 0 {
		t.Fatal("save must collect pending events")
	}
	got, err := repo.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Version != 4 || got.Count != 3 || got.Name != "a" ||
		!got.CreatedOn.Equal(c.CreatedOn) || !got.ModifiedOn.Equal(c.ModifiedOn) {
		t.Fatalf("got %+v, want %+v", got, c)
	}
	if _, err := repo.Get(ctx, uuid.New()); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("unknown aggregate: got %v, want ErrNotFound", err)
	}
}

func TestGetAt(t *testing.T) {
	ctx := context.Background()
	repo := newFixture().counters()
	c := savedCounter(ctx, t, repo, "a", 5)
	for v := int64(1); v <= 6; v++ {
		got, err := repo.GetAt(ctx, c.ID, v)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != v || got.Count != int(v-1) {
			t.Fatalf("at %d: version %d count %d", v, got.Version, got.Count)
		}
	}
	if _, err := repo.GetAt(ctx, c.ID, 7); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("beyond the latest version: got %v, want ErrNotFound", err)
	}
	if _, err := repo.GetAt(ctx, c.ID, 0); err == nil {
		t.Fatal("version 0 must be refused")
	}
}

func TestConcurrentModificationConflicts(t *testing.T) {
	ctx := context.Background()
	repo := newFixture().counters()
	c := savedCounter(ctx, t, repo, "a", 0)
	x, _ := repo.Get(ctx, c.ID)
	y, _ := repo.Get(ctx, c.ID)
	x.Inc(1)
	y.Inc(10)
	mustSave(ctx, t, repo, x)
	_, err := repo.Save(ctx, y)
	if !errors.Is(err, es.ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
	if len(y.Pending()) != 1 {
		t.Fatal("a failed save must leave the pending events in place")
	}
	got, _ := repo.Get(ctx, c.ID)
	if got.Count != 1 || got.Version != 2 {
		t.Fatalf("got count %d version %d: the conflicting save wrote something", got.Count, got.Version)
	}
}

func TestSaveSeveralAggregatesIsAtomic(t *testing.T) {
	ctx := context.Background()
	repo := newFixture().counters()
	a, b := newCounter("a", 0), newCounter("b", 0)
	mustSave(ctx, t, repo, a, b)
	stale, _ := repo.Get(ctx, b.ID)
	b.Inc(1)
	mustSave(ctx, t, repo, b)
	a.Inc(5)
	stale.Inc(5)
	if _, err := repo.Save(ctx, a, stale); !errors.Is(err, es.ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
	got, _ := repo.Get(ctx, a.ID)
	if got.Version != 1 {
		t.Fatalf("a is at version %d: half of an atomic save was written", got.Version)
	}
}

func TestSaveAllMixesTypes(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	c := newCounter("a", 1)
	l := &Label{}
	aggregate.Trigger(l, Named{Name: "hello"})
	ids, err := repository.SaveAll(ctx, f.events, []aggregate.Root{c, l})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] >= ids[1] || ids[1] >= ids[2] {
		t.Fatalf("notification IDs %v", ids)
	}
	labels := must(repository.New[Label](f.events))
	got, err := labels.Get(ctx, l.ID)
	if err != nil || got.Text != "hello" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if ids, err := repository.SaveAll(ctx, f.events, []aggregate.Root{c, l}); err != nil || ids != nil {
		t.Fatalf("saving nothing: %v %v", ids, err)
	}
}

func TestSnapshotsBoundReplay(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	repo := f.counters(repository.WithSnapshots(f.snapshots, 100))
	c := newCounter("a", 0)
	for i := 0; i < 249; i++ {
		c.Inc(1)
		if i%10 == 0 {
			mustSave(ctx, t, repo, c)
		}
	}
	mustSave(ctx, t, repo, c)
	snaps, err := f.snapRec.SelectEvents(ctx, c.ID, es.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[0].OriginatorVersion < 100 || snaps[1].OriginatorVersion < 200 {
		t.Fatalf("snapshots %d", len(snaps))
	}
	f.recorder.selected.Store(0)
	got, err := repo.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 250 || got.Count != 249 || len(got.Tags) != 249 {
		t.Fatalf("version %d count %d", got.Version, got.Count)
	}
	if n := f.recorder.selected.Load(); n != 250-snaps[1].OriginatorVersion {
		t.Fatalf("replayed %d events after the snapshot at %d", n, snaps[1].OriginatorVersion)
	}
	old, err := repo.GetAt(ctx, c.ID, 150)
	if err != nil || old.Version != 150 || old.Count != 149 {
		t.Fatalf("at 150: %+v %v", old, err)
	}
}

func TestTakeSnapshot(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	repo := f.counters(repository.WithSnapshots(f.snapshots, 0))
	c := savedCounter(ctx, t, repo, "a", 9)
	if snaps, _ := f.snapRec.SelectEvents(ctx, c.ID, es.EventQuery{}); len(snaps) != 0 {
		t.Fatal("every 0 must not take snapshots on save")
	}
	if err := repo.TakeSnapshot(ctx, c.ID, 5); err != nil {
		t.Fatal(err)
	}
	if err := repo.TakeSnapshot(ctx, c.ID, 5); err != nil {
		t.Fatalf("taking the same snapshot again: %v", err)
	}
	if err := repo.TakeSnapshot(ctx, c.ID, 0); err != nil {
		t.Fatal(err)
	}
	snaps, _ := f.snapRec.SelectEvents(ctx, c.ID, es.EventQuery{})
	if len(snaps) != 2 || snaps[0].OriginatorVersion != 5 || snaps[1].OriginatorVersion != 10 {
		t.Fatalf("snapshots %+v", snaps)
	}
	f.recorder.selected.Store(0)
	got, err := repo.Get(ctx, c.ID)
	if err != nil || got.Count != 9 || f.recorder.selected.Load() != 0 {
		t.Fatalf("got %+v %v after reading %d events", got, err, f.recorder.selected.Load())
	}
	if err := f.counters().TakeSnapshot(ctx, c.ID, 0); err == nil {
		t.Fatal("a repository without a snapshot store must refuse TakeSnapshot")
	}
}

func TestCacheIsFastForwardedAndNeverCorrupted(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	cached := f.counters(repository.WithCache(10))
	plain := f.counters()
	c := savedCounter(ctx, t, cached, "a", 2)
	// A caller that changes what Get returned must not change what the next Get returns.
	x, _ := cached.Get(ctx, c.ID)
	x.Count = 1000
	x.Tags[0] = "corrupted"
	x.Inc(1) // pending, never saved
	y, _ := cached.Get(ctx, c.ID)
	if y.Count != 2 || y.Tags[0] != "1" || y.Version != 3 || len(y.Pending()) != 0 {
		t.Fatalf("cache returned a corrupted copy: %+v", y)
	}
	// Another writer (without the cache) moves the aggregate on; the cached copy is fast-forwarded.
	z, _ := plain.Get(ctx, c.ID)
	z.Inc(5)
	mustSave(ctx, t, plain, z)
	f.recorder.selected.Store(0)
	w, _ := cached.Get(ctx, c.ID)
	if w.Count != 7 || w.Version != 4 {
		t.Fatalf("cache not fast-forwarded: %+v", w)
	}
	if n := f.recorder.selected.Load(); n != 1 {
		t.Fatalf("a cached load read %d events, want only the 1 recorded since", n)
	}
}

func TestBadStoredEventIsAClearError(t *testing.T) {
	ctx := context.Background()
	rec := memory.NewProcessRecorder()
	store := eventstore.New(must(mapper.New(registry())), rec)
	id := aggregate.NewID()
	if _, err := rec.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "test.Started", State: []byte("garbage")}}); err != nil {
		t.Fatal(err)
	}
	_, err := must(repository.New[Counter](store)).Get(ctx, id)
	if err == nil {
		t.Fatal("a corrupt event must fail the load")
	}
	var de *mapper.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want a mapper.DecodeError", err)
	}
}

// BenchmarkGet loads an account (the benchmark domain's aggregate, whose state has a fixed size, so
// that what is measured is replay, not the growth of the state) of n events, built in the worst case
// for snapshots (see benchkit.LoadStore.Build): without snapshots, with a snapshot every 100 events,
// and by hand from the same events stored as plain JSON (raw), the floor.
func BenchmarkGet(b *testing.B) {
	raw := benchkit.NewMemLog()
	ls, err := benchkit.NewLoadStore(memory.NewProcessRecorder(), memory.NewAggregateRecorder(), 100, raw.Append, raw.SelectEvents)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkLoads(b, ls, 10, 100, 1000, 10000)
}

// benchmarkLoads runs the loads of ls (benchkit.LoadOps) of accounts of each size.
func benchmarkLoads(b *testing.B, ls *benchkit.LoadStore, sizes ...int) {
	names := map[int]string{benchkit.LoadSnapshots: "snapshots=100", benchkit.LoadNoSnapshots: "snapshots=none",
		benchkit.LoadRaw: "raw", benchkit.LoadStdJSON: "snapshots=none/codec=StdJSON"}
	for _, n := range sizes {
		ops, err := ls.LoadOps(context.Background(), "account", n)
		if err != nil {
			b.Fatal(err)
		}
		for i, op := range ops {
			b.Run(fmt.Sprintf("events=%d/%s", n, names[i]), func(b *testing.B) {
				b.ReportAllocs()
				benchkit.Run(b, op, "loads")
			})
		}
	}
}

// BenchmarkGetCached loads an aggregate that is in the cache and has no new events: the cost of the
// clone and of the query for events recorded since.
func BenchmarkGetCached(b *testing.B) {
	ctx := context.Background()
	repo := must(repository.New[benchkit.Account](eventstore.New(must(mapper.New(benchkit.NewRegistry())), memory.NewProcessRecorder()), repository.WithCache(10)))
	a := &benchkit.Account{}
	aggregate.Trigger(a, benchkit.AccountOpened{Owner: "Ada Lovelace", Currency: "EUR"})
	for i := range 99 {
		aggregate.Trigger(a, benchkit.Deposit(i))
	}
	if _, err := repo.Save(ctx, a); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	benchkit.Run(b, benchkit.LoadOp("Get", repo.Get, a.ID, 100), "loads")
}

// BenchmarkSave saves a new account with one deposit per iteration on the memory recorder: the save
// path of the repository, the event store and the mapper, without a database's cost.
func BenchmarkSave(b *testing.B) {
	ctx := b.Context()
	repo := must(repository.New[benchkit.Account](eventstore.New(must(mapper.New(benchkit.NewRegistry())), memory.NewProcessRecorder())))
	b.ReportAllocs()
	for b.Loop() {
		a := &benchkit.Account{}
		aggregate.Trigger(a, benchkit.Deposit(1))
		if _, err := repo.Save(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	f := newFixture()
	tests := []struct {
		name   string
		events *eventstore.EventStore
		opts   []repository.Option
		want   string
	}{
		{"nil event store", nil, nil, "nil event store"},
		{"nil snapshot store", f.events, []repository.Option{repository.WithSnapshots(nil, 10)}, "nil snapshot store"},
		{"negative snapshot interval", f.events, []repository.Option{repository.WithSnapshots(f.snapshots, -1)}, "every -1 events"},
		{"negative cache size", f.events, []repository.Option{repository.WithCache(-1)}, "WithCache(-1)"},
		{"negative retries", f.events, []repository.Option{repository.WithUpdateRetries(-1)}, "WithUpdateRetries(-1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := repository.New[Counter](tt.events, tt.opts...)
			if err == nil || r != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want nil and an error naming %q", r, err, tt.want)
			}
		})
	}
	if _, err := repository.New[Counter](f.events, nil, repository.WithCache(1), nil); err != nil {
		t.Fatalf("New with nil options: %v", err)
	}
}

package esotel_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/internal/sqlitetest"
	"github.com/eventsourcing-go/eventsourcing/internal/testdomain"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	esotel "github.com/eventsourcing-go/eventsourcing/otel"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// The tests' aggregate, of the domain the module's tests share.
type (
	Counter     = testdomain.Counter
	Incremented = testdomain.Incremented
)

// recorder is what a backend gives the tests: the application's recorder, which is also the
// projection's tracking store.
type recorder interface {
	es.ProcessRecorder
	projection.SQLTracker
}

// backend opens recorders, traced by tr, on a fresh database (or PostgreSQL schema, whose name it
// returns) of one dialect.
type backend struct {
	dialect string
	open    func(t *testing.T, tr *esotel.Tracer) (_ recorder, snapshots es.AggregateRecorder, schema string)
}

func sqliteBackend() backend {
	return backend{dialect: "sqlite", open: func(t *testing.T, tr *esotel.Tracer) (recorder, es.AggregateRecorder, string) {
		db := sqlitetest.OpenMigrated(t, filepath.Join(t.TempDir(), "events.db"))
		events, err := sqlite.NewProcessRecorder(t.Context(), db, sqlite.WithTracer(tr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { events.Close() })
		snaps, err := sqlite.NewSnapshotRecorder(t.Context(), db, sqlite.WithTracer(tr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { snaps.Close() })
		return events, snaps, ""
	}}
}

// postgresBackend opens recorders on a fresh schema of the test server (ES_POSTGRES_DSN); without a
// server the test is skipped, or fails under ES_REQUIRE_POSTGRES=1.
func postgresBackend() backend {
	return backend{dialect: "postgres", open: func(t *testing.T, tr *esotel.Tracer) (recorder, es.AggregateRecorder, string) {
		db, name := pgtest.Schema(t)
		opts := []postgres.Option{postgres.WithSchema(name), postgres.WithTracer(tr)}
		events, err := postgres.NewProcessRecorder(t.Context(), db, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { events.Close() })
		snaps, err := postgres.NewSnapshotRecorder(t.Context(), db, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { snaps.Close() })
		return events, snaps, name
	}}
}

func TestSQLite(t *testing.T) { testBackend(t, sqliteBackend()) }

func TestPostgres(t *testing.T) { testBackend(t, postgresBackend()) }

// fixture is a traced application on one backend: a repository of counters with a snapshot every 2
// events, over traced event stores and recorders, with in-memory exporters behind the tracer.
type fixture struct {
	schema   string // the PostgreSQL schema; "" on SQLite
	spans    *tracetest.InMemoryExporter
	reader   *sdkmetric.ManualReader
	tracer   *esotel.Tracer
	caller   trace.Tracer // makes the caller's span, the parent of the library's
	events   recorder
	store    *eventstore.EventStore
	counters *repository.Repository[Counter, *Counter]
}

func newFixture(t *testing.T, b backend) *fixture {
	f := &fixture{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(f.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	t.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	tr, err := esotel.New(esotel.WithTracerProvider(tp), esotel.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	f.tracer, f.caller = tr, tp.Tracer("test")
	m, err := mapper.New(testdomain.Registry())
	if err != nil {
		t.Fatal(err)
	}
	events, snaps, schemaName := b.open(t, tr)
	f.events, f.schema = events, schemaName
	f.store = eventstore.New(m, events, eventstore.WithTracer(tr))
	f.counters, err = repository.New[Counter](f.store,
		repository.WithSnapshots(eventstore.New(m, snaps, eventstore.WithTracer(tr)), 2), repository.WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// inSpan runs fn in a span of the caller's and returns the span's ID.
func (f *fixture) inSpan(t *testing.T, fn func(ctx context.Context)) trace.SpanID {
	ctx, span := f.caller.Start(t.Context(), "caller")
	defer span.End()
	fn(ctx)
	return span.SpanContext().SpanID()
}

// reset forgets the spans exported so far.
func (f *fixture) reset() { f.spans.Reset() }

// span returns the only exported span named name.
func (f *fixture) span(t *testing.T, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range f.spans.GetSpans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %s, want 1; spans: %v", len(found), name, names(f.spans.GetSpans()))
	}
	return found[0]
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// wantAttrs fails unless s has every attribute of want.
func wantAttrs(t *testing.T, s tracetest.SpanStub, want ...attribute.KeyValue) {
	t.Helper()
	got := attribute.NewSet(s.Attributes...)
	for _, kv := range want {
		if v, ok := got.Value(kv.Key); !ok || v != kv.Value {
			t.Errorf("span %s: attribute %s = %v (present: %v), want %v", s.Name, kv.Key, v.String(), ok, kv.Value.String())
		}
	}
}

// wantChild fails unless child's parent is parent.
func wantChild(t *testing.T, child tracetest.SpanStub, parent trace.SpanID, parentName string) {
	t.Helper()
	if got := child.Parent.SpanID(); got != parent {
		t.Errorf("span %s has parent %s, want %s (%s)", child.Name, got, parent, parentName)
	}
}

// metrics collects the metrics recorded so far.
func (f *fixture) metrics(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := f.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// matches reports whether set has every attribute of want.
func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func find(rm metricdata.ResourceMetrics, name string) (metricdata.Aggregation, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data, true
			}
		}
	}
	return nil, false
}

// sum returns the sum of the counter name over the data points that have the attributes want.
func sum(rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	data, _ := find(rm, name)
	s, _ := data.(metricdata.Sum[int64])
	var n int64
	for _, p := range s.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// count returns how many values the histogram name recorded with the attributes want, and their sum.
func count(rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (n uint64, total float64) {
	data, _ := find(rm, name)
	switch h := data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range h.DataPoints {
			if matches(p.Attributes, want) {
				n, total = n+p.Count, total+p.Sum
			}
		}
	case metricdata.Histogram[int64]:
		for _, p := range h.DataPoints {
			if matches(p.Attributes, want) {
				n, total = n+p.Count, total+float64(p.Sum)
			}
		}
	}
	return n, total
}

// gauge returns the last value of the int64 gauge name with the attributes want.
func gauge(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	data, _ := find(rm, name)
	g, _ := data.(metricdata.Gauge[int64])
	for _, p := range g.DataPoints {
		if matches(p.Attributes, want) {
			return p.Value
		}
	}
	t.Fatalf("no data point of %s with %v", name, want)
	return 0
}

var aggType = attribute.String("aggregate_type", "test.Counter")

func testBackend(t *testing.T, b backend) {
	dialect := attribute.String("dialect", b.dialect)
	t.Run("Save", func(t *testing.T) {
		f := newFixture(t, b)
		c := &Counter{}
		for range 3 {
			aggregate.Trigger(c, Incremented{By: 1})
		}
		var ids []int64
		caller := f.inSpan(t, func(ctx context.Context) {
			var err error
			if ids, err = f.counters.Save(ctx, c); err != nil {
				t.Fatal(err)
			}
		})
		save := f.span(t, "eventsourcing.repository.save")
		wantChild(t, save, caller, "the caller's span")
		wantAttrs(t, save, aggType, attribute.String("aggregate_id", c.ID.String()), attribute.Int("aggregates", 1),
			attribute.Int("events", 3), attribute.Int64("version", 3),
			attribute.Int64("first_notification_id", ids[0]), attribute.Int64("last_notification_id", ids[2]))
		if save.Status.Code != codes.Unset {
			t.Errorf("save span status %v, want unset", save.Status)
		}
		// The events' put holds the append; the snapshot at version 2 (crossed by the save) is a child
		// of the save too, with its own put and append.
		var put, appendEvents tracetest.SpanStub
		puts, appends := 0, 0
		for _, s := range f.spans.GetSpans() {
			switch s.Name {
			case "eventsourcing.eventstore.put":
				puts++
				if s.Parent.SpanID() == save.SpanContext.SpanID() {
					put = s
				}
			case "eventsourcing.recorder.append":
				appends++
				if v, ok := value(s, "snapshots"); ok && !v.AsBool() {
					appendEvents = s
				}
			}
		}
		if puts != 2 || appends != 2 {
			t.Errorf("%d puts and %d appends, want 2 of each (events and snapshot): %v", puts, appends, names(f.spans.GetSpans()))
		}
		wantAttrs(t, put, attribute.Int("events", 3))
		wantChild(t, appendEvents, put.SpanContext.SpanID(), "the event store's put")
		wantAttrs(t, appendEvents, dialect, attribute.String("schema", f.schema), attribute.Int("events", 3),
			attribute.Int64("first_notification_id", ids[0]), attribute.Int64("last_notification_id", ids[2]))
		if v, _ := value(appendEvents, "bytes"); v.AsInt64() <= 0 {
			t.Errorf("append span: bytes = %v, want the size of the stored state", v.String())
		}
		snap := f.span(t, "eventsourcing.repository.snapshot")
		wantChild(t, snap, save.SpanContext.SpanID(), "the save")
		wantAttrs(t, snap, aggType, attribute.Int64("version", 3))

		rm := f.metrics(t)
		if n := sum(rm, "eventsourcing.recorder.append.events", dialect, attribute.Bool("snapshots", false)); n != 3 {
			t.Errorf("events appended = %d, want 3", n)
		}
		if n, _ := count(rm, "eventsourcing.recorder.append.duration", dialect, attribute.Bool("snapshots", false)); n != 1 {
			t.Errorf("append durations recorded: %d, want 1", n)
		}
		if n, _ := count(rm, "eventsourcing.repository.save.duration", aggType); n != 1 {
			t.Errorf("save durations recorded: %d, want 1", n)
		}
		if n := sum(rm, "eventsourcing.repository.snapshot.taken", aggType); n != 1 {
			t.Errorf("snapshots taken: %d, want 1", n)
		}
		if b.dialect == "sqlite" {
			if n, total := count(rm, "eventsourcing.sqlite.group_commit.events", attribute.Bool("snapshots", false)); n != 1 || total != 3 {
				t.Errorf("group commits of events: %d of %v events in all, want 1 of 3", n, total)
			}
		}
	})

	t.Run("Load", func(t *testing.T) {
		f := newFixture(t, b)
		c := &Counter{}
		for range 3 {
			aggregate.Trigger(c, Incremented{By: 1})
		}
		if _, err := f.counters.Save(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		f.reset()
		caller := f.inSpan(t, func(ctx context.Context) {
			got, err := f.counters.Get(ctx, c.ID)
			if err != nil || got.Count != 3 {
				t.Fatalf("Get = %v, %v; want N = 3", got, err)
			}
		})
		load := f.span(t, "eventsourcing.repository.get")
		wantChild(t, load, caller, "the caller's span")
		// The snapshot at version 3 (taken by the save), and nothing after it to replay.
		wantAttrs(t, load, aggType, attribute.String("aggregate_id", c.ID.String()), attribute.Int64("version", 3),
			attribute.Int64("snapshot_version", 3), attribute.Int("events", 0), attribute.Bool("cached", false))
		for _, s := range f.spans.GetSpans() {
			if s.Name == "eventsourcing.eventstore.get" {
				wantChild(t, s, load.SpanContext.SpanID(), "the load")
			}
			if s.Name == "eventsourcing.recorder.select" {
				wantAttrs(t, s, dialect, attribute.String("aggregate_id", c.ID.String()))
			}
		}
		// Two more events, one at a time: the first makes a snapshot at version 4, the second does not
		// (a snapshot every 2 events), so the next load starts from version 4 and replays version 5.
		for range 2 {
			if _, err := f.counters.Update(t.Context(), c.ID, func(c *Counter) error { aggregate.Trigger(c, Incremented{By: 1}); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		rm := f.metrics(t)
		if n := sum(rm, "eventsourcing.repository.snapshot.hits", aggType); n != 3 {
			t.Errorf("snapshot hits: %d, want 3", n)
		}
		n, replayed := count(rm, "eventsourcing.repository.load.events", aggType)
		if n != 3 || replayed != 0 {
			t.Errorf("loads: %d replaying %v events in all, want 3 replaying none", n, replayed)
		}
		if n, _ := count(rm, "eventsourcing.repository.load.duration", aggType); n != 3 {
			t.Errorf("load durations recorded: %d, want 3", n)
		}
		f.reset()
		f.inSpan(t, func(ctx context.Context) {
			if _, err := f.counters.Get(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
		})
		wantAttrs(t, f.span(t, "eventsourcing.repository.get"), attribute.Int64("version", 5),
			attribute.Int64("snapshot_version", 4), attribute.Int("events", 1))
	})

	t.Run("Conflict", func(t *testing.T) {
		f := newFixture(t, b)
		c := &Counter{}
		aggregate.Trigger(c, Incremented{By: 1})
		if _, err := f.counters.Save(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		stale, err := f.counters.Get(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		aggregate.Trigger(c, Incremented{By: 1})
		if _, err := f.counters.Save(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		f.reset()
		aggregate.Trigger(stale, Incremented{By: 5})
		f.inSpan(t, func(ctx context.Context) {
			if _, err := f.counters.Save(ctx, stale); !errors.Is(err, es.ErrConflict) {
				t.Fatalf("stale save: %v, want a conflict", err)
			}
		})
		save := f.span(t, "eventsourcing.repository.save")
		if save.Status.Code != codes.Error || len(save.Events) == 0 || save.Events[0].Name != "exception" {
			t.Errorf("save span: status %v, events %v; want an error recorded", save.Status, save.Events)
		}
		if a := f.span(t, "eventsourcing.recorder.append"); a.Status.Code != codes.Error {
			t.Errorf("append span status %v, want an error", a.Status)
		}
		rm := f.metrics(t)
		if n := sum(rm, "eventsourcing.conflicts", aggType); n != 1 {
			t.Errorf("conflicts: %d, want 1", n)
		}
		if n, _ := count(rm, "eventsourcing.repository.save.duration", aggType, attribute.String("error.type", "conflict")); n != 1 {
			t.Errorf("save durations with error.type conflict: %d, want 1", n)
		}
	})

	t.Run("ProjectionBatch", func(t *testing.T) {
		f := newFixture(t, b)
		var last int64
		for range 5 {
			c := &Counter{}
			aggregate.Trigger(c, Incremented{By: 1})
			ids, err := f.counters.Save(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			last = ids[0]
		}
		first := last - 4
		f.reset()
		app := projection.Application{Name: "counters", Store: f.store}
		applied := 0
		runner, err := projection.NewRunner("totals", app, projection.SQL(f.events),
			func(ctx context.Context, tx projection.SQLTx, e aggregate.Event) error { applied++; return nil },
			projection.WithTracer(f.tracer))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- runner.Run(ctx) }()
		if err := runner.Wait(ctx, last); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		consumer, upstream := attribute.String("consumer", "totals"), attribute.String("upstream", "counters")
		// The runner takes what its subscription has delivered, up to a batch: one or more batches, each
		// following on from the one before.
		prior, events := int64(0), 0
		for _, s := range f.spans.GetSpans() {
			if s.Name != "eventsourcing.projection.batch" {
				continue
			}
			a := attribute.NewSet(s.Attributes...)
			n, _ := a.Value("events")
			from, _ := a.Value("first_notification_id")
			to, _ := a.Value("last_notification_id")
			wantAttrs(t, s, consumer, upstream, attribute.Int64("prior", prior))
			if want := max(prior+1, first); from.AsInt64() != want || to.AsInt64()-from.AsInt64()+1 != n.AsInt64() {
				t.Errorf("batch of %d notifications from %d to %d; want one from %d", n.AsInt64(), from.AsInt64(), to.AsInt64(), want)
			}
			prior, events = to.AsInt64(), events+int(n.AsInt64())
			if prior == last {
				wantAttrs(t, s, attribute.Int64("lag", 0))
			}
		}
		if prior != last || events != 5 {
			t.Errorf("batches up to notification %d, of %d events in all; want up to %d, of 5", prior, events, last)
		}
		if applied != 5 {
			t.Errorf("%d events applied, want 5", applied)
		}
		rm := f.metrics(t)
		if n := sum(rm, "eventsourcing.projection.events", consumer, upstream); n != 5 {
			t.Errorf("events processed: %d, want 5", n)
		}
		if n, total := count(rm, "eventsourcing.projection.batch.events", consumer, upstream); n < 1 || total != 5 {
			t.Errorf("batches: %d of %v events in all, want 5 events in all", n, total)
		}
		if n, _ := count(rm, "eventsourcing.subscription.lag.duration", consumer, upstream); n != 5 {
			t.Errorf("deliveries timed: %d, want 5", n)
		}
		if lag := gauge(t, rm, "eventsourcing.projection.lag.events", consumer, upstream); lag != 0 {
			t.Errorf("lag after the batch: %d events, want 0", lag)
		}
		data, _ := find(rm, "eventsourcing.projection.lag.duration")
		if g, ok := data.(metricdata.Gauge[float64]); !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value < 0 {
			t.Errorf("lag in seconds: %+v, want one positive value", data)
		}
	})
}

// value returns the attribute key of s.
func value(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	set := attribute.NewSet(s.Attributes...)
	return set.Value(key)
}

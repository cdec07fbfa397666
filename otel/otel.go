// Package esotel is the OpenTelemetry instrumentation of the event-sourcing module: a [Tracer] that
// implements every hook of package observe with spans and metrics. It is a Go module of its own, so
// that only the applications that use it depend on OpenTelemetry.
//
// Give one Tracer to every package whose work is to be observed:
//
//	t, err := esotel.New() // the global providers; or WithTracerProvider, WithMeterProvider
//	events, _ := sqlite.NewProcessRecorder(ctx, db, sqlite.WithTracer(t))
//	store := eventstore.New(m, events, eventstore.WithTracer(t))
//	accounts, _ := repository.New[Account](store, repository.WithTracer(t))
//	balances, _ := projection.NewRunner("balances", app, projection.SQL(events), project, projection.WithTracer(t))
//
// # Spans
//
// Every operation is a span, a child of the span in the caller's context: a repository's save
// (eventsourcing.repository.save) holds the event store's put (eventsourcing.eventstore.put), which
// holds the recorder's append (eventsourcing.recorder.append), and the snapshot the save takes
// (eventsourcing.repository.snapshot). Loads (eventsourcing.repository.get) hold the event store's
// gets and the recorder's reads (eventsourcing.recorder.select); a projection runner's batch
// (eventsourcing.projection.batch) holds what the projection or process application does in it. The
// attributes are named as in package observe's vocabulary (aggregate_type, aggregate_id, version,
// events, bytes, notification IDs, consumer, upstream, dialect, schema …), which the module's logs
// use too. A failed operation records its error and sets the span's status to Error.
//
// # Metrics
//
// Durations are in seconds; a failed operation's carry the attribute error.type (conflict,
// not_found, closed, canceled or other).
//
//	eventsourcing.recorder.append.duration     histogram  dialect, schema, snapshots
//	eventsourcing.recorder.append.events       counter    dialect, schema, snapshots: events appended
//	eventsourcing.repository.load.duration     histogram  aggregate_type
//	eventsourcing.repository.load.events       histogram  aggregate_type: events replayed per load
//	eventsourcing.repository.snapshot.hits     counter    aggregate_type: loads that started from a snapshot
//	eventsourcing.repository.cache.hits        counter    aggregate_type: loads that started from the cache
//	eventsourcing.repository.save.duration     histogram  aggregate_type
//	eventsourcing.repository.snapshot.taken    counter    aggregate_type
//	eventsourcing.conflicts                    counter    aggregate_type (saves), or consumer and upstream
//	                                                      (a projection's tracking mark moved by another instance)
//	eventsourcing.sqlite.group_commit.requests histogram  snapshots: callers' appends per transaction
//	eventsourcing.sqlite.group_commit.events   histogram  snapshots: events per transaction
//	eventsourcing.subscription.lag.duration    histogram  consumer, upstream: from an event's timestamp to
//	                                                      its delivery to the runner
//	eventsourcing.projection.lag.events        gauge      consumer, upstream: upstream notifications not yet
//	                                                      processed, after each batch
//	eventsourcing.projection.lag.duration      gauge      consumer, upstream: age of the last event of each
//	                                                      batch when it committed
//	eventsourcing.projection.events            counter    consumer, upstream: events processed (throughput)
//	eventsourcing.projection.batch.duration    histogram  consumer, upstream
//	eventsourcing.projection.batch.events      histogram  consumer, upstream: notifications per batch
package esotel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/observe"
)

// ScopeName is the instrumentation scope of the tracer's spans and meter's instruments.
const ScopeName = "github.com/eventsourcing-go/eventsourcing/otel"

var _ observe.Tracer = (*Tracer)(nil)

// Tracer makes spans and metrics of the module's operations (see the package documentation). It is
// safe for concurrent use; make one with New and give it to every package's WithTracer option.
type Tracer struct {
	tracer trace.Tracer
	// The metric attribute sets, made once per combination of values, so that recording allocates none.
	recorders  attributeSets[recorderKey]
	aggregates attributeSets[aggregateKey]
	consumers  attributeSets[consumerKey]

	appendDuration, loadDuration, saveDuration, subscriptionLag, batchDuration metric.Float64Histogram
	loadEvents, groupRequests, groupEvents, batchEvents                        metric.Int64Histogram
	appended, snapshotHits, cacheHits, snapshotsTaken, conflicts, processed    metric.Int64Counter
	projectionLag                                                              metric.Int64Gauge
	projectionAge                                                              metric.Float64Gauge
}

// Option configures a Tracer.
type Option func(*config)

type config struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider makes the spans with tp instead of the global provider (otel.GetTracerProvider()
// as it is when New runs).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider makes the instruments with mp instead of the global provider
// (otel.GetMeterProvider() as it is when New runs).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// New returns a Tracer that reports to the providers of the options, or to the global ones. It fails
// when the meter provider cannot make an instrument. Nil options, and nil providers, are skipped.
func New(opts ...Option) (*Tracer, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	m := c.mp.Meter(ScopeName)
	t := &Tracer{tracer: c.tp.Tracer(ScopeName)}
	var errs []error
	seconds := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc))
		errs = append(errs, err)
		return h
	}
	count := func(name, unit, desc string) metric.Int64Histogram {
		h, err := m.Int64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	t.appendDuration = seconds("eventsourcing.recorder.append.duration", "Duration of a recorder's InsertEvents.")
	t.loadDuration = seconds("eventsourcing.repository.load.duration", "Duration of a repository's Get.")
	t.saveDuration = seconds("eventsourcing.repository.save.duration", "Duration of a repository's Save.")
	t.subscriptionLag = seconds("eventsourcing.subscription.lag.duration", "Time from an event's timestamp to its delivery to a projection runner.")
	t.batchDuration = seconds("eventsourcing.projection.batch.duration", "Duration of a projection runner's batch transaction.")
	t.loadEvents = count("eventsourcing.repository.load.events", "{event}", "Events replayed by a repository's Get.")
	t.groupRequests = count("eventsourcing.sqlite.group_commit.requests", "{request}", "Appends committed together in one SQLite transaction.")
	t.groupEvents = count("eventsourcing.sqlite.group_commit.events", "{event}", "Events committed in one SQLite transaction.")
	t.batchEvents = count("eventsourcing.projection.batch.events", "{event}", "Notifications in a projection runner's batch.")
	t.appended = counter("eventsourcing.recorder.append.events", "{event}", "Events appended by a recorder.")
	t.snapshotHits = counter("eventsourcing.repository.snapshot.hits", "{load}", "Loads that started from a snapshot.")
	t.cacheHits = counter("eventsourcing.repository.cache.hits", "{load}", "Loads that started from the repository's cache.")
	t.snapshotsTaken = counter("eventsourcing.repository.snapshot.taken", "{snapshot}", "Snapshots taken.")
	t.conflicts = counter("eventsourcing.conflicts", "{conflict}", "Saves that met a concurrent change, and projection batches whose tracking mark another instance moved.")
	t.processed = counter("eventsourcing.projection.events", "{event}", "Events processed by projection runners.")
	var err error
	t.projectionLag, err = m.Int64Gauge("eventsourcing.projection.lag.events", metric.WithUnit("{event}"),
		metric.WithDescription("Upstream notifications a projection runner had not processed after its last batch."))
	errs = append(errs, err)
	t.projectionAge, err = m.Float64Gauge("eventsourcing.projection.lag.duration", metric.WithUnit("s"),
		metric.WithDescription("Age of the last event of a projection runner's last batch when it committed."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("esotel: make the instruments: %w", err)
	}
	return t, nil
}

// The keys of the metric attribute sets: the values of their attributes.
type (
	recorderKey struct {
		dialect, schema string
		snapshots       bool
		errType         string
	}
	aggregateKey struct{ aggregateType, errType string }
	consumerKey  struct{ consumer, upstream, errType string }
)

func (k recorderKey) attributes() []attribute.KeyValue {
	return withErrorType(k.errType, attribute.String("dialect", k.dialect), attribute.String("schema", k.schema), attribute.Bool("snapshots", k.snapshots))
}

func (k aggregateKey) attributes() []attribute.KeyValue {
	return withErrorType(k.errType, attribute.String("aggregate_type", k.aggregateType))
}

func (k consumerKey) attributes() []attribute.KeyValue {
	return withErrorType(k.errType, attribute.String("consumer", k.consumer), attribute.String("upstream", k.upstream))
}

func withErrorType(errType string, kvs ...attribute.KeyValue) []attribute.KeyValue {
	if errType != "" {
		kvs = append(kvs, attribute.String("error.type", errType))
	}
	return kvs
}

// attributeSets holds the attribute set of each key, as a measurement option, made the first time the
// key is measured. The zero value is ready.
type attributeSets[K interface {
	comparable
	attributes() []attribute.KeyValue
}] struct {
	mu   sync.RWMutex
	sets map[K]metric.MeasurementOption
}

func (s *attributeSets[K]) get(k K) metric.MeasurementOption {
	s.mu.RLock()
	o, ok := s.sets[k]
	s.mu.RUnlock()
	if ok {
		return o
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.sets[k]; ok {
		return o
	}
	if s.sets == nil {
		s.sets = make(map[K]metric.MeasurementOption)
	}
	o = metric.WithAttributeSet(attribute.NewSet(k.attributes()...))
	s.sets[k] = o
	return o
}

// errorType classifies err for the error.type attribute of metrics; "" for nil.
func errorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, es.ErrConflict):
		return "conflict"
	case errors.Is(err, es.ErrNotFound):
		return "not_found"
	case errors.Is(err, es.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

// start starts a span of the operation name at start, a child of ctx's.
func (t *Tracer) start(ctx context.Context, name string, kind trace.SpanKind, start time.Time, attrs ...attribute.KeyValue) context.Context {
	ctx, _ = t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	return ctx
}

// end ends the span of ctx with attrs and err's error.
func end(ctx context.Context, err error, attrs ...attribute.KeyValue) {
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		span.SetAttributes(attrs...)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

func id(key string, v fmt.Stringer) attribute.KeyValue { return attribute.String(key, v.String()) }

// LoadStart starts the span of a repository's Get.
func (t *Tracer) LoadStart(ctx context.Context, l observe.Load) context.Context {
	return t.start(ctx, "eventsourcing.repository.get", trace.SpanKindInternal, l.Start,
		attribute.String("aggregate_type", l.AggregateType), id("aggregate_id", l.AggregateID))
}

// LoadEnd ends it and records the load's metrics.
func (t *Tracer) LoadEnd(ctx context.Context, l observe.Load) {
	end(ctx, l.Err, attribute.Int64("version", l.Version), attribute.Int64("snapshot_version", l.SnapshotVersion),
		attribute.Bool("cached", l.Cached), attribute.Int("events", l.Events))
	set := t.aggregates.get(aggregateKey{l.AggregateType, errorType(l.Err)})
	t.loadDuration.Record(ctx, time.Since(l.Start).Seconds(), set)
	if l.Err != nil {
		return
	}
	t.loadEvents.Record(ctx, int64(l.Events), set)
	switch {
	case l.Cached:
		t.cacheHits.Add(ctx, 1, set)
	case l.SnapshotVersion > 0:
		t.snapshotHits.Add(ctx, 1, set)
	}
}

// SaveStart starts the span of a repository's Save.
func (t *Tracer) SaveStart(ctx context.Context, s observe.Save) context.Context {
	return t.start(ctx, "eventsourcing.repository.save", trace.SpanKindInternal, s.Start,
		attribute.String("aggregate_type", s.AggregateType), id("aggregate_id", s.AggregateID),
		attribute.Int("aggregates", s.Aggregates), attribute.Int("events", s.Events))
}

// SaveEnd ends it and records the save's metrics, a conflict among them.
func (t *Tracer) SaveEnd(ctx context.Context, s observe.Save) {
	end(ctx, s.Err, attribute.Int64("version", s.Version),
		attribute.Int64("first_notification_id", s.FirstNotificationID), attribute.Int64("last_notification_id", s.LastNotificationID))
	set := t.aggregates.get(aggregateKey{s.AggregateType, errorType(s.Err)})
	t.saveDuration.Record(ctx, time.Since(s.Start).Seconds(), set)
	if errors.Is(s.Err, es.ErrConflict) {
		t.conflicts.Add(ctx, 1, t.aggregates.get(aggregateKey{s.AggregateType, ""}))
	}
}

// SnapshotStart starts the span of a snapshot's taking.
func (t *Tracer) SnapshotStart(ctx context.Context, s observe.Snapshot) context.Context {
	return t.start(ctx, "eventsourcing.repository.snapshot", trace.SpanKindInternal, s.Start,
		attribute.String("aggregate_type", s.AggregateType), id("aggregate_id", s.AggregateID), attribute.Int64("version", s.Version))
}

// SnapshotEnd ends it and counts the snapshot.
func (t *Tracer) SnapshotEnd(ctx context.Context, s observe.Snapshot) {
	end(ctx, s.Err)
	if s.Err == nil {
		t.snapshotsTaken.Add(ctx, 1, t.aggregates.get(aggregateKey{s.AggregateType, ""}))
	}
}

// PutStart starts the span of an event store's Put.
func (t *Tracer) PutStart(ctx context.Context, p observe.Put) context.Context {
	return t.start(ctx, "eventsourcing.eventstore.put", trace.SpanKindInternal, p.Start, attribute.Int("events", p.Events))
}

// PutEnd ends it.
func (t *Tracer) PutEnd(ctx context.Context, p observe.Put) { end(ctx, p.Err) }

// GetStart starts the span of an event store's Get.
func (t *Tracer) GetStart(ctx context.Context, g observe.Get) context.Context {
	return t.start(ctx, "eventsourcing.eventstore.get", trace.SpanKindInternal, g.Start, id("aggregate_id", g.OriginatorID))
}

// GetEnd ends it.
func (t *Tracer) GetEnd(ctx context.Context, g observe.Get) {
	end(ctx, g.Err, attribute.Int("events", g.Events))
}

// recorderAttrs are the attributes that say which recorder did an operation.
func recorderAttrs(dialect, schema string, snapshots bool) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("dialect", dialect), attribute.String("schema", schema), attribute.Bool("snapshots", snapshots)}
}

// AppendStart starts the span of a recorder's InsertEvents.
func (t *Tracer) AppendStart(ctx context.Context, a observe.Append) context.Context {
	attrs := append(recorderAttrs(a.Dialect, a.Schema, a.Snapshots), attribute.Int("events", a.Events), attribute.Int("bytes", a.Bytes))
	if a.Consumer != "" || a.Upstream != "" {
		attrs = append(attrs, attribute.String("consumer", a.Consumer), attribute.String("upstream", a.Upstream))
	}
	return t.start(ctx, "eventsourcing.recorder.append", trace.SpanKindClient, a.Start, attrs...)
}

// AppendEnd ends it and records the append's metrics.
func (t *Tracer) AppendEnd(ctx context.Context, a observe.Append) {
	end(ctx, a.Err, attribute.Int64("first_notification_id", a.FirstNotificationID), attribute.Int64("last_notification_id", a.LastNotificationID))
	t.appendDuration.Record(ctx, time.Since(a.Start).Seconds(), t.recorders.get(recorderKey{a.Dialect, a.Schema, a.Snapshots, errorType(a.Err)}))
	if a.Err == nil && a.Events > 0 {
		t.appended.Add(ctx, int64(a.Events), t.recorders.get(recorderKey{a.Dialect, a.Schema, a.Snapshots, ""}))
	}
}

// SelectStart starts the span of a recorder's read.
func (t *Tracer) SelectStart(ctx context.Context, s observe.Select) context.Context {
	attrs := recorderAttrs(s.Dialect, s.Schema, s.Snapshots)
	if !s.Notifications {
		attrs = append(attrs, id("aggregate_id", s.OriginatorID))
	}
	return t.start(ctx, "eventsourcing.recorder.select", trace.SpanKindClient, s.Start, attrs...)
}

// SelectEnd ends it.
func (t *Tracer) SelectEnd(ctx context.Context, s observe.Select) {
	attrs := []attribute.KeyValue{attribute.Int("events", s.Events), attribute.Int("bytes", s.Bytes)}
	if s.Notifications {
		attrs = append(attrs, attribute.Int64("first_notification_id", s.FirstNotificationID), attribute.Int64("last_notification_id", s.LastNotificationID))
	}
	end(ctx, s.Err, attrs...)
}

// GroupCommit records the size of a SQLite group commit.
func (t *Tracer) GroupCommit(ctx context.Context, g observe.GroupCommit) {
	set := t.recorders.get(recorderKey{g.Dialect, "", g.Snapshots, errorType(g.Err)})
	t.groupRequests.Record(ctx, int64(g.Requests), set)
	t.groupEvents.Record(ctx, int64(g.Events), set)
}

// BatchStart starts the span of a projection runner's batch.
func (t *Tracer) BatchStart(ctx context.Context, b observe.Batch) context.Context {
	return t.start(ctx, "eventsourcing.projection.batch", trace.SpanKindInternal, b.Start,
		attribute.String("consumer", b.Consumer), attribute.String("upstream", b.Upstream), attribute.Int("events", b.Events),
		attribute.Int64("first_notification_id", b.FirstNotificationID), attribute.Int64("last_notification_id", b.LastNotificationID),
		attribute.Int64("prior", b.Prior))
}

// BatchEnd ends it and records the batch's metrics: throughput and lag when it committed, a conflict
// when another instance had moved the mark.
func (t *Tracer) BatchEnd(ctx context.Context, b observe.Batch) {
	now := time.Now()
	var attrs []attribute.KeyValue
	if b.Err == nil && b.Head > 0 {
		attrs = append(attrs, attribute.Int64("lag", b.Lag()))
	}
	end(ctx, b.Err, attrs...)
	set := t.consumers.get(consumerKey{b.Consumer, b.Upstream, errorType(b.Err)})
	t.batchDuration.Record(ctx, now.Sub(b.Start).Seconds(), set)
	if errors.Is(b.Err, es.ErrConflict) {
		t.conflicts.Add(ctx, 1, t.consumers.get(consumerKey{b.Consumer, b.Upstream, ""}))
	}
	if b.Err != nil {
		return
	}
	t.batchEvents.Record(ctx, int64(b.Events), set)
	t.processed.Add(ctx, int64(b.Events), set)
	if b.Head > 0 {
		t.projectionLag.Record(ctx, b.Lag(), set)
	}
	if !b.Timestamp.IsZero() {
		t.projectionAge.Record(ctx, now.Sub(b.Timestamp).Seconds(), set)
	}
}

// Delivered records the subscription lag of a delivered notification.
func (t *Tracer) Delivered(ctx context.Context, d observe.Delivery) {
	if !d.Timestamp.IsZero() {
		t.subscriptionLag.Record(ctx, time.Since(d.Timestamp).Seconds(), t.consumers.get(consumerKey{d.Consumer, d.Upstream, ""}))
	}
}

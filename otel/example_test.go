package esotel_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	esotel "github.com/eventsourcing-go/eventsourcing/otel"
	"github.com/eventsourcing-go/eventsourcing/repository"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// One tracer, given to the recorder, the event store and the repository: a save is a span holding the
// event store's put, which holds the recorder's append. Here the spans go to an in-memory exporter; an
// application gives the providers an OTLP exporter (see the README).
func ExampleNew() {
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	mp := sdkmetric.NewMeterProvider()
	defer tp.Shutdown(ctx)
	defer mp.Shutdown(ctx)
	t, err := esotel.New(esotel.WithTracerProvider(tp), esotel.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}

	dir, _ := os.MkdirTemp("", "esotel-example-")
	defer os.RemoveAll(dir)
	db, err := ncruces.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := schema.Migrate(ctx, db, schema.SQLite); err != nil {
		log.Fatal(err)
	}
	events, err := sqlite.NewProcessRecorder(ctx, db, sqlite.WithTracer(t))
	if err != nil {
		log.Fatal(err)
	}
	defer events.Close()
	reg := mapper.NewRegistry()
	mapper.Register[Incremented](reg, "example.Incremented")
	mapper.Register[Counter](reg, "example.Counter")
	m, _ := mapper.New(reg)
	counters, err := repository.New[Counter](eventstore.New(m, events, eventstore.WithTracer(t)), repository.WithTracer(t))
	if err != nil {
		log.Fatal(err)
	}

	c := &Counter{}
	aggregate.Trigger(c, Incremented{By: 1})
	if _, err := counters.Save(ctx, c); err != nil {
		log.Fatal(err)
	}
	for _, s := range spans.GetSpans() { // in the order they ended
		fmt.Println(s.Name)
	}
	// Output:
	// eventsourcing.recorder.append
	// eventsourcing.eventstore.put
	// eventsourcing.repository.save
}

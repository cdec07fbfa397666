// Command hookbench measures what the OpenTelemetry tracer costs the module's save and load paths:
// benchkit.HookCases with an esotel.Tracer beside the same paths without a tracer, interleaved by the
// plan of -plan (a benchkit.Plan as JSON), on the memory recorder and on a SQLite file in a temporary
// directory. It prints the []benchkit.HookCost as JSON on standard output.
//
// cmd/esbench runs it (benchkit.OTelHookCosts) for its report: esbench is a program of the library's
// module, which cannot link OpenTelemetry, since the library's go.mod does not name it.
//
// The tracer is the SDK's, as an application sets it up: every span sampled and handed to a batch
// span processor (whose exporter discards them), every measurement aggregated by the metric SDK
// (whose reader is never collected during the run). What is measured is the cost to the operation's
// goroutine, not the export.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	esotel "github.com/eventsourcing-go/eventsourcing/otel"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

func main() {
	plan := flag.String("plan", `{"Rounds":3,"Chunks":1,"Chunk":5000000,"MinCalls":1}`, "the benchkit.Plan of the measurement, as JSON")
	flag.Parse()
	var p benchkit.Plan
	if err := json.Unmarshal([]byte(*plan), &p); err != nil {
		fmt.Fprintln(os.Stderr, "hookbench: -plan:", err)
		os.Exit(2)
	}
	costs, err := measure(context.Background(), p)
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(costs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookbench:", err)
		os.Exit(1)
	}
}

// measure measures the OpenTelemetry tracer's cases by plan p.
func measure(ctx context.Context, p benchkit.Plan) ([]benchkit.HookCost, error) {
	tracings, cases, done, err := setUp(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return benchkit.HookCosts(ctx, p, tracings, cases)
}

// setUp returns the tracings measured (no tracer, then the OpenTelemetry tracer), their cases on a new
// SQLite file, and the function that removes it all.
func setUp(ctx context.Context) ([]benchkit.Tracing, []benchkit.HookCase, func(), error) {
	var cleanups []func()
	done := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(err error) ([]benchkit.Tracing, []benchkit.HookCase, func(), error) {
		done()
		return nil, nil, nil, err
	}
	dir, err := os.MkdirTemp("", "hookbench-")
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	db, err := ncruces.Open(ctx, filepath.Join(dir, "events.db"))
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { db.Close() })
	if err := schema.Migrate(ctx, db, schema.SQLite); err != nil {
		return fail(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	cleanups = append(cleanups, func() {
		_ = errors.Join(tp.Shutdown(context.Background()), mp.Shutdown(context.Background()))
	})
	tracer, err := esotel.New(esotel.WithTracerProvider(tp), esotel.WithMeterProvider(mp))
	if err != nil {
		return fail(err)
	}
	tracings := []benchkit.Tracing{{Name: "no tracer"}, {Name: "OpenTelemetry tracer", Tracer: tracer}}
	cases, closeCases, err := benchkit.HookCases(ctx, db, tracings...)
	cleanups = append(cleanups, closeCases)
	if err != nil {
		return fail(err)
	}
	return tracings, cases, done, nil
}

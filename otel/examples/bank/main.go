// Command bank is the bank example of the module (package demo; `go run ./examples/bank` in the
// repository's root runs it without OpenTelemetry) with the OpenTelemetry instrumentation of this
// module: with -trace, every span and metric of the run is exported to standard output as JSON, after
// the example's own lines (spans in batches as they end, metrics at the end).
//
//	cd otel && go run ./examples/bank -trace
//	cd otel && go run ./examples/bank -trace -postgres "$ES_POSTGRES_DSN"
//
// It takes the flags of the example (-db, -postgres) and its environment (ES_CIPHER_KEYS,
// ES_POSTGRES_DSN).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/eventsourcing-go/eventsourcing/examples/bank/demo"
	esotel "github.com/eventsourcing-go/eventsourcing/otel"
)

func main() {
	cfg := demo.Flags(flag.CommandLine)
	trace := flag.Bool("trace", false, "export spans and metrics to standard output, as JSON")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *cfg, *trace); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

// run runs the example, with its spans and metrics exported to out when traced.
func run(ctx context.Context, out io.Writer, cfg demo.Config, traced bool) (err error) {
	if traced {
		tracer, shutdown, err := stdoutTelemetry(out)
		if err != nil {
			return err
		}
		// Shutting the providers down exports what is left: the last spans, and the metrics.
		defer func() { err = errors.Join(err, shutdown(context.Background())) }()
		cfg.Tracer = tracer
	}
	return demo.Run(ctx, out, cfg)
}

// stdoutTelemetry returns a tracer whose spans and metrics are exported to w, and the function that
// flushes and stops the exporters. To export elsewhere, give the providers other exporters (see the
// README: OTLP to a collector).
func stdoutTelemetry(w io.Writer) (*esotel.Tracer, func(context.Context) error, error) {
	spans, err := stdouttrace.New(stdouttrace.WithWriter(w))
	if err != nil {
		return nil, nil, err
	}
	metrics, err := stdoutmetric.New(stdoutmetric.WithWriter(w))
	if err != nil {
		return nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metrics)))
	shutdown := func(ctx context.Context) error { return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx)) }
	tracer, err := esotel.New(esotel.WithTracerProvider(tp), esotel.WithMeterProvider(mp))
	if err != nil {
		return nil, nil, errors.Join(err, shutdown(context.Background()))
	}
	return tracer, shutdown, nil
}

// Command bank is the runnable example: a small bank whose accounts are event-sourced aggregates (see
// package demo for what it does).
//
// By default it runs on a new SQLite file in a temporary directory (-db keeps a file of your choice).
// With -postgres DSN, or ES_POSTGRES_DSN set, it runs on PostgreSQL, in the schemas "bank" and
// "compliance". The key ring comes from ES_CIPHER_KEYS (ID:BASE64,…; see cipher.ParseKeyRing), or is
// made anew, and is never printed.
//
// The same example exporting its spans and metrics to standard output (flag -trace) is in the
// OpenTelemetry module: cd otel && go run ./examples/bank -trace. It lives there so that this module
// does not depend on OpenTelemetry.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/eventsourcing-go/eventsourcing/examples/bank/demo"
)

func main() {
	cfg := demo.Flags(flag.CommandLine)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := demo.Run(ctx, os.Stdout, *cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

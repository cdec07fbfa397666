// Command esbench measures the event store and writes BENCHMARKS.md: every figure beside a baseline
// measured in the same run (a raw driver loop, the table-lock ordering, one writer, json alone …), as
// medians over several runs with their spread, and checks the performance targets against the ratios.
//
//	go run ./cmd/esbench -out BENCHMARKS.md            # what `make bench` runs
//	go run ./cmd/esbench -quick -out /tmp/b.md         # a smoke test with tiny sizes
//	go run ./cmd/esbench -only 'append|latency'        # some scenarios only
//
// PostgreSQL scenarios use -postgres (default $ES_POSTGRES_DSN, else the local test server); when it
// cannot be reached within a few seconds they are skipped and the report says so. Every SQLite file
// lives in a fresh temporary directory and every PostgreSQL schema is fresh (esbench_<random>); both
// are removed at the end, also after an error or an interrupt.
//
// The measurements, baselines and benchmark domain are package internal/benchkit, which the Go
// benchmarks of the packages share; the report's prose is report.md.tmpl.
package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

type config struct {
	out   string
	pgDSN string
	runs  int
	quick bool
	only  *regexp.Regexp
	args  []string      // the command line, for the report
	chunk time.Duration // the least time of one chunk of one operation (see plan)
}

// scenario is one section of the report.
type scenario struct {
	name, title string
	run         func(ctx context.Context, e *env, s *section) error
}

func scenarios() []scenario {
	return []scenario{
		{"append", "1. Append, one event per save, one writer", runAppendOne},
		{"batch", "2. Append, 10, 100 and 1,000 events per save", runAppendBatch},
		{"concurrent", "3. Sixteen concurrent writers, one event per save", runConcurrent},
		{"load", "4. Load an aggregate, with and without snapshots", runLoad},
		{"log", "5. Read the notification log", runLog},
		{"latency", "6. Subscription latency, commit to delivery", runLatency},
		{"mapper", "7. Mapper: encode and decode per setting", runMapper},
		{"memory", "8. Allocations and peak memory of the load and save paths", runMemory},
		{"catchup", "9. Projection catch-up", runCatchUp},
		{"process", "10. Process-application catch-up", runCatchUp},
		{"live", "11. Projection latency, commit to applied", runLive},
		{"hooks", "12. Cost of the tracing hooks", runHooks},
		{"keys", "13. Per-subject data keys and key rotation", runKeys},
	}
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "esbench:", err)
		os.Exit(2)
	}
	// Progress goes to stderr; if whoever reads it goes away (esbench … 2>&1 | head), writes fail
	// instead of killing the program before it has dropped its PostgreSQL schemas.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-ctx.Done()
		stop() // a second interrupt kills at once
	}()
	failed, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "esbench:", err)
		os.Exit(1)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "esbench: %d scenario(s) failed; see %s\n", failed, cfg.out)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("esbench", flag.ContinueOnError)
	dsn := cmp.Or(os.Getenv("ES_POSTGRES_DSN"), defaultDSN)
	cfg := config{args: args}
	fs.StringVar(&cfg.out, "out", "BENCHMARKS.md", "the report to write")
	fs.StringVar(&cfg.pgDSN, "postgres", dsn, `PostgreSQL DSN ("off" or empty: skip PostgreSQL)`)
	fs.IntVar(&cfg.runs, "runs", 7, "runs per figure: medians and spreads are over runs")
	fs.BoolVar(&cfg.quick, "quick", false, "tiny sizes and short runs: a smoke test, not a measurement")
	var names []string
	for _, s := range scenarios() {
		names = append(names, s.name)
	}
	only := fs.String("only", "", "run only the scenarios whose names match this regexp: "+strings.Join(names, ", "))
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.runs < 1 {
		return cfg, errors.New("-runs must be at least 1")
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return cfg, fmt.Errorf("-only: %w", err)
		}
		cfg.only = re
	}
	cfg.chunk = pick(cfg, 50*time.Millisecond, 5*time.Millisecond)
	return cfg, nil
}

// pick returns full, or quick in -quick mode.
func pick[T any](c config, full, quick T) T {
	if c.quick {
		return quick
	}
	return full
}

// plan returns the default interleaving plan; scenarios lengthen or shorten its chunks to suit their
// operations.
func (c config) plan() benchkit.Plan {
	return benchkit.Plan{Rounds: c.runs, Chunks: pick(c, 4, 1), Chunk: c.chunk, MinCalls: pick(c, 3, 1)}
}

// run measures every selected scenario and writes the report. It returns how many scenarios failed;
// their sections say why. An error is returned only when no report could be written (or on
// interrupt).
func run(ctx context.Context, cfg config, progress io.Writer) (failed int, err error) {
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(progress, "esbench %6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	e, err := newEnv(ctx, cfg, logf)
	if e != nil {
		defer func() {
			logf("cleaning up (temporary files, PostgreSQL schemas)")
			e.close(2 * time.Minute)
		}()
	}
	if err != nil {
		return 0, err
	}
	if e.pgSkip != "" {
		logf("%s: PostgreSQL scenarios are skipped", e.pgSkip)
	}
	m := describeMachine(ctx, e)
	var secs []*section
	for _, sc := range scenarios() {
		s := &section{Name: sc.name, Title: sc.title, Ran: cfg.only == nil || cfg.only.MatchString(sc.name)}
		secs = append(secs, s)
		if !s.Ran {
			continue
		}
		logf("scenario %s: %s", sc.name, sc.title)
		t0 := time.Now()
		if err := sc.run(ctx, e, s); err != nil {
			if ctx.Err() != nil {
				return failed, fmt.Errorf("interrupted during scenario %s: %w", sc.name, ctx.Err())
			}
			s.Err = err
			failed++
			logf("scenario %s FAILED: %v", sc.name, err)
		}
		logf("scenario %s done in %.1fs", sc.name, time.Since(t0).Seconds())
	}
	m[len(m)-1][1] += "; at end " + benchkit.LoadAvg()
	var buf bytes.Buffer
	if err := writeReport(&buf, cfg, m, e, secs, time.Since(start), start); err != nil {
		return failed, fmt.Errorf("write the report: %w", err)
	}
	if err := os.WriteFile(cfg.out, buf.Bytes(), 0o644); err != nil {
		return failed, err
	}
	logf("wrote %s in %.1fs", cfg.out, time.Since(start).Seconds())
	return failed, nil
}

package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

// Benchmarks of the recorders, each beside the raw baseline of package benchkit doing the same work
// through the same driver in the same run: hand-written SQL with no ordering, no function and no
// checks, scanning into the same Go types. Recorder and baseline take turns, so that they see the same
// load; the ratios (x-raw-speed, xid/table_lock) are the figures to read. Run with
//
//	ES_REQUIRE_POSTGRES=1 go test -run '^$' -bench 'Append|SelectEvents|ConcurrentWriters' -benchtime 1000x ./db/postgres
//	ES_REQUIRE_POSTGRES=1 go test -run '^$' -bench PageNotifications -benchtime 5x ./db/postgres
//
// (fixed iteration counts keep the run short; one PageNotifications op reads 100,000 notifications).

var payload = benchkit.SampleState() // a typical encrypted, compressed event

// rawReader returns the raw read baselines on the schema of r, closed when the benchmark ends.
func rawReader(b *testing.B, rec *postgres.ProcessRecorder) *benchkit.Reader {
	b.Helper()
	db, name := dbOf(b, rec)
	r, err := benchkit.NewPostgresReader(b.Context(), db, name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 10, 100} {
		for _, o := range orderings {
			b.Run(fmt.Sprintf("events=%d/%v", size, o), func(b *testing.B) {
				r := newProcess(b, postgres.WithOrdering(o))
				raw := benchkit.NewPostgresWriter(pgtestSchema(b))
				benchkit.Paired(b, benchkit.AppendOp("recorder", benchkit.Inserts(r), size, payload), benchkit.AppendOp("raw", raw.Append, size, payload))
			})
		}
	}
}

func BenchmarkSelectEvents(b *testing.B) {
	r := newProcess(b)
	id := benchkit.NewID()
	if _, err := r.InsertEvents(context.Background(), benchkit.StoredEvents(id, 1, 100, payload)); err != nil {
		b.Fatal(err)
	}
	benchkit.Paired(b, benchkit.SelectOp("recorder", benchkit.Selects(r), id, 100), benchkit.SelectOp("raw", rawReader(b, r).SelectEvents, id, 100))
}

// BenchmarkPageNotifications reads a log of 100,000 notifications in pages of 1,000; one op is the
// whole log.
func BenchmarkPageNotifications(b *testing.B) {
	const total, page = 100_000, 1000
	for _, o := range orderings {
		b.Run(o.String(), func(b *testing.B) {
			r := newProcess(b, postgres.WithOrdering(o))
			if err := benchkit.FillLog(context.Background(), r, total, payload); err != nil {
				b.Fatal(err)
			}
			benchkit.Paired(b, benchkit.WalkOp("recorder", benchkit.RecorderPages(r), page, total),
				benchkit.WalkOp("raw", rawReader(b, r).SelectPage, page, total))
		})
	}
}

// BenchmarkConcurrentWriters: 16 goroutines, each appending one event per call to an aggregate of its
// own, with each ordering and with the raw baseline (IDs taken with no ordering at all, which would
// allow late fills: the ceiling). The three take turns in chunks of 500 appends, so they see the same
// load; b.N appends are made with each (use a multiple of 500). It reports events/s of each and
// xid/table_lock, the speed-up of the xid ordering.
func BenchmarkConcurrentWriters(b *testing.B) {
	const writers, chunk = 16, 500
	saves := func(f benchkit.AppendFunc) *benchkit.Writers {
		return benchkit.NewWriters(writers, func(ctx context.Context, _ int, id uuid.UUID, v int64) error {
			_, err := f(ctx, benchkit.StoredEvents(id, v, 1, payload))
			return err
		})
	}
	modes := []struct {
		name string
		ws   *benchkit.Writers
	}{
		{"xid", saves(benchkit.Inserts(newProcess(b, postgres.WithOrdering(postgres.OrderingXID))))},
		{"table_lock", saves(benchkit.Inserts(newProcess(b, postgres.WithOrdering(postgres.OrderingTableLock))))},
		{"raw", saves(benchkit.NewPostgresWriter(pgtestSchema(b)).Append)},
	}
	elapsed := make([]time.Duration, len(modes))
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		for m, mode := range modes {
			s, err := mode.ws.Run(b.Context(), min(chunk, b.N-done), 0)
			if err != nil {
				b.Fatalf("%s: %v", mode.name, err)
			}
			elapsed[m] += s.Elapsed
		}
	}
	b.StopTimer()
	rate := make([]float64, len(modes))
	for m, mode := range modes {
		rate[m] = float64(b.N) / elapsed[m].Seconds()
		b.ReportMetric(rate[m], mode.name+"-events/s")
	}
	b.ReportMetric(rate[0]/rate[1], "xid/table_lock")
	b.ReportMetric(rate[0]/rate[2], "xid/raw")
}

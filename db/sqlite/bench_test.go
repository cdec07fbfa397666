package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

// Every benchmark comes in pairs: .../recorder runs the recorder, .../raw the hand-written baseline of
// package benchkit doing the same work through the same driver, in the same run, on a database set up
// the same way (ncruces.Open on a file, migrated). BenchmarkAppendInterleaved alternates the two call by
// call.

var benchState = benchkit.SampleState()

var syncModes = []struct {
	name string
	mode sqlite.Synchronous
}{{"FULL", sqlite.SynchronousFull}, {"NORMAL", sqlite.SynchronousNormal}}

// rawWriter returns the raw append baseline on db, closed when the benchmark ends.
func rawWriter(b *testing.B, db *sql.DB) *benchkit.SQLiteWriter {
	b.Helper()
	w, err := benchkit.NewSQLiteWriter(b.Context(), db)
	return closedAtEnd(b, w, err)
}

// rawReader returns the raw read baselines on db, closed when the benchmark ends.
func rawReader(b *testing.B, db *sql.DB) *benchkit.Reader {
	b.Helper()
	r, err := benchkit.NewSQLiteReader(b.Context(), db)
	return closedAtEnd(b, r, err)
}

// forEachAppend runs bench as sync=<mode>/events=<n> for each synchronous mode and each number of
// events per call of the append benchmarks.
func forEachAppend(b *testing.B, bench func(b *testing.B, mode sqlite.Synchronous, n int)) {
	for _, s := range syncModes {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("sync=%s/events=%d", s.name, n), func(b *testing.B) { bench(b, s.mode, n) })
		}
	}
}

// syncedFile opens a fresh database file with the synchronous setting mode.
func syncedFile(b *testing.B, mode sqlite.Synchronous) *sql.DB {
	return openFile(b, sqlite.WithSynchronous(mode))
}

// syncedRecorder returns a process recorder with the synchronous setting mode, on a fresh file of its own.
func syncedRecorder(b *testing.B, mode sqlite.Synchronous) *sqlite.ProcessRecorder {
	return newProcessRecorder(b, syncedFile(b, mode), sqlite.WithSynchronous(mode))
}

// closedAtEnd returns c, closed when the benchmark ends; err, the error of c's making, fails it.
func closedAtEnd[C io.Closer](b *testing.B, c C, err error) C {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkAppend: one InsertEvents call of n events per iteration, each call a new originator.
func BenchmarkAppend(b *testing.B) {
	forEachAppend(b, func(b *testing.B, mode sqlite.Synchronous, n int) {
		b.Run("recorder", func(b *testing.B) {
			r := syncedRecorder(b, mode)
			benchkit.Run(b, benchkit.AppendOp("recorder", benchkit.Inserts(r), n, benchState), "events")
		})
		b.Run("raw", func(b *testing.B) {
			w := rawWriter(b, syncedFile(b, mode))
			benchkit.Run(b, benchkit.AppendOp("raw", w.Append, n, benchState), "events")
		})
	})
}

// BenchmarkSelectEvents: one aggregate's 100 events per iteration.
func BenchmarkSelectEvents(b *testing.B) {
	ctx := context.Background()
	db := openFile(b)
	r := newProcessRecorder(b, db)
	id := benchkit.NewID()
	if _, err := r.InsertEvents(ctx, benchkit.StoredEvents(id, 1, 100, benchState)); err != nil {
		b.Fatal(err)
	}
	if err := benchkit.FillLog(ctx, r, 1000, benchState); err != nil { // other aggregates around it
		b.Fatal(err)
	}
	b.Run("events=100/recorder", func(b *testing.B) {
		benchkit.Run(b, benchkit.SelectOp("recorder", benchkit.Selects(r), id, 100), "events")
	})
	b.Run("events=100/raw", func(b *testing.B) {
		benchkit.Run(b, benchkit.SelectOp("raw", rawReader(b, db).SelectEvents, id, 100), "events")
	})
}

// BenchmarkSelectNotifications: one iteration pages through 100,000 notifications, 1,000 a page. The
// data is written once for both halves of the pair.
func BenchmarkSelectNotifications(b *testing.B) {
	const total, page = 100_000, 1000
	db := openFile(b, sqlite.WithSynchronous(sqlite.SynchronousNormal))
	r := newProcessRecorder(b, db, sqlite.WithSynchronous(sqlite.SynchronousNormal))
	if err := benchkit.FillLog(context.Background(), r, total, benchState); err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("notifications=%d/page=%d", total, page)
	b.Run(name+"/recorder", func(b *testing.B) {
		benchkit.Run(b, benchkit.WalkOp("recorder", benchkit.RecorderPages(r), page, total), "notifications")
	})
	b.Run(name+"/raw", func(b *testing.B) {
		benchkit.Run(b, benchkit.WalkOp("raw", rawReader(b, db).SelectPage, page, total), "notifications")
	})
}

// BenchmarkConcurrentAppend: writers goroutines save one event per call, b.N events in all. The
// recorder commits concurrent saves together (group commit); the raw baseline gives each writer its own
// connection, and SQLite's file lock (with the busy timeout) serialises them, one commit each.
func BenchmarkConcurrentAppend(b *testing.B) {
	for _, s := range syncModes {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("sync=%s/writers=%d/recorder", s.name, writers), func(b *testing.B) {
				r := syncedRecorder(b, s.mode)
				commits := sqlite.Commits(r)
				benchkit.RunWriters(b, benchkit.NewWriters(writers, func(ctx context.Context, _ int, id uuid.UUID, v int64) error {
					_, err := r.InsertEvents(ctx, benchkit.StoredEvents(id, v, 1, benchState))
					return err
				}))
				b.ReportMetric(float64(b.N)/float64(sqlite.Commits(r)-commits), "events/commit")
			})
			b.Run(fmt.Sprintf("sync=%s/writers=%d/raw", s.name, writers), func(b *testing.B) {
				db := syncedFile(b, s.mode)
				ws := make([]*benchkit.SQLiteWriter, writers)
				for i := range ws {
					ws[i] = rawWriter(b, db)
				}
				benchkit.RunWriters(b, benchkit.NewWriters(writers, func(ctx context.Context, w int, id uuid.UUID, v int64) error {
					_, err := ws[w].Append(ctx, benchkit.StoredEvents(id, v, 1, benchState))
					return err
				}))
			})
		}
	}
}

// BenchmarkAppendInterleaved alternates the recorder and the raw loop call by call (each on its own
// database file), so that both see the same machine: on a shared machine, two benchmarks run one after
// the other can differ by more than the code does. See benchkit.Paired for its metrics.
func BenchmarkAppendInterleaved(b *testing.B) {
	forEachAppend(b, func(b *testing.B, mode sqlite.Synchronous, n int) {
		r := syncedRecorder(b, mode)
		w := rawWriter(b, syncedFile(b, mode))
		benchkit.Paired(b, benchkit.AppendOp("recorder", benchkit.Inserts(r), n, benchState), benchkit.AppendOp("raw", w.Append, n, benchState))
	})
}

// BenchmarkGroupCommitBound is what SQLite itself allows group commit at 16 writers, with no recorder
// in the way: the raw writer alternates one transaction of one event (a lone writer's commit) with one
// transaction of 16 events, one for each of 16 aggregates (a full group of BenchmarkConcurrentAppend's
// 16 writers, each saving to an aggregate of its own), at synchronous FULL. x-rate is the events per
// second of the second over those of the first: the most a group of 16 can gain over one writer.
func BenchmarkGroupCommitBound(b *testing.B) {
	ctx := b.Context()
	w := rawWriter(b, openFile(b))
	group := benchkit.GroupOp("16 aggregates", w.Append, 16, benchState)
	lone := benchkit.GroupOp("1 aggregate", w.Append, 1, benchState)
	var one, sixteen time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := group.Call(ctx); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := lone.Call(ctx); err != nil {
			b.Fatal(err)
		}
		sixteen, one = sixteen+mid.Sub(start), one+time.Since(mid)
	}
	b.ReportMetric(16*float64(one)/float64(sixteen), "x-rate")
}

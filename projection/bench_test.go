package projection_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// The catch-up benchmarks: a log of catchUpEvents deposits (saves of 100), then a projection (one
// UPSERT per event, in the database of its tracking) or a process application catches up with it from
// the start, beside the hand-written loop of package benchkit that does the same work in pages of
// 1,000, one transaction each. Runner and loop take turns; x-raw-speed is the loop's time ÷ the
// runner's (above 1 the runner is faster). The one-per-transaction benchmarks run the same runner
// with WithBatch(1, …) over the first catchUpFirst events and report events/s, to compare with the
// runner's rate (catchUpEvents ÷ recorder-ns/op). Run with
//
//	go test -run '^$' -bench CatchUpSQLite -benchtime 3x ./projection
//	ES_REQUIRE_POSTGRES=1 go test -run '^$' -bench CatchUpPostgres -benchtime 3x ./projection
//
// (PostgreSQL benchmarks under the shared lock, as every PostgreSQL test).

const catchUpEvents, catchUpFirst = 10_000, 1_000

func BenchmarkCatchUpSQLite(b *testing.B) {
	up := openSQLite(b, filepath.Join(b.TempDir(), "upstream.db"))
	c := benchkit.NewCatchUp(up.ProcessRecorder, up.db, "")
	if err := c.Fill(b.Context(), catchUpEvents); err != nil {
		b.Fatal(err)
	}
	benchmarkCatchUp(b, c, openSQLite(b, filepath.Join(b.TempDir(), "follower.db")))
}

func BenchmarkCatchUpPostgres(b *testing.B) {
	open := func() (*postgres.ProcessRecorder, *sql.DB, string) {
		db, name := pgtest.Schema(b)
		rec, err := postgres.NewProcessRecorder(context.Background(), db, postgres.WithSchema(name))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rec.Close() })
		return rec, db, name
	}
	up, db, name := open()
	c := benchkit.NewCatchUp(up, db, name)
	if err := c.Fill(b.Context(), catchUpEvents); err != nil {
		b.Fatal(err)
	}
	follower, _, _ := open()
	benchmarkCatchUp(b, c, follower)
}

func benchmarkCatchUp(b *testing.B, c *benchkit.CatchUp, follower es.ProcessRecorder) {
	one := projection.WithBatch(1, projection.DefaultBatchTime)
	b.Run("projection/runner-vs-loop", func(b *testing.B) {
		benchkit.Paired(b, c.RunnerOp("runner", catchUpEvents), c.LoopOp("loop"))
	})
	b.Run("projection/one-per-transaction", func(b *testing.B) {
		benchkit.Run(b, c.RunnerOp("runner-1", catchUpFirst, one), "events")
	})
	b.Run("process/runner-vs-loop", func(b *testing.B) {
		benchkit.Paired(b, c.ProcessOp("process", follower, catchUpEvents), c.ProcessLoopOp("loop", follower))
	})
	b.Run("process/one-per-transaction", func(b *testing.B) {
		benchkit.Run(b, c.ProcessOp("process-1", follower, catchUpFirst, one), "events")
	})
}

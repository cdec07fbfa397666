package repository_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/internal/sqlitetest"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

// BenchmarkGetSQLite loads accounts of n events from a SQLite file (WAL, synchronous NORMAL: loads do
// not depend on it) without snapshots, beside the hand-written load of the same events stored as
// plain JSON (raw SELECT, encoding/json, Apply).
func BenchmarkGetSQLite(b *testing.B) {
	ctx := context.Background()
	open := func(name string) *sql.DB {
		return sqlitetest.OpenMigrated(b, filepath.Join(b.TempDir(), name), sqlite.WithSynchronous(sqlite.SynchronousNormal))
	}
	db, rawDB := open("events.db"), open("raw.db")
	events := must(sqlite.NewProcessRecorder(ctx, db))
	raw := must(sqlite.NewProcessRecorder(ctx, rawDB))
	snaps := must(sqlite.NewSnapshotRecorder(ctx, db))
	ls, err := benchkit.NewLoadStore(events, snaps, 100, benchkit.Inserts(raw), benchkit.Selects(raw))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkLoads(b, ls, 100, 1000)
}

package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
)

// stores are the kinds of database every recorder test runs on.
var stores = []struct {
	name string
	open func(t testing.TB, opts ...sqlite.Option) *sql.DB
}{
	{"file", openFile},
	{"memory", openMemory},
}

// openFile opens a fresh, migrated database file in a temporary directory.
func openFile(t testing.TB, opts ...sqlite.Option) *sql.DB {
	t.Helper()
	return openMigrated(t, filepath.Join(t.TempDir(), "events.db"), opts...)
}

// openMemory opens a fresh, migrated in-memory database.
func openMemory(t testing.TB, opts ...sqlite.Option) *sql.DB {
	t.Helper()
	return openMigrated(t, ncruces.Memory, opts...)
}

func openMigrated(t testing.TB, name string, opts ...sqlite.Option) *sql.DB {
	t.Helper()
	db := openRaw(t, name, opts...)
	if err := sqlite.Migrate(context.Background(), db, opts...); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// openRaw opens name without migrating it; the database is closed when the test ends.
func openRaw(t testing.TB, name string, opts ...sqlite.Option) *sql.DB {
	t.Helper()
	db, err := ncruces.Open(context.Background(), name, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newProcessRecorder(t testing.TB, db *sql.DB, opts ...sqlite.Option) *sqlite.ProcessRecorder {
	t.Helper()
	r, err := sqlite.NewProcessRecorder(context.Background(), db, opts...)
	if err != nil {
		t.Fatalf("new process recorder: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newSnapshotRecorder(t testing.TB, db *sql.DB, opts ...sqlite.Option) *sqlite.SnapshotRecorder {
	t.Helper()
	r, err := sqlite.NewSnapshotRecorder(context.Background(), db, opts...)
	if err != nil {
		t.Fatalf("new snapshot recorder: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

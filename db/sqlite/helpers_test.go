package sqlite_test

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/internal/sqlitetest"
)

// opener opens a fresh, migrated database of one kind.
type opener = func(t testing.TB, opts ...sqlite.Option) *sql.DB

// stores are the kinds of database every recorder test runs on.
var stores = []struct {
	name string
	open opener
}{
	{"file", openFile},
	{"memory", openMemory},
}

// forEachStore runs test as a subtest on each kind of database in stores.
func forEachStore(t *testing.T, test func(t *testing.T, open opener)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { test(t, s.open) })
	}
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

// openMigrated opens name and migrates it; openRaw opens it without migrating it. Either database is
// closed when the test ends.
var openMigrated, openRaw = sqlitetest.OpenMigrated, sqlitetest.OpenRaw

func newProcessRecorder(t testing.TB, db *sql.DB, opts ...sqlite.Option) *sqlite.ProcessRecorder {
	t.Helper()
	return newRecorder(t, "process", sqlite.NewProcessRecorder, db, opts...)
}

func newSnapshotRecorder(t testing.TB, db *sql.DB, opts ...sqlite.Option) *sqlite.SnapshotRecorder {
	t.Helper()
	return newRecorder(t, "snapshot", sqlite.NewSnapshotRecorder, db, opts...)
}

// newRecorder makes a recorder of the given kind on db with newR, closed when the test ends.
func newRecorder[R io.Closer](t testing.TB, kind string, newR func(context.Context, *sql.DB, ...sqlite.Option) (R, error), db *sql.DB, opts ...sqlite.Option) R {
	t.Helper()
	r, err := newR(context.Background(), db, opts...)
	if err != nil {
		t.Fatalf("new %s recorder: %v", kind, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

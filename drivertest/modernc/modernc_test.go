// The suites through modernc.org/sqlite (pure Go, driver name "sqlite").
package modernc_test

import (
	"crypto/rand"
	"database/sql"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/eventsourcing-go/eventsourcing/drivertest"
)

func open(dsn func(t testing.TB) string) func(t testing.TB) *sql.DB {
	return func(t testing.TB) *sql.DB {
		t.Helper()
		db, err := sql.Open("sqlite", dsn(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

func file(t testing.TB) string { return drivertest.TempFile(t) }

// memdb is SQLite's memdb VFS: one in-memory database shared by the connections that name it.
func memdb(t testing.TB) string {
	return "file:/" + rand.Text() + "?vfs=memdb&_pragma=busy_timeout(10000)"
}

func TestFile(t *testing.T)   { drivertest.SQLite(t, open(file)) }
func TestMemory(t *testing.T) { drivertest.SQLite(t, open(memdb)) }

func BenchmarkWakeUp(b *testing.B) {
	drivertest.WakeUp(b, drivertest.SQLiteDatabase(b, open(file)(b)))
}

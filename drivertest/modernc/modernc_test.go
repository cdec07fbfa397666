// The suites through modernc.org/sqlite (pure Go, driver name "sqlite").
package modernc_test

import (
	"crypto/rand"
	"database/sql"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/eventsourcing-go/eventsourcing/drivertest"
)

// open returns a function opening the database that dsn names through the driver.
func open(dsn func(t testing.TB) string) func(t testing.TB) *sql.DB {
	return drivertest.OpenSQLite("sqlite", dsn)
}

// memdb is SQLite's memdb VFS: one in-memory database shared by the connections that name it.
func memdb(t testing.TB) string {
	return "file:/" + rand.Text() + "?vfs=memdb&_pragma=busy_timeout(10000)"
}

func TestFile(t *testing.T)   { drivertest.SQLite(t, open(drivertest.TempFile)) }
func TestMemory(t *testing.T) { drivertest.SQLite(t, open(memdb)) }

func BenchmarkWakeUp(b *testing.B) {
	drivertest.WakeUp(b, drivertest.SQLiteDatabase(b, open(drivertest.TempFile)(b)))
}

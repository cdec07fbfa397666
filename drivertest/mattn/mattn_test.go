// The suites through mattn/go-sqlite3 (cgo). This package imports package sqlite and mattn's driver,
// which registers "sqlite3": it links only because package sqlite loads no driver of its own.
package mattn_test

import (
	"crypto/rand"
	"database/sql"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/eventsourcing-go/eventsourcing/drivertest"
)

// open returns a function opening dsn, in which %s stands for a new file path or name.
func open(dsn func(t testing.TB) string) func(t testing.TB) *sql.DB {
	return func(t testing.TB) *sql.DB {
		t.Helper()
		db, err := sql.Open("sqlite3", dsn(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

func file(t testing.TB) string { return drivertest.TempFile(t) }

// memdb is SQLite's memdb VFS: one in-memory database shared by the connections that name it.
func memdb(t testing.TB) string { return "file:/" + rand.Text() + "?vfs=memdb&_busy_timeout=10000" }

// sharedCache is the in-memory database of SQLite's shared-cache mode.
func sharedCache(t testing.TB) string { return "file:" + rand.Text() + "?mode=memory&cache=shared" }

func TestFile(t *testing.T)        { drivertest.SQLite(t, open(file)) }
func TestMemory(t *testing.T)      { drivertest.SQLite(t, open(memdb)) }
func TestSharedCache(t *testing.T) { drivertest.SQLite(t, open(sharedCache)) }

func BenchmarkWakeUp(b *testing.B) {
	drivertest.WakeUp(b, drivertest.SQLiteDatabase(b, open(file)(b)))
}

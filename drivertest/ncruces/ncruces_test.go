// The suites through ncruces/go-sqlite3, opened by package ncruces, as the module's own tests do.
package ncruces_test

import (
	"database/sql"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/drivertest"
)

func open(name string) func(t testing.TB) *sql.DB {
	return func(t testing.TB) *sql.DB {
		t.Helper()
		if name != ncruces.Memory {
			name = drivertest.TempFile(t)
		}
		db, err := ncruces.Open(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

func TestFile(t *testing.T)   { drivertest.SQLite(t, open("file")) }
func TestMemory(t *testing.T) { drivertest.SQLite(t, open(ncruces.Memory)) }

func BenchmarkWakeUp(b *testing.B) {
	drivertest.WakeUp(b, drivertest.SQLiteDatabase(b, open("file")(b)))
}

// Package sqlitetest holds what the tests of package sqlite and of its driver package ncruces share.
package sqlitetest

import (
	"context"
	"database/sql"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
)

// OpenRaw opens name through ncruces without migrating it; the database is closed when the test ends.
func OpenRaw(t testing.TB, name string, opts ...sqlite.Option) *sql.DB {
	t.Helper()
	db, err := ncruces.Open(context.Background(), name, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Package sqlitetest holds what the tests of several packages need of a SQLite database: one opened
// through ncruces, closed when the test ends, and migrated or not.
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

// OpenMigrated opens name as OpenRaw does and migrates it with sqlite.Migrate.
func OpenMigrated(t testing.TB, name string, opts ...sqlite.Option) *sql.DB {
	t.Helper()
	db := OpenRaw(t, name, opts...)
	if err := sqlite.Migrate(context.Background(), db, opts...); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/datakey/datakeytest"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

func TestKeyStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		datakeytest.Run(t, func(t *testing.T) datakeytest.Backend {
			db := open(t)
			return datakeytest.Backend{
				Store:     newKeyStore(t, db),
				Events:    newProcessRecorder(t, db),
				Snapshots: newSnapshotRecorder(t, db),
			}
		})
	})
}

func newKeyStore(t testing.TB, db *sql.DB) *sqlite.KeyStore {
	t.Helper()
	s, err := sqlite.NewKeyStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyStoreNotMigrated(t *testing.T) {
	db := openRaw(t, filepath.Join(t.TempDir(), "x.db"))
	_, err := sqlite.NewKeyStore(context.Background(), db)
	if !errors.Is(err, schema.ErrNotMigrated) {
		t.Fatalf("NewKeyStore on an unmigrated database: %v, want ErrNotMigrated", err)
	}
	if _, err := sqlite.NewKeyStore(context.Background(), nil); err == nil {
		t.Fatal("NewKeyStore(nil) succeeded")
	}
	s, err := sqlite.NewKeyStore(context.Background(), openFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), "nobody"); !errors.Is(err, datakey.ErrNoKey) {
		t.Fatalf("Get: %v", err)
	}
}

// BenchmarkKeyStoreRewrap rewraps 100,000 data keys in a database file.
func BenchmarkKeyStoreRewrap(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	db, ring := openFile(b), benchkit.KeyRing()
	entries, err := benchkit.KeyEntries(ctx, ring, n)
	if err != nil {
		b.Fatal(err)
	}
	if err := benchkit.InsertKeysSQLite(ctx, db, entries); err != nil {
		b.Fatal(err)
	}
	op, err := benchkit.RewrapOp("rewrap", newKeyStore(b, db), ring, n)
	if err != nil {
		b.Fatal(err)
	}
	benchkit.Run(b, op, "keys")
}

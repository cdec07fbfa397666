package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/datakey/datakeytest"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

func TestKeyStore(t *testing.T) {
	datakeytest.Run(t, func(t *testing.T) datakeytest.Backend {
		db, name := pgtest.Schema(t)
		snaps := mustSnapshots(t, db, postgres.WithSchema(name))
		return datakeytest.Backend{
			Store:     newKeyStore(t, db, name),
			Events:    mustProcess(t, db, name),
			Snapshots: snaps,
		}
	})
}

func newKeyStore(t testing.TB, db *sql.DB, schemaName string) *postgres.KeyStore {
	t.Helper()
	s, err := postgres.NewKeyStore(context.Background(), db, postgres.WithSchema(schemaName))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyStoreNotMigrated(t *testing.T) {
	db := pgtest.Open(t)
	name := pgtest.EmptySchema(t, db)
	_, err := postgres.NewKeyStore(context.Background(), db, postgres.WithSchema(name))
	if !errors.Is(err, schema.ErrNotMigrated) {
		t.Fatalf("NewKeyStore on an unmigrated schema: %v, want ErrNotMigrated", err)
	}
	for _, bad := range []postgres.Option{postgres.WithSchema(""), postgres.WithSchema("Bad-Name")} {
		if _, err := postgres.NewKeyStore(context.Background(), db, bad); err == nil {
			t.Fatal("NewKeyStore accepted an invalid schema name")
		}
	}
	if _, err := postgres.NewKeyStore(context.Background(), nil); err == nil {
		t.Fatal("NewKeyStore(nil) succeeded")
	}
	db, name = pgtest.Schema(t)
	s := newKeyStore(t, db, name)
	if _, err := s.Get(context.Background(), "nobody"); !errors.Is(err, datakey.ErrNoKey) {
		t.Fatalf("Get: %v", err)
	}
}

// BenchmarkKeyStoreRewrap rewraps 100,000 data keys in a schema.
func BenchmarkKeyStoreRewrap(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	db, name := pgtest.Schema(b)
	ring := benchkit.KeyRing()
	entries, err := benchkit.KeyEntries(ctx, ring, n)
	if err != nil {
		b.Fatal(err)
	}
	// name is es_test_<hex>: a plain identifier, safe as SQL text.
	if err := benchkit.InsertKeysPostgres(ctx, db, name, entries); err != nil {
		b.Fatal(err)
	}
	op, err := benchkit.RewrapOp("rewrap", newKeyStore(b, db, name), ring, n)
	if err != nil {
		b.Fatal(err)
	}
	benchkit.Run(b, op, "keys")
}

package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/datakey/datakeytest"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

func TestKeyStore(t *testing.T) {
	datakeytest.Run(t, func(t *testing.T) datakeytest.Backend {
		db, name := pgtest.Schema(t)
		snaps, err := postgres.NewSnapshotRecorder(t.Context(), db, postgres.WithSchema(name))
		if err != nil {
			t.Fatal(err)
		}
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
	db, name := pgtest.Schema(b)
	ring, err := cipher.ParseKeyRing("1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		b.Fatal(err)
	}
	// Filled in one statement: a statement per key would take most of a minute.
	var subjects, ids []string
	var wrapped [][]byte
	for _, e := range datakeytest.Entries(b, ring, n) {
		subjects, ids, wrapped = append(subjects, e.Subject), append(ids, e.KeyID), append(wrapped, e.Wrapped)
	}
	// name is es_test_<hex>: a plain identifier, safe as SQL text.
	if _, err := db.Exec(`INSERT INTO `+name+`.data_keys (subject, key_id, wrapped_key)
		SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::bytea[])`, subjects, ids, wrapped); err != nil {
		b.Fatal(err)
	}
	datakeytest.BenchmarkRewrap(b, newKeyStore(b, db, name), ring, n)
}

// Package pgtest gives tests a PostgreSQL database to work in: the server named by ES_POSTGRES_DSN
// (default DefaultDSN), a fresh schema per test, dropped when the test ends.
//
// When the server cannot be reached a test is skipped with a message, unless ES_REQUIRE_POSTGRES=1
// (as in CI), where it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // and registers the "pgx" driver

	"github.com/eventsourcing-go/eventsourcing/schema"
)

// DefaultDSN is the server tests use when ES_POSTGRES_DSN is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns ES_POSTGRES_DSN, or DefaultDSN.
func DSN() string {
	if dsn := os.Getenv("ES_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// Required reports whether ES_REQUIRE_POSTGRES=1: an unreachable server fails tests instead of
// skipping them.
func Required() bool { return os.Getenv("ES_REQUIRE_POSTGRES") == "1" }

var (
	reachOnce sync.Once
	reachErr  error
)

// reachable pings the server once per test binary, so that a missing server costs one timeout.
func reachable() error {
	reachOnce.Do(func() {
		db, err := sql.Open("pgx", DSN())
		if err != nil {
			reachErr = err
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		reachErr = db.PingContext(ctx)
	})
	return reachErr
}

// Open returns a new *sql.DB on the test server (pgx stdlib driver), closed when the test ends. It
// skips the test, or fails it under ES_REQUIRE_POSTGRES=1, when the server cannot be reached.
func Open(t testing.TB) *sql.DB {
	t.Helper()
	if err := reachable(); err != nil {
		msg := fmt.Sprintf("PostgreSQL at ES_POSTGRES_DSN (%s) is not reachable: %v", DSN(), err)
		if Required() {
			t.Fatal(msg + " (ES_REQUIRE_POSTGRES=1)")
		}
		t.Skip(msg + "; set ES_POSTGRES_DSN, or ES_REQUIRE_POSTGRES=1 to fail instead of skipping")
	}
	return OpenDSN(t, DSN())
}

// OpenDSN returns a new *sql.DB on dsn (pgx stdlib driver), closed when the test ends. Unlike Open, it
// neither checks nor skips.
func OpenDSN(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("pgtest: open %s: %v", dsn, err)
	}
	// database/sql keeps 2 idle connections by default: concurrent tests and benchmarks would open and
	// close connections all the time.
	db.SetMaxIdleConns(32)
	t.Cleanup(func() { db.Close() })
	return db
}

// SchemaName returns a fresh random schema name, es_test_<16 hex digits>.
func SchemaName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "es_test_" + hex.EncodeToString(b[:])
}

// Schema makes a fresh schema, migrated with schema.Migrate, and drops it (with everything in it)
// when the test ends. It returns the database (see Open) and the schema's name.
func Schema(t testing.TB) (*sql.DB, string) {
	t.Helper()
	db := Open(t)
	name := EmptySchema(t, db)
	if err := schema.Migrate(context.Background(), db, schema.Postgres, schema.WithSchema(name)); err != nil {
		t.Fatalf("pgtest: migrate schema %s: %v", name, err)
	}
	return db, name
}

// EmptySchema returns a fresh schema name and drops the schema when the test ends, without creating
// or migrating it: for tests of migrations and of recorders on unmigrated schemas.
func EmptySchema(t testing.TB, db *sql.DB) string {
	t.Helper()
	name := SchemaName()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropSchema(ctx, db, name); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return name
}

// dropSchema drops the schema name with everything in it. The drop locks the schema's objects one by
// one, so it can deadlock with a statement of the test still running on the server (an append whose
// context a test cancelled holds the events table and waits for the sequence, which the drop holds);
// the server then cancels one of the two, and when that is the drop it is tried again.
func dropSchema(ctx context.Context, db *sql.DB, name string) error {
	for {
		// name is es_test_<hex>: a plain identifier, safe as SQL text.
		_, err := db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "40P01" || ctx.Err() != nil {
			return err
		}
	}
}

// InSchema returns a new *sql.DB on the test server whose connections have the schema name as their
// search_path, so that unqualified table names (a projection's read model) land in it; closed when
// the test ends. It skips or fails like Open.
func InSchema(t testing.TB, name string) *sql.DB {
	t.Helper()
	Open(t) // skips, or fails, without a server
	cfg, err := pgx.ParseConfig(DSN())
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", DSN(), err)
	}
	cfg.RuntimeParams["search_path"] = name
	db := stdlib.OpenDB(*cfg)
	db.SetMaxIdleConns(32)
	t.Cleanup(func() { db.Close() })
	return db
}

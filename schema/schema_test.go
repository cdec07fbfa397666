package schema_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/internal/sqlitetest"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

func TestValidateSchemaName(t *testing.T) {
	for _, ok := range []string{"app", "_x", "bank_2", strings.Repeat("a", 63)} {
		if err := schema.ValidateSchemaName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "App", "1app", "a-b", "x; drop table events", `"x"`, "a.b", strings.Repeat("a", 64), "ünï"} {
		if err := schema.ValidateSchemaName(bad); !errors.Is(err, schema.ErrInvalidSchemaName) {
			t.Errorf("%q: got %v, want ErrInvalidSchemaName", bad, err)
		}
	}
}

func TestQualify(t *testing.T) {
	q := "SELECT * FROM " + schema.TemplateMarker + "events JOIN " + schema.TemplateMarker + "tracking"
	if got := schema.Qualify(q, "bank"); got != "SELECT * FROM bank.events JOIN bank.tracking" {
		t.Fatalf("got %q", got)
	}
	if got := schema.Qualify(q, ""); got != "SELECT * FROM events JOIN tracking" {
		t.Fatalf("got %q", got)
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	for _, d := range []schema.Dialect{schema.Postgres, schema.SQLite} {
		fsys, err := schema.FS(d)
		if err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no migrations (%v)", d, err)
		}
		for _, f := range files {
			b, _ := fs.ReadFile(fsys, f)
			if !strings.Contains(string(b), "-- +goose Up") || !strings.Contains(string(b), "-- +goose Down") {
				t.Errorf("%s/%s lacks an Up or a Down section", d, f)
			}
		}
	}
	if _, err := schema.FS("mysql"); err == nil {
		t.Fatal("an unknown dialect must be refused")
	}
}

func TestMigrateRefusesBadArguments(t *testing.T) {
	ctx := context.Background()
	if err := schema.Migrate(ctx, nil, schema.SQLite); err == nil {
		t.Fatal("nil *sql.DB accepted")
	}
}

func TestMigrateOptions(t *testing.T) {
	ctx := t.Context()
	db := openMemory(t)
	// One rule for schema names, as in the PostgreSQL recorders: an empty name is refused, not taken to
	// mean the current schema. Checked before anything touches the database.
	if err := schema.Migrate(ctx, db, schema.Postgres, schema.WithSchema("")); !errors.Is(err, schema.ErrInvalidSchemaName) {
		t.Errorf("WithSchema(\"\") on PostgreSQL: %v, want ErrInvalidSchemaName", err)
	}
	if err := schema.Migrate(ctx, db, schema.SQLite, schema.WithSchema("app")); err == nil || !strings.Contains(err.Error(), "SQLite has no schemas") {
		t.Errorf("WithSchema on SQLite: %v", err)
	}
	if err := schema.Migrate(ctx, db, schema.Dialect("oracle")); err == nil || !strings.Contains(err.Error(), `unknown dialect "oracle"`) {
		t.Errorf("unknown dialect: %v", err)
	}
	// Nil options are skipped; applied migrations are logged at debug level, so that the default
	// logger stays quiet.
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := schema.Migrate(ctx, db, schema.SQLite, nil, schema.WithLogger(logger)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "level=DEBUG msg=\"schema: applied migration\"") || !strings.Contains(logged.String(), "00001_create_tables.sql") {
		t.Errorf("log of the migration:\n%s", logged.String())
	}
}

// A SQLite database is not migrated for PostgreSQL: the error says which dialect it is.
func TestMigrateWrongDialect(t *testing.T) {
	ctx := t.Context()
	db := openMemory(t)
	err := schema.Migrate(ctx, db, schema.Postgres)
	if !errors.Is(err, schema.ErrWrongDialect) || !strings.Contains(err.Error(), "the database is SQLite") {
		t.Fatalf("Migrate(SQLite database, Postgres): %v, want an error wrapping ErrWrongDialect naming SQLite", err)
	}
	if err := schema.CheckDialect(ctx, db, schema.SQLite); err != nil {
		t.Fatalf("CheckDialect(SQLite database, SQLite): %v", err)
	}
	db.Close()
	if err := schema.CheckDialect(ctx, db, schema.SQLite); err == nil || errors.Is(err, schema.ErrWrongDialect) || !strings.HasPrefix(err.Error(), "schema: ask the database") {
		t.Fatalf("CheckDialect on a closed database: %v, want the database's error, named once by the package", err)
	}
	if err := schema.Migrate(ctx, db, schema.SQLite); err == nil || !strings.HasPrefix(err.Error(), "schema: migrate: ask the database") {
		t.Fatalf("Migrate on a closed database: %v, want the database's error, named once by the package", err)
	}
}

// openMemory opens an in-memory SQLite database, closed when the test ends.
func openMemory(t *testing.T) *sql.DB {
	t.Helper()
	return sqlitetest.OpenRaw(t, ncruces.Memory)
}

package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/projection/projectiontest"
	"github.com/eventsourcing-go/eventsourcing/recordertest"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// Concurrent runs of Migrate on one new schema, from separate pools (as from separate processes), must
// all succeed and leave one migrated schema.
func TestConcurrentMigrate(t *testing.T) {
	db := pgtest.Open(t)
	name := pgtest.EmptySchema(t, db)
	const runs = 4
	var wg sync.WaitGroup
	errs := make([]error, runs)
	for i := range runs {
		other := pgtest.Open(t)
		wg.Go(func() {
			errs[i] = schema.Migrate(context.Background(), other, schema.Postgres, schema.WithSchema(name))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	var applied int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM `+name+`.goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if want := migrationCount(t); applied != want {
		t.Errorf("%d migrations recorded, want %d", applied, want)
	}
	r := mustProcess(t, db, name)
	if _, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1)); err != nil {
		t.Fatal(err)
	}
}

func migrationCount(t *testing.T) int {
	_, files := migrations(t)
	return len(files)
}

// migrations returns the PostgreSQL migrations and the names of their files.
func migrations(t *testing.T) (fs.FS, []string) {
	t.Helper()
	fsys, err := schema.FS(schema.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return fsys, files
}

// Down removes everything Up created (but the goose table), after which the recorder refuses the
// schema and Up works again.
func TestMigrateDown(t *testing.T) {
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name)
	if _, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1)); err != nil {
		t.Fatal(err)
	}
	r.Close()

	// schema.Migrate has no Down; run goose on the same files, qualified for the schema.
	if _, err := qualifiedProvider(t, db, name).DownTo(t.Context(), 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	var objects int
	if err := db.QueryRowContext(t.Context(), `
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname NOT LIKE 'goose%')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1)`, name).Scan(&objects); err != nil {
		t.Fatal(err)
	}
	if objects != 0 {
		t.Errorf("%d objects left in schema %s after Down", objects, name)
	}
	if _, err := postgres.NewProcessRecorder(t.Context(), db, postgres.WithSchema(name)); err == nil {
		t.Error("recorder accepted a schema migrated down")
	}
	if err := schema.Migrate(t.Context(), db, schema.Postgres, schema.WithSchema(name)); err != nil {
		t.Fatalf("up again: %v", err)
	}
	mustProcess(t, db, name)
}

// qualifiedProvider returns a goose provider over the migrations with the schema marker replaced by
// name, as the goose command-line tool would run files qualified for the schema.
func qualifiedProvider(t *testing.T, db *sql.DB, name string) *goose.Provider {
	t.Helper()
	src, files := migrations(t)
	qualified := fstest.MapFS{}
	for _, f := range files {
		b, err := fs.ReadFile(src, f)
		if err != nil {
			t.Fatal(err)
		}
		qualified[f] = &fstest.MapFile{Data: []byte(schema.Qualify(string(b), name))}
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, qualified, goose.WithTableName(name+"."+goose.DefaultTablename), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A schema made by the first schema version keeps its tracking marks through the migration that keys
// them by consumer: they become the marks of the consumer "".
func TestTrackingMigrationKeepsMarks(t *testing.T) {
	ctx := t.Context()
	db := pgtest.Open(t)
	name := pgtest.EmptySchema(t, db)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	if _, err := qualifiedProvider(t, db, name).UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO `+name+`.tracking (application_name, notification_id) VALUES ('orders', 7), ('bank', 42)`); err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(ctx, db, schema.Postgres, schema.WithSchema(name)); err != nil {
		t.Fatal(err)
	}
	r := mustProcess(t, db, name)
	marks, err := r.TrackingMarks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []es.Tracking{{Upstream: "bank", NotificationID: 42}, {Upstream: "orders", NotificationID: 7}}
	if !slices.Equal(marks, want) {
		t.Fatalf("marks after the migration %+v, want %+v", marks, want)
	}
	if err := r.InsertTracking(ctx, es.Tracking{Consumer: "", Upstream: "bank", NotificationID: 43, Prior: 42}); err != nil {
		t.Fatalf("the migrated mark does not go on: %v", err)
	}
}

// migrateAsCLI applies the migration files in schema/postgres as the goose command-line tool does
// (goose -dir schema/postgres postgres "$DSN" up): the legacy goose API over the directory on disk,
// nothing replaced in the files, the goose table and every object in the connection's search_path,
// here a fresh schema. It returns a database whose connections have that search_path.
func migrateAsCLI(t *testing.T) *sql.DB {
	t.Helper()
	name := pgtest.EmptySchema(t, pgtest.Open(t))
	db := pgtest.InSchema(t, name)
	if _, err := db.ExecContext(t.Context(), "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	if err := goose.SetDialect("postgres"); err != nil {
		t.Fatal(err)
	}
	if err := goose.RunContext(t.Context(), "up", db, filepath.Join("..", "..", "schema", "postgres")); err != nil {
		t.Fatalf("goose up: %v", err)
	}
	return db
}

// The files work as the goose command-line tool runs them: the recorders, without WithSchema (they
// find the tables through the search_path), pass the conformance suites on the result.
func TestGooseCommandLine(t *testing.T) {
	for _, o := range orderings {
		t.Run(o.String(), func(t *testing.T) {
			recordertest.TestProcessRecorder(t, func(t *testing.T) es.ProcessRecorder {
				return processOn(t, migrateAsCLI(t), postgres.WithOrdering(o))
			})
		})
	}
	t.Run("snapshots", func(t *testing.T) {
		recordertest.TestAggregateRecorder(t, func(t *testing.T) es.AggregateRecorder {
			return mustSnapshots(t, migrateAsCLI(t))
		})
	})
	t.Run("tracker", func(t *testing.T) {
		projectiontest.TestSQLTracker(t, func(t *testing.T) projection.SQLTracker {
			return processOn(t, migrateAsCLI(t))
		})
	})
	t.Run("down", func(t *testing.T) {
		db := migrateAsCLI(t)
		if err := goose.RunContext(t.Context(), "reset", db, filepath.Join("..", "..", "schema", "postgres")); err != nil {
			t.Fatalf("goose reset: %v", err)
		}
		if _, err := postgres.NewProcessRecorder(t.Context(), db); !errors.Is(err, schema.ErrNotMigrated) {
			t.Fatalf("recorder after goose reset: %v, want ErrNotMigrated", err)
		}
		if err := goose.RunContext(t.Context(), "up", db, filepath.Join("..", "..", "schema", "postgres")); err != nil {
			t.Fatalf("goose up again: %v", err)
		}
		r, err := postgres.NewProcessRecorder(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1)); err != nil {
			t.Fatal(err)
		}
	})
}

// postgres.Migrate takes the recorders' options: one list names the schema for both.
func TestMigrateWithRecorderOptions(t *testing.T) {
	db := pgtest.Open(t)
	opts := []postgres.Option{postgres.WithSchema(pgtest.EmptySchema(t, db))}
	if err := postgres.Migrate(t.Context(), db, opts...); err != nil {
		t.Fatal(err)
	}
	r, err := postgres.NewProcessRecorder(t.Context(), db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1)); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(t.Context(), db, postgres.WithSchema("")); !errors.Is(err, schema.ErrInvalidSchemaName) {
		t.Errorf("WithSchema(\"\"): %v, want ErrInvalidSchemaName", err)
	}
	if err := postgres.Migrate(t.Context(), db, postgres.WithPollInterval(-1)); err == nil {
		t.Error("an invalid option accepted")
	}
}

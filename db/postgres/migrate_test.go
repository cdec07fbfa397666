package postgres_test

import (
	"context"
	"database/sql"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
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
	fsys, err := schema.FS(schema.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
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
	src, err := schema.FS(schema.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(src, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
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

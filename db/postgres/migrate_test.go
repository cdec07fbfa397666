package postgres_test

import (
	"context"
	"io/fs"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/pgtest"
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

	// schema.Migrate has no Down; run goose on the same files with the marker replaced, as the goose
	// command-line tool would on files qualified for the schema.
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
	if _, err := p.DownTo(t.Context(), 0); err != nil {
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

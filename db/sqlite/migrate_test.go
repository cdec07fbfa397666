package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// provider returns a goose provider over the embedded SQLite migrations, as the goose CLI would see them.
func provider(t *testing.T, db *sql.DB) *goose.Provider {
	t.Helper()
	fsys, err := schema.FS(schema.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// migrateDown runs every down migration.
func migrateDown(t *testing.T, db *sql.DB) {
	t.Helper()
	if _, err := provider(t, db).DownTo(t.Context(), 0); err != nil {
		t.Fatalf("migrate down: %v", err)
	}
}

func tables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('events', 'snapshots', 'tracking') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func schemaVersion(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	v, err := provider(t, db).GetDBVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func historyRows(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM goose_db_version`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	db := openFile(t)
	rows := historyRows(t, db)
	if err := schema.Migrate(t.Context(), db, schema.SQLite); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if got := historyRows(t, db); got != rows {
		t.Fatalf("second migrate changed the history: %d rows, then %d", rows, got)
	}
	if got := tables(t, db); len(got) != 3 {
		t.Fatalf("tables %v", got)
	}
}

// Two processes (two *sql.DB) migrating one new file at the same moment both succeed, and the schema
// is applied once.
func TestConcurrentMigrate(t *testing.T) {
	for round := range 3 { // a lost race costs a second: goose retries creating its version table after 1 s
		path := filepath.Join(t.TempDir(), "race.db")
		a, b := openRaw(t, path), openRaw(t, path)
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, db := range []*sql.DB{a, b} {
			wg.Go(func() {
				<-start
				errs[i] = schema.Migrate(context.Background(), db, schema.SQLite)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: migrate %d: %v", round, i, err)
			}
		}
		if got := tables(t, a); len(got) != 3 {
			t.Fatalf("round %d: tables %v", round, got)
		}
		want := historyRows(t, openMigrated(t, filepath.Join(t.TempDir(), "alone.db")))
		if got := historyRows(t, a); got != want {
			t.Fatalf("round %d: %d rows of migration history, want %d (as one Migrate writes)", round, got, want)
		}
	}
}

// The down migrations remove every table, and the up migrations can run again after them.
func TestMigrateDown(t *testing.T) {
	db := openFile(t)
	latest := schemaVersion(t, db)
	if latest < 1 {
		t.Fatalf("version %d after migrate", latest)
	}
	migrateDown(t, db)
	if got := tables(t, db); len(got) != 0 {
		t.Fatalf("tables %v left after migrating down", got)
	}
	if v := schemaVersion(t, db); v != 0 {
		t.Fatalf("version %d after migrating down", v)
	}
	if err := schema.Migrate(t.Context(), db, schema.SQLite); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	if v := schemaVersion(t, db); v != latest {
		t.Fatalf("version %d after migrating up again, want %d", v, latest)
	}
	r := newProcessRecorder(t, db)
	ids, err := r.InsertEvents(t.Context(), []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "T"}})
	if err != nil || len(ids) != 1 || ids[0] != 1 {
		t.Fatalf("insert after down and up: %v, %v (IDs start at 1 again)", ids, err)
	}
}

// A database made by the first schema version keeps its tracking marks through the migration that
// keys them by consumer: they become the marks of the consumer "".
func TestTrackingMigrationKeepsMarks(t *testing.T) {
	ctx := t.Context()
	db := openRaw(t, filepath.Join(t.TempDir(), "v1.db"))
	if _, err := provider(t, db).UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO tracking (application_name, notification_id) VALUES ('orders', 7), ('bank', 42)`); err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(ctx, db, schema.SQLite); err != nil {
		t.Fatal(err)
	}
	r := newProcessRecorder(t, db)
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

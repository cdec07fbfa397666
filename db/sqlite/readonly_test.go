package sqlite_test

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
)

// A database file in rollback-journal mode (as the goose command-line tool, the sqlite3 shell and
// other drivers leave one), opened read-only: the recorders cannot switch it to WAL mode, and need not,
// since they cannot write to it. They read it; a write fails then, as on a read-only file in WAL mode.
func TestReadOnlyFileWithoutWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	db := openMigrated(t, path)
	rec := newProcessRecorder(t, db)
	id := uuid.New()
	if _, err := rec.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "t", State: []byte("s")}}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = DELETE").Scan(&mode); err != nil || mode != "delete" {
		t.Fatalf("journal_mode = DELETE: %q %v", mode, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := sql.Open("sqlite3", (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: "mode=ro"}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r, err := sqlite.NewProcessRecorder(ctx, ro)
	if err != nil {
		t.Fatalf("a process recorder on a read-only file in rollback-journal mode: %v", err)
	}
	defer r.Close()
	if got, err := r.MaxNotificationID(ctx); err != nil || got != 1 {
		t.Fatalf("MaxNotificationID = %d, %v; want 1", got, err)
	}
	if _, err := r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "t", State: []byte("s")}}); err == nil {
		t.Fatal("a write to a read-only file succeeded")
	}
	s, err := sqlite.NewSnapshotRecorder(ctx, ro)
	if err != nil {
		t.Fatalf("a snapshot recorder on a read-only file in rollback-journal mode: %v", err)
	}
	s.Close()
	if err := ro.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "delete" {
		t.Fatalf("journal_mode: %q %v; want the file left as it was", mode, err)
	}
}

// The suites through mattn/go-sqlite3 (cgo). This package imports package sqlite and mattn's driver,
// which registers "sqlite3": it links only because package sqlite loads no driver of its own.
package mattn_test

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/mattn/go-sqlite3"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/drivertest"
)

// open returns a function opening the database that dsn names through the driver.
func open(dsn func(t testing.TB) string) func(t testing.TB) *sql.DB {
	return drivertest.OpenSQLite("sqlite3", dsn)
}

// memdb is SQLite's memdb VFS: one in-memory database shared by the connections that name it.
func memdb(t testing.TB) string { return "file:/" + rand.Text() + "?vfs=memdb&_busy_timeout=10000" }

// sharedCache is the in-memory database of SQLite's shared-cache mode.
func sharedCache(t testing.TB) string { return "file:" + rand.Text() + "?mode=memory&cache=shared" }

func TestFile(t *testing.T)        { drivertest.SQLite(t, open(drivertest.TempFile)) }
func TestMemory(t *testing.T)      { drivertest.SQLite(t, open(memdb)) }
func TestSharedCache(t *testing.T) { drivertest.SQLite(t, open(sharedCache)) }

func BenchmarkWakeUp(b *testing.B) {
	drivertest.WakeUp(b, drivertest.SQLiteDatabase(b, open(drivertest.TempFile)(b)))
}

// A shared-cache table lock held for longer than the busy timeout fails the call with the lock's
// error, neither hanging it nor passing for a conflict; once the lock is released, calls succeed.
func TestSharedCacheLockHeld(t *testing.T) {
	ctx := t.Context()
	db := open(sharedCache)(t)
	d := drivertest.SQLiteDatabase(t, db, sqlite.WithBusyTimeout(200*time.Millisecond))
	r := d.Process(t)
	id := uuid.New()
	event := func(v int64) []es.StoredEvent {
		return []es.StoredEvent{{OriginatorID: id, OriginatorVersion: v, Topic: "t", State: []byte("x")}}
	}
	if _, err := r.InsertEvents(ctx, event(1)); err != nil {
		t.Fatal(err)
	}

	// A reader in a transaction holds a read lock on the events table: the writer cannot write it.
	reader, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	_, err = r.InsertEvents(ctx, event(2))
	if err == nil || errors.Is(err, es.ErrConflict) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("insert under a held read lock: %v, want the lock's error", err)
	}
	if _, err := r.InsertEvents(ctx, event(1)); err == nil || errors.Is(err, es.ErrConflict) {
		t.Fatalf("a conflicting insert under a held read lock: %v, want the lock's error", err)
	}
	reader.Rollback()
	if _, err := r.InsertEvents(ctx, event(2)); err != nil {
		t.Fatalf("insert after the lock: %v", err)
	}
	if _, err := r.InsertEvents(ctx, event(2)); !errors.Is(err, es.ErrConflict) {
		t.Fatalf("a conflict after the lock: %v, want ErrConflict", err)
	}

	// A writer outside the recorder holds the write lock: reads cannot read the table it changed.
	writer, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.ExecContext(ctx, "UPDATE events SET topic = topic WHERE notification_id = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SelectNotifications(ctx, es.NotificationQuery{Limit: 10}); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("read under a held write lock: %v, want the lock's error", err)
	}
	writer.Rollback()
	if ns, err := r.SelectNotifications(ctx, es.NotificationQuery{Limit: 10}); err != nil || len(ns) != 2 {
		t.Fatalf("read after the lock: %d notifications, %v", len(ns), err)
	}
}

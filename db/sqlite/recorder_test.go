package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/ncruces/go-sqlite3/driver"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

func events(id uuid.UUID, from, to int64) []es.StoredEvent {
	var out []es.StoredEvent
	for v := from; v <= to; v++ {
		out = append(out, es.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: "Tested", State: []byte(fmt.Sprint("state ", v))})
	}
	return out
}

// countEvents reads the events table directly, bypassing the recorder.
func countEvents(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatalf("count events: %v", err)
	}
	return n
}

// Sixteen goroutines saving at once through one recorder never see "database is locked" (nor any other
// error): the recorder funnels their writes through one connection.
func TestConcurrentWritersNeverLocked(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		db := open(t)
		r := newProcessRecorder(t, db)
		const writers, saves = 16, 50
		var wg sync.WaitGroup
		errs := make(chan error, writers*saves)
		var mu sync.Mutex
		seen := map[int64]bool{}
		for w := range writers {
			wg.Go(func() {
				id := uuid.New()
				for v := range int64(saves) {
					// a read in between, so readers and the writer overlap too
					if _, err := r.SelectEvents(t.Context(), id, es.EventQuery{Desc: true, Limit: 1}); err != nil {
						errs <- fmt.Errorf("writer %d: select: %w", w, err)
						return
					}
					ids, err := r.InsertEvents(t.Context(), events(id, v+1, v+1))
					if err != nil {
						errs <- fmt.Errorf("writer %d: insert: %w", w, err)
						return
					}
					mu.Lock()
					for _, id := range ids {
						if seen[id] {
							errs <- fmt.Errorf("writer %d: ID %d returned twice", w, id)
						}
						seen[id] = true
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := countEvents(t, db); n != writers*saves {
			t.Fatalf("%d events recorded, want %d", n, writers*saves)
		}
		if max, _ := r.MaxNotificationID(t.Context()); max != writers*saves {
			t.Fatalf("max notification ID %d, want %d (no gaps without failures)", max, writers*saves)
		}
	})
}

// Two recorders (two processes, in effect) on one file: their writers take turns on the file lock
// through the busy timeout, and a subscription on one sees the other's events by polling.
func TestTwoRecordersOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	dbA := openMigrated(t, path)
	dbB := openRaw(t, path)
	a := newProcessRecorder(t, dbA, sqlite.WithPollInterval(20*time.Millisecond))
	b := newProcessRecorder(t, dbB)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got := make(chan es.Notification, 100)
	go func() {
		defer close(got)
		for n, err := range a.Subscribe(ctx, 0) {
			if err != nil {
				t.Errorf("subscribe: %v", err)
				return
			}
			got <- n
		}
	}()
	defer func() {
		cancel()
		for range got { // the subscription ends, without an error, before the recorders close
		}
	}()
	var wg sync.WaitGroup
	for _, r := range []*sqlite.ProcessRecorder{a, b} {
		wg.Go(func() {
			id := uuid.New()
			for v := range int64(20) {
				if _, err := r.InsertEvents(ctx, events(id, v+1, v+1)); err != nil {
					t.Errorf("insert: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for want := int64(1); want <= 40; want++ {
		select {
		case n := <-got:
			if n.ID != want {
				t.Fatalf("subscription yielded ID %d, want %d", n.ID, want)
			}
		case <-ctx.Done():
			t.Fatalf("subscription stalled before ID %d", want)
		}
	}
}

// The recorders work on a *sql.DB that did not come from ncruces.Open: the plain driver, default settings.
func TestPlainDriverDB(t *testing.T) {
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "plain.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := schema.Migrate(t.Context(), db, schema.SQLite); err != nil {
		t.Fatal(err)
	}
	r, err := sqlite.NewProcessRecorder(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	id := uuid.New()
	ids, err := r.InsertEvents(t.Context(), events(id, 1, 3))
	if err != nil || len(ids) != 3 || ids[0] != 1 || ids[2] != 3 {
		t.Fatalf("insert: ids %v, err %v", ids, err)
	}
	if _, err := r.InsertEvents(t.Context(), events(id, 3, 3)); !errors.Is(err, es.ErrConflict) {
		t.Fatalf("conflict: %v, want ErrConflict", err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q (%v), want wal", mode, err)
	}
}

func TestUnmigratedDatabase(t *testing.T) {
	db := openRaw(t, filepath.Join(t.TempDir(), "empty.db"))
	_, err := sqlite.NewProcessRecorder(t.Context(), db)
	if !errors.Is(err, schema.ErrNotMigrated) || !strings.Contains(err.Error(), "schema.Migrate") || !strings.Contains(err.Error(), "new process recorder") {
		t.Fatalf("NewProcessRecorder on an unmigrated database: %v, want an error wrapping ErrNotMigrated naming the operation", err)
	}
	_, err = sqlite.NewSnapshotRecorder(t.Context(), db)
	if !errors.Is(err, schema.ErrNotMigrated) {
		t.Fatalf("NewSnapshotRecorder on an unmigrated database: %v, want ErrNotMigrated", err)
	}
}

// sqlite.Migrate checks the recorders' options it is given.
func TestMigrateRefusesInvalidOptions(t *testing.T) {
	db := openRaw(t, ncruces.Memory)
	if err := sqlite.Migrate(t.Context(), db, sqlite.WithBusyTimeout(-1)); err == nil {
		t.Error("a negative busy timeout accepted")
	}
}

// A SQLite database given to the PostgreSQL recorders is refused with an error naming its dialect.
func TestPostgresRecordersRefuseSQLite(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		db := open(t)
		p, err := postgres.NewProcessRecorder(t.Context(), db)
		if err == nil {
			p.Close()
		}
		if !errors.Is(err, schema.ErrWrongDialect) || !strings.Contains(err.Error(), "the database is SQLite") {
			t.Errorf("postgres.NewProcessRecorder: %v, want an error wrapping schema.ErrWrongDialect naming SQLite", err)
		}
		_, err = postgres.NewSnapshotRecorder(t.Context(), db)
		if !errors.Is(err, schema.ErrWrongDialect) {
			t.Errorf("postgres.NewSnapshotRecorder: %v, want an error wrapping schema.ErrWrongDialect", err)
		}
	})
}

func TestClosedDB(t *testing.T) {
	t.Run("BeforeNew", func(t *testing.T) {
		db := openFile(t)
		db.Close()
		if _, err := sqlite.NewProcessRecorder(t.Context(), db); err == nil || !strings.Contains(err.Error(), "database is closed") {
			t.Fatalf("NewProcessRecorder on a closed *sql.DB: %v, want an error saying so", err)
		}
		if _, err := sqlite.NewSnapshotRecorder(t.Context(), db); err == nil || !strings.Contains(err.Error(), "database is closed") {
			t.Fatalf("NewSnapshotRecorder on a closed *sql.DB: %v, want an error saying so", err)
		}
	})
	t.Run("AfterNew", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "closed.db")
		db := openMigrated(t, path)
		r := newProcessRecorder(t, db)
		s := newSnapshotRecorder(t, db)
		db.Close()
		id := uuid.New()
		check := func(op string, err error) {
			t.Helper()
			if err == nil || !strings.Contains(err.Error(), "database is closed") || !strings.Contains(err.Error(), op) {
				t.Errorf("%s after the *sql.DB was closed: %v, want an error naming the operation and the closed database", op, err)
			}
		}
		_, err := r.InsertEvents(t.Context(), events(id, 1, 2))
		check("insert events", err)
		_, err = s.InsertEvents(t.Context(), events(id, 1, 1))
		check("insert snapshots", err)
		check("insert tracking", r.InsertTracking(t.Context(), es.Tracking{Consumer: "c", Upstream: "up", NotificationID: 1}))
		_, err = r.SelectEvents(t.Context(), id, es.EventQuery{})
		check("select events", err)
		_, err = r.SelectNotifications(t.Context(), es.NotificationQuery{Limit: 10})
		check("select notifications", err)
		_, err = r.MaxNotificationID(t.Context())
		check("max notification ID", err)
		for _, err := range r.Subscribe(t.Context(), 0) {
			check("subscribe", err)
			break
		}
		// Nothing was written.
		db2 := openRaw(t, path)
		if n := countEvents(t, db2); n != 0 {
			t.Fatalf("%d events written through a recorder whose *sql.DB was closed", n)
		}
	})
}

func TestCancelledContext(t *testing.T) {
	db := openFile(t)
	r := newProcessRecorder(t, db)
	s := newSnapshotRecorder(t, db)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	id := uuid.New()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), op) {
			t.Errorf("%s with a cancelled context: %v, want an error naming the operation wrapping context.Canceled", op, err)
		}
	}
	_, err := r.InsertEvents(ctx, events(id, 1, 3))
	check("insert events", err)
	_, err = r.InsertEvents(ctx, nil, es.WithTracking(es.Tracking{Consumer: "c", Upstream: "up", NotificationID: 1}))
	check("insert events", err)
	check("insert tracking", r.InsertTracking(ctx, es.Tracking{Consumer: "c", Upstream: "up", NotificationID: 1}))
	_, err = s.InsertEvents(ctx, events(id, 1, 1))
	check("insert snapshots", err)
	_, err = r.SelectEvents(ctx, id, es.EventQuery{})
	check("select events", err)
	_, err = s.SelectEvents(ctx, id, es.EventQuery{})
	check("select snapshots", err)
	_, err = r.SelectNotifications(ctx, es.NotificationQuery{Limit: 1})
	check("select notifications", err)
	_, err = r.MaxNotificationID(ctx)
	check("max notification ID", err)
	_, err = r.MaxTrackingID(ctx, "c", "up")
	check("max tracking ID", err)
	_, err = r.HasTrackingID(ctx, "c", "up", 1)
	check("has tracking ID", err)
	for n, err := range r.Subscribe(ctx, 0) {
		t.Fatalf("Subscribe with a cancelled context yielded %v, %v; want it to end at once", n, err)
	}
	if _, err := sqlite.NewProcessRecorder(ctx, db); !errors.Is(err, context.Canceled) {
		t.Errorf("NewProcessRecorder with a cancelled context: %v", err)
	}
	if n := countEvents(t, db); n != 0 {
		t.Fatalf("%d events written with a cancelled context", n)
	}
	if m, err := r.MaxTrackingID(t.Context(), "c", "up"); m != 0 || err != nil {
		t.Fatalf("tracking written with a cancelled context: mark %d, %v", m, err)
	}
}

func TestBadInput(t *testing.T) {
	db := openMemory(t)
	r := newProcessRecorder(t, db)
	ctx := t.Context()
	id := uuid.New()
	for name, evs := range map[string][]es.StoredEvent{
		"nil originator": {{OriginatorID: uuid.Nil, OriginatorVersion: 1, Topic: "T"}},
		"version 0":      {{OriginatorID: id, OriginatorVersion: 0, Topic: "T"}},
	} {
		if _, err := r.InsertEvents(ctx, evs); err == nil || errors.Is(err, es.ErrConflict) {
			t.Errorf("%s: %v, want an error not wrapping ErrConflict", name, err)
		}
	}
	if _, err := r.SelectEvents(ctx, id, es.EventQuery{Limit: -1}); err == nil {
		t.Error("SelectEvents with a negative limit: no error")
	}
	if _, err := r.SelectNotifications(ctx, es.NotificationQuery{}); err == nil {
		t.Error("SelectNotifications with limit 0: no error")
	}
	if err := r.InsertTracking(ctx, es.Tracking{Consumer: "c", Upstream: "up", NotificationID: 0}); !errors.Is(err, es.ErrConflict) {
		t.Errorf("InsertTracking of ID 0 on an empty mark: %v, want ErrConflict", err)
	}
	if _, err := sqlite.NewProcessRecorder(ctx, nil); err == nil {
		t.Error("NewProcessRecorder(nil): no error")
	}
	if _, err := sqlite.NewProcessRecorder(ctx, db, sqlite.WithSynchronous(7)); err == nil {
		t.Error("WithSynchronous(7): no error")
	}
	one := openMemory(t)
	one.SetMaxOpenConns(1)
	if _, err := sqlite.NewProcessRecorder(ctx, one); err == nil || !strings.Contains(err.Error(), "SetMaxOpenConns") {
		t.Errorf("a pool of one connection: %v, want an error explaining it", err)
	}
	if n := countEvents(t, db); n != 0 {
		t.Fatalf("%d events written by bad input", n)
	}
}

// A recorder whose tables disappear (a down migration) reports ErrNotMigrated from then on.
func TestTablesDropped(t *testing.T) {
	db := openFile(t)
	r := newProcessRecorder(t, db)
	id := uuid.New()
	if _, err := r.InsertEvents(t.Context(), events(id, 1, 1)); err != nil {
		t.Fatal(err)
	}
	migrateDown(t, db)
	_, err := r.InsertEvents(t.Context(), events(id, 2, 2))
	if !errors.Is(err, schema.ErrNotMigrated) {
		t.Fatalf("insert after the tables were dropped: %v, want ErrNotMigrated", err)
	}
	_, err = r.SelectEvents(t.Context(), id, es.EventQuery{})
	if !errors.Is(err, schema.ErrNotMigrated) {
		t.Fatalf("select after the tables were dropped: %v, want ErrNotMigrated", err)
	}
}

func TestCloseRecorder(t *testing.T) {
	db := openFile(t)
	r, err := sqlite.NewProcessRecorder(t.Context(), db, sqlite.WithSynchronous(sqlite.SynchronousNormal), sqlite.WithBusyTimeout(1234*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		for _, err := range r.Subscribe(t.Context(), 0) {
			ended <- err
			return
		}
		ended <- nil
	}()
	time.Sleep(20 * time.Millisecond) // let the subscription wait
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, es.ErrClosed) {
			t.Fatalf("a waiting subscription ended with %v at Close, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting subscription did not end at Close")
	}
	if _, err := r.InsertEvents(t.Context(), events(uuid.New(), 1, 1)); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("insert after Close: %v, want ErrClosed", err)
	}
	// Reads fail too, and the connection went back to the pool with its settings restored.
	if _, err := r.MaxNotificationID(t.Context()); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("read after Close: %v, want ErrClosed", err)
	}
	db.SetMaxOpenConns(1) // every query now runs on the one connection left, maybe the writer's
	for range 3 {
		var sync, busy int
		if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if sync != 2 || busy != int(sqlite.DefaultBusyTimeout.Milliseconds()) {
			t.Fatalf("a pool connection has synchronous %d and busy_timeout %d after Close, want Open's 2 (FULL) and %d", sync, busy, sqlite.DefaultBusyTimeout.Milliseconds())
		}
	}
}

// Breaking out of a subscription leaves no goroutine behind.
func TestSubscribeBreakNoLeak(t *testing.T) {
	db := openMemory(t)
	r := newProcessRecorder(t, db)
	if _, err := r.InsertEvents(t.Context(), events(uuid.New(), 1, 1200)); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for range 20 {
		n := 0
		for _, err := range r.Subscribe(t.Context(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 700 { // in the second page
				break
			}
		}
	}
	for i := 0; runtime.NumGoroutine() > before && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before the subscriptions, %d after", before, after)
	}
}

// A subscription is woken by its recorder's commits at once, without waiting for the poll interval.
func TestSubscribeWakesOnCommit(t *testing.T) {
	db := openFile(t)
	r := newProcessRecorder(t, db, sqlite.WithPollInterval(time.Hour))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got := make(chan int64)
	go func() {
		for n, err := range r.Subscribe(ctx, 0) {
			if err != nil {
				return
			}
			select {
			case got <- n.ID:
			case <-ctx.Done():
				return
			}
		}
	}()
	for i := int64(1); i <= 5; i++ {
		time.Sleep(5 * time.Millisecond)
		if _, err := r.InsertEvents(ctx, events(uuid.New(), 1, 1)); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-got:
			if id != i {
				t.Fatalf("got ID %d, want %d", id, i)
			}
		case <-ctx.Done():
			t.Fatalf("subscription not woken by commit %d", i)
		}
	}
}

// A notification ID that anybody may have seen is never given out again: the newest event cannot be
// deleted (its ID would be the next one's), nor an ID changed; older events may go.
func TestNotificationIDsNeverReused(t *testing.T) {
	db := openFile(t)
	r := newProcessRecorder(t, db)
	if _, err := r.InsertEvents(t.Context(), events(uuid.New(), 1, 3)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM events WHERE notification_id = 3`,
		`DELETE FROM events`,
		`DELETE FROM events WHERE notification_id >= 2`,
		`UPDATE events SET notification_id = 10 WHERE notification_id = 1`,
	} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "notification ID") {
			t.Errorf("%s: %v, want it refused by a trigger", q, err)
		}
	}
	if n := countEvents(t, db); n != 3 {
		t.Fatalf("%d events left, want 3", n)
	}
	if _, err := db.Exec(`DELETE FROM events WHERE notification_id <= 2`); err != nil {
		t.Fatalf("deleting older events: %v", err)
	}
	ids, err := r.InsertEvents(t.Context(), events(uuid.New(), 1, 1))
	if err != nil || ids[0] != 4 {
		t.Fatalf("next insert: %v %v, want ID 4", ids, err)
	}
}

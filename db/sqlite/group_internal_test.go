package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/ncruces/go-sqlite3/driver"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

func queued(w *writer) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// newGroupRecorder returns a recorder on a new, migrated database file, and its *sql.DB.
func newGroupRecorder(t *testing.T) (*sql.DB, *ProcessRecorder) {
	t.Helper()
	// Not ncruces.Open, which imports this package.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "group.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := schema.Migrate(t.Context(), db, schema.SQLite); err != nil {
		t.Fatal(err)
	}
	r, err := NewProcessRecorder(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return db, r
}

// holdWriteLock takes SQLite's write lock on another connection of db, so that the writer waits for it
// in BEGIN IMMEDIATE, until release is called.
func holdWriteLock(t *testing.T, db *sql.DB) (release func()) {
	t.Helper()
	blocker, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { blocker.Close() })
	if _, err := blocker.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := blocker.ExecContext(t.Context(), "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	}
}

type outcome struct {
	ids []int64
	err error
}

// requireCanceledOutcome fails t unless caller name's outcome arrives on ch within 5 seconds and is
// context.Canceled; late says what it means when it does not arrive.
func requireCanceledOutcome(t *testing.T, name string, ch chan outcome, late string) {
	t.Helper()
	select {
	case o := <-ch:
		if !errors.Is(o.err, context.Canceled) {
			t.Fatalf("%s: %v, want context.Canceled", name, o.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal(late)
	}
}

// Batches queued while the writer waits are committed in one transaction; a conflicting batch fails
// alone; a caller whose ctx ends before its batch is written gets ctx's error at once and its batch is
// not written, even when the writer has already taken it into a group.
func TestGroupCommit(t *testing.T) {
	ctx := t.Context()
	db, r := newGroupRecorder(t)

	// Another connection holds the write lock: the writer waits for it in BEGIN IMMEDIATE.
	release := holdWriteLock(t, db)

	insert := func(ctx context.Context, evs []es.StoredEvent, tr *es.Tracking) chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			var opts []es.InsertOption
			if tr != nil {
				opts = append(opts, es.WithTracking(*tr))
			}
			ids, err := r.InsertEvents(ctx, evs, opts...)
			ch <- outcome{ids, err}
		}()
		return ch
	}
	ev := func(id uuid.UUID, v int64) es.StoredEvent {
		return es.StoredEvent{OriginatorID: id, OriginatorVersion: v, Topic: "T"}
	}

	// a finds the writer idle and writes on its own goroutine; its BEGIN waits for the lock, and its
	// caller gives up.
	actx, acancel := context.WithCancel(ctx)
	a := insert(actx, []es.StoredEvent{ev(uuid.New(), 1)}, nil)
	waitFor(t, "a to start writing", func() bool { r.w.mu.Lock(); defer r.w.mu.Unlock(); return r.w.busy })
	time.Sleep(10 * time.Millisecond)
	acancel()
	requireCanceledOutcome(t, "a", a, "a caller waiting for the file lock did not return when its ctx ended")

	// b does the same, and waits for the lock. Queued behind it: d, c (conflicting with d), e
	// (cancelled while queued), f (tracking only).
	idB, idD := uuid.New(), uuid.New()
	b := insert(ctx, []es.StoredEvent{ev(idB, 1), ev(idB, 2)}, nil)
	waitFor(t, "b to start writing", func() bool { r.w.mu.Lock(); defer r.w.mu.Unlock(); return r.w.busy })
	d := insert(ctx, []es.StoredEvent{ev(idD, 1), ev(idD, 2), ev(idD, 3)}, nil)
	waitFor(t, "d queued", func() bool { return queued(r.w) == 1 })
	c := insert(ctx, []es.StoredEvent{ev(uuid.New(), 1), ev(idD, 2)}, nil)
	waitFor(t, "c queued", func() bool { return queued(r.w) == 2 })
	ectx, ecancel := context.WithCancel(ctx)
	e := insert(ectx, []es.StoredEvent{ev(uuid.New(), 1)}, nil)
	waitFor(t, "e queued", func() bool { return queued(r.w) == 3 })
	f := insert(ctx, nil, &es.Tracking{Consumer: "c", Upstream: "up", NotificationID: 7})
	waitFor(t, "f queued", func() bool { return queued(r.w) == 4 })
	ecancel()
	requireCanceledOutcome(t, "e", e, "a queued caller did not return when its ctx ended")

	before := r.w.commits.Load()
	release()
	ob, oc, od, of := <-b, <-c, <-d, <-f
	if ob.err != nil || len(ob.ids) != 2 || ob.ids[0] != 1 || ob.ids[1] != 2 {
		t.Fatalf("b: %v %v, want IDs [1 2]", ob.ids, ob.err)
	}
	if od.err != nil || len(od.ids) != 3 || od.ids[0] != 3 || od.ids[2] != 5 {
		t.Fatalf("d: %v %v, want IDs [3 4 5]", od.ids, od.err)
	}
	if !errors.Is(oc.err, es.ErrConflict) || oc.ids != nil {
		t.Fatalf("c: %v %v, want ErrConflict and no IDs", oc.ids, oc.err)
	}
	if of.err != nil {
		t.Fatalf("f: %v", of.err)
	}
	// b commits alone, then d, c and f share one transaction.
	if n := r.w.commits.Load() - before; n != 2 {
		t.Fatalf("%d transactions, want 2: b's, and one for the queued batches", n)
	}
	// c's rolled-back ID is taken by the next insert: nobody ever saw it.
	if ids, err := r.InsertEvents(ctx, []es.StoredEvent{ev(uuid.New(), 1)}); err != nil || ids[0] != 6 {
		t.Fatalf("next insert: %v %v, want ID 6", ids, err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != 6 {
		t.Fatalf("%d events recorded (%v), want 6 (b, d and the last)", n, err)
	}
	if m, _ := r.MaxTrackingID(ctx, "c", "up"); m != 7 {
		t.Fatalf("tracking mark %d, want 7", m)
	}
}

// A group of one-event batches, one of which conflicts: it fails alone, the others commit in the same
// transaction (such batches go without a savepoint: SQLite backs out the one statement).
func TestGroupCommitOneEventConflict(t *testing.T) {
	ctx := t.Context()
	db, r := newGroupRecorder(t)
	taken := uuid.New()
	if _, err := r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: taken, OriginatorVersion: 1, Topic: "T"}}); err != nil {
		t.Fatal(err)
	}
	release := holdWriteLock(t, db)
	insert := func(id uuid.UUID) chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			ids, err := r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "T"}})
			ch <- outcome{ids, err}
		}()
		return ch
	}
	first := insert(uuid.New()) // writes on its own goroutine, waiting for the lock
	waitFor(t, "the first batch to start writing", func() bool { r.w.mu.Lock(); defer r.w.mu.Unlock(); return r.w.busy })
	var group []chan outcome
	for i, id := range []uuid.UUID{uuid.New(), taken, uuid.New()} {
		group = append(group, insert(id))
		waitFor(t, "a batch queued", func() bool { return queued(r.w) == i+1 })
	}
	before := r.w.commits.Load()
	release()
	if o := <-first; o.err != nil || len(o.ids) != 1 || o.ids[0] != 2 {
		t.Fatalf("first: %v %v, want ID 2", o.ids, o.err)
	}
	got := []outcome{<-group[0], <-group[1], <-group[2]}
	if got[0].err != nil || got[0].ids[0] != 3 || got[2].err != nil || got[2].ids[0] != 4 {
		t.Fatalf("the batches beside the conflict: %+v, %+v; want IDs 3 and 4", got[0], got[2])
	}
	if !errors.Is(got[1].err, es.ErrConflict) || got[1].ids != nil {
		t.Fatalf("the conflicting batch: %+v, want ErrConflict and no IDs", got[1])
	}
	if n := r.w.commits.Load() - before; n != 2 {
		t.Fatalf("%d transactions, want 2: the first batch's and the group's", n)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d events recorded (%v), want 4", n, err)
	}
}

// After a group, the writer gives its callers a moment to save again, so that they share the next
// commit; callers that do not come back must not keep it: it goes idle, and the next lone save
// commits on its caller's goroutine.
func TestWriterIdlesWhenGroupCallersDoNotReturn(t *testing.T) {
	ctx := t.Context()
	db, r := newGroupRecorder(t)
	release := holdWriteLock(t, db)
	insert := func() chan error {
		ch := make(chan error, 1)
		go func() {
			_, err := r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "T"}})
			ch <- err
		}()
		return ch
	}
	first := insert() // writes on its own goroutine, waiting for the lock
	waitFor(t, "the first batch to start writing", func() bool { r.w.mu.Lock(); defer r.w.mu.Unlock(); return r.w.busy })
	var group []chan error
	for i := range 3 {
		group = append(group, insert())
		waitFor(t, "a batch queued", func() bool { return queued(r.w) == i+1 })
	}
	release()
	for _, ch := range append(group, first) {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	// The group's three callers are done: none of them saves again.
	waitFor(t, "the writer to go idle", func() bool { r.w.mu.Lock(); defer r.w.mu.Unlock(); return !r.w.busy })
	before := r.w.commits.Load()
	if err := <-insert(); err != nil {
		t.Fatal(err)
	}
	if n := r.w.commits.Load() - before; n != 1 {
		t.Fatalf("%d transactions for a lone save, want 1", n)
	}
}

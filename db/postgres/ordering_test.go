package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
)

// Advisory lock keys of the orderings (see events_take_ids): classid 'ES' 0x0001 for the xid ordering's
// critical section, 0x0002 for its appends in flight, 0x0003 for the table-lock ordering; objid the
// sequence's OID.
func lockKey(classid int64, schemaName string) string {
	return fmt.Sprintf("((%d::bigint << 32) | '%s.events_notification_id_seq'::regclass::oid::bigint)", classid, schemaName)
}

const (
	criticalSectionClass = 1163067393
	inFlightClass        = 1163067394
	tableLockClass       = 1163067395
)

// openAppend starts an xid append in an explicit transaction and leaves it open; the returned function
// commits or rolls it back.
func openAppend(t *testing.T, db *sql.DB, schemaName string, ordering postgres.Ordering, e es.StoredEvent) (int64, func(commit bool)) {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	q := fmt.Sprintf(`SELECT %s.events_append($1, NULL, $2::uuid[], $3::bigint[], $4::text[], $5::bytea[], NULL, NULL, NULL, NULL)`, schemaName)
	if err := tx.QueryRowContext(t.Context(), q, ordering.String(), [][16]byte{e.OriginatorID}, []int64{e.OriginatorVersion}, []string{e.Topic}, [][]byte{e.State}).Scan(&id); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			tx.Rollback()
		}
	})
	return id, func(commit bool) {
		done = true
		var err error
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// unrelatedWriter opens a transaction elsewhere in the cluster that holds an xid (it has written
// something) and keeps it open until the test ends or the returned function is called.
func unrelatedWriter(t *testing.T, db *sql.DB) func() {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return func() { tx.Rollback() }
}

func maxID(t *testing.T, r es.ApplicationRecorder) int64 {
	t.Helper()
	m, err := r.MaxNotificationID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readIDs(t *testing.T, r es.ApplicationRecorder, after int64) []int64 {
	t.Helper()
	ns, err := r.SelectNotifications(t.Context(), es.NotificationQuery{After: after, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(ns))
	for i, n := range ns {
		ids[i] = n.ID
	}
	return ids
}

// A transaction elsewhere in the cluster holds the xmin back; with no append of the schema in flight,
// the recorder's own appends are readable at once all the same (the horizon).
func TestXIDOwnAppendsReadableDespiteUnrelatedTransaction(t *testing.T) {
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID))
	unrelatedWriter(t, pgtest.Open(t))
	for v := int64(1); v <= 3; v++ {
		ids, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), v))
		if err != nil {
			t.Fatal(err)
		}
		if got := maxID(t, r); got != ids[0] {
			t.Fatalf("MaxNotificationID right after append %d = %d, want %d", v, got, ids[0])
		}
		if got := readIDs(t, r, ids[0]-1); len(got) != 1 || got[0] != ids[0] {
			t.Fatalf("SelectNotifications right after append %d = %v, want [%d]", v, got, ids[0])
		}
	}
}

// An append in flight holds back every later one, whatever commits first; rolled back, it leaves a gap
// and releases them. While it is in flight, a transaction elsewhere in the cluster that is older than
// it holds back even what committed before it (the documented cost of the xid ordering): readers fall
// back on the snapshot's xmin.
func TestXIDInFlightAppendHoldsBackLaterOnes(t *testing.T) {
	for _, unrelated := range []bool{false, true} {
		t.Run(fmt.Sprintf("unrelated=%v", unrelated), func(t *testing.T) {
			db, name := pgtest.Schema(t)
			r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID))
			if unrelated {
				unrelatedWriter(t, pgtest.Open(t))
			}
			first, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1))
			if err != nil {
				t.Fatal(err)
			}
			open1, end1 := openAppend(t, db, name, postgres.OrderingXID, oneEvent(uuid.New(), 1)[0])
			later, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1)) // commits while open1 is open
			if err != nil {
				t.Fatal(err)
			}
			if open1 <= first[0] || later[0] <= open1 {
				t.Fatalf("IDs %d, %d, %d not increasing", first[0], open1, later[0])
			}
			want := fmt.Sprint([]int64{first[0]})
			if unrelated {
				want = fmt.Sprint([]int64{})
			}
			if got := readIDs(t, r, 0); fmt.Sprint(got) != want {
				t.Fatalf("with ID %d in flight, readers see %v, want %s", open1, got, want)
			}
			open2, end2 := openAppend(t, db, name, postgres.OrderingXID, oneEvent(uuid.New(), 1)[0])
			end2(true) // a later append committing first changes nothing
			if got := readIDs(t, r, 0); fmt.Sprint(got) != want {
				t.Fatalf("with ID %d in flight and %d committed, readers see %v, want %s", open1, open2, got, want)
			}
			if got := maxID(t, r); fmt.Sprint([]int64{got}) != want && !(unrelated && got == 0) {
				t.Fatalf("with ID %d in flight, MaxNotificationID = %d, want %s", open1, got, want)
			}
			end1(false)
			if got, want := readIDs(t, r, 0), []int64{first[0], later[0], open2}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after rolling back ID %d, readers see %v, want %v", open1, got, want)
			}
		})
	}
}

// With the xid ordering an append must be the first write of its transaction: otherwise its xid,
// assigned earlier, would not be in step with its IDs.
func TestXIDAppendMustBeFirstWrite(t *testing.T) {
	db, name := pgtest.Schema(t)
	mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID))
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), `INSERT INTO `+name+`.tracking (consumer, upstream, notification_id) VALUES ('other', 'write', 1)`); err != nil {
		t.Fatal(err)
	}
	q := fmt.Sprintf(`SELECT %s.events_append('xid', NULL, $1::uuid[], '{1}', '{t}', '{""}', NULL, NULL, NULL, NULL)`, name)
	_, err = tx.ExecContext(t.Context(), q, [][16]byte{uuid.New()})
	requireErr(t, err, "first write of its transaction", "ES002")
}

// WithLockTimeout bounds the wait for the ordering's lock; a timed-out append writes nothing, leaves no
// lock behind, and later appends proceed.
func TestLockTimeout(t *testing.T) {
	for _, o := range orderings {
		t.Run(o.String(), func(t *testing.T) {
			db, name := pgtest.Schema(t)
			r := mustProcess(t, db, name, postgres.WithOrdering(o), postgres.WithLockTimeout(100*time.Millisecond))
			release := holdOrderingLock(t, pgtest.Open(t), name, o)
			id := uuid.New()
			start := time.Now()
			_, err := r.InsertEvents(t.Context(), oneEvent(id, 1))
			requireErr(t, err, "lock timeout", "55P03")
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the append gave up after %v", d)
			}
			release()
			if got, _ := r.SelectEvents(t.Context(), id, es.EventQuery{}); len(got) != 0 {
				t.Fatalf("a timed-out append wrote %v", got)
			}
			requireNoOrderingLocks(t, db, name)
			if _, err := r.InsertEvents(t.Context(), oneEvent(id, 1)); err != nil {
				t.Fatalf("append after the lock was released: %v", err)
			}
		})
	}
}

// WithLockTimeout also bounds the wait for the events table itself, which DDL (a migration) can hold:
// single events and batches alike fail with a lock timeout rather than wait for the DDL's end.
func TestLockTimeoutBoundsTheTableLock(t *testing.T) {
	for _, o := range orderings {
		t.Run(o.String(), func(t *testing.T) {
			db, name := pgtest.Schema(t)
			r := mustProcess(t, db, name, postgres.WithOrdering(o), postgres.WithLockTimeout(100*time.Millisecond))
			ddl, err := pgtest.Open(t).BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ddl.Rollback()
			if _, err := ddl.ExecContext(t.Context(), `LOCK TABLE `+name+`.events IN ACCESS EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}
			// The deadline only keeps a failing test from hanging: the lock timeout must end the wait.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			id := uuid.New()
			for _, events := range [][]es.StoredEvent{oneEvent(id, 1), {oneEvent(id, 1)[0], oneEvent(id, 2)[0]}} {
				_, err := r.InsertEvents(ctx, events)
				requireErr(t, err, "lock timeout", "55P03")
			}
			if err := ddl.Rollback(); err != nil {
				t.Fatal(err)
			}
			if got, _ := r.SelectEvents(t.Context(), id, es.EventQuery{}); len(got) != 0 {
				t.Fatalf("a timed-out append wrote %v", got)
			}
			if _, err := r.InsertEvents(t.Context(), oneEvent(id, 1)); err != nil {
				t.Fatalf("append after the DDL ended: %v", err)
			}
		})
	}
}

// An append cancelled while it waits inside the xid ordering's critical section leaves no lock behind.
func TestXIDCancelledAppendLeavesNoLock(t *testing.T) {
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID))
	release := holdOrderingLock(t, pgtest.Open(t), name, postgres.OrderingXID)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := r.InsertEvents(ctx, oneEvent(uuid.New(), 1))
	if err == nil {
		t.Fatal("append with the critical section held elsewhere: no error")
	}
	release()
	requireNoOrderingLocks(t, db, name)
	ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := r.InsertEvents(ctx, oneEvent(uuid.New(), 1)); err != nil {
		t.Fatalf("append after a cancelled one: %v", err)
	}
}

// holdOrderingLock takes the lock appends of ordering o wait for, on a connection of db, until the
// returned function is called.
func holdOrderingLock(t *testing.T, db *sql.DB, schemaName string, o postgres.Ordering) func() {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	class := tableLockClass
	if o == postgres.OrderingXID {
		class = criticalSectionClass
	}
	q := `SELECT pg_advisory_xact_lock(` + lockKey(int64(class), schemaName) + `)`
	if _, err := tx.ExecContext(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return func() {
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

// requireNoOrderingLocks fails if any session holds or waits for a lock of an ordering: the xid
// ordering's advisory locks, or a lock on the events table or its sequence (autovacuum's aside).
func requireNoOrderingLocks(t *testing.T, db *sql.DB, schemaName string) {
	t.Helper()
	var n int
	q := fmt.Sprintf(`SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE a.backend_type <> 'autovacuum worker' AND (
    (l.locktype = 'advisory' AND l.objsubid = 1 AND l.classid IN (%[2]d, %[3]d, %[4]d)
        AND l.objid = '%[1]s.events_notification_id_seq'::regclass::oid)
    OR (l.locktype = 'relation' AND l.relation IN ('%[1]s.events'::regclass, '%[1]s.events_notification_id_seq'::regclass)))`,
		schemaName, criticalSectionClass, inFlightClass, tableLockClass)
	// A cancelled backend may take a moment to finish its abort.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := db.QueryRowContext(ctx, q).Scan(&n)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d locks of the ordering are still held or awaited", n)
		}
	}
}

// Appends cancelled at random moments (some inside the critical section, most elsewhere) leave no lock
// behind: afterwards nobody holds the ordering's locks and appends proceed. (pgx closes a connection
// whose query is cancelled, so every cancellation costs a new connection: the test keeps them few, not
// to flood the server with connection attempts.)
func TestXIDRandomCancellationsLeaveNoLock(t *testing.T) {
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			id := uuid.New()
			var version int64
			for range 15 {
				version++
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(300+rng.IntN(2000))*time.Microsecond)
				_, err := r.InsertEvents(ctx, oneEvent(id, version))
				cancel()
				if err != nil {
					id, version = uuid.New(), 0 // the event may or may not be recorded: use another aggregate
				}
				// Let the pool replace a connection closed by the cancellation.
				ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
				err = db.PingContext(ctx)
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	requireNoOrderingLocks(t, db, name)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := r.InsertEvents(ctx, oneEvent(uuid.New(), 1)); err != nil {
		t.Fatalf("append after cancelled ones: %v", err)
	}
}

// A topic subscription bounds each read by the highest final ID and, when the read comes back short,
// moves its cursor there. The bound may come from the horizon (no append in flight at that moment)
// while the read that follows cannot use it (an append is in flight by then), and a transaction
// elsewhere in the cluster holds the xmin back: the read then returns only a prefix, and moving the
// cursor to the bound would skip the rows held back, for good. Writers keep appends in flight most of
// the time, so the two moments differ again and again.
func TestXIDTopicSubscriptionSkipsNothingHeldBack(t *testing.T) {
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID), postgres.WithPollInterval(2*time.Millisecond))
	release := unrelatedWriter(t, pgtest.Open(t))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	got := make(chan int64, 1000)
	go func() {
		for n, err := range r.Subscribe(ctx, 0, "A") {
			if err != nil {
				return
			}
			got <- n.ID
		}
	}()

	const writers, perWriter = 2, 200
	var mu sync.Mutex
	var want []int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				topic := []string{"A", "B"}[(w+i)%2]
				ids, err := r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: topic, State: payload}})
				if err != nil {
					t.Error(err)
					return
				}
				if topic == "A" {
					mu.Lock()
					want = append(want, ids[0])
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	release() // nothing holds the rows back any more: every one of them is readable now

	seen := map[int64]bool{}
	for len(seen) < len(want) {
		select {
		case id := <-got:
			seen[id] = true
		case <-time.After(10 * time.Second): // a hundred polls and more: what has not come is skipped
			var missing []int64
			for _, id := range want {
				if !seen[id] {
					missing = append(missing, id)
				}
			}
			t.Fatalf("the topic subscription delivered %d of %d notifications; skipped %d, first %v", len(seen), len(want), len(missing), missing[:min(5, len(missing))])
		}
	}
}

// What MaxNotificationID returns is final, so a read up to it returns every row up to it: otherwise
// rows below an ID a reader has seen would appear later (a late fill), and a reader that moves on to
// the ID (a topic subscription, a projection's Wait) would skip them. Here the maximum comes from the
// horizon (no append in flight) while a transaction elsewhere holds the xmin back, and the read comes
// when an append is in flight, which denies the read the horizon.
func TestXIDReadUpToMaxNotificationIDIsComplete(t *testing.T) {
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID))
	unrelatedWriter(t, pgtest.Open(t))
	var want []int64
	for _, topic := range []string{"A", "B", "A"} {
		ids, err := r.InsertEvents(t.Context(), []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: topic, State: payload}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ids[0])
	}
	m := maxID(t, r)
	if m != want[2] {
		t.Fatalf("MaxNotificationID = %d, want %d", m, want[2])
	}
	openAppend(t, db, name, postgres.OrderingXID, oneEvent(uuid.New(), 1)[0])
	for _, topics := range [][]string{nil, {"A"}} {
		ns, err := r.SelectNotifications(t.Context(), es.NotificationQuery{UpTo: m, Limit: 10, Topics: topics})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, n := range ns {
			got = append(got, n.ID)
		}
		w := want
		if topics != nil {
			w = []int64{want[0], want[2]}
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("topics %v: read up to MaxNotificationID %d = %v, want %v", topics, m, got, w)
		}
	}
	if got := maxID(t, r); got != m {
		t.Errorf("MaxNotificationID went from %d to %d", m, got)
	}
}

// A read with no upper bound past rows held back falls back on the horizon, which an append in flight
// denies it; it still returns the rows that MaxNotificationID made final, as a read up to it would.
func TestXIDReadPastHeldBackRowsKeepsWhatIsFinal(t *testing.T) {
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID))
	unrelatedWriter(t, pgtest.Open(t))
	first, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1))
	if err != nil {
		t.Fatal(err)
	}
	if m := maxID(t, r); m != first[0] {
		t.Fatalf("MaxNotificationID = %d, want %d", m, first[0])
	}
	if _, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1)); err != nil { // held back from now on
		t.Fatal(err)
	}
	openAppend(t, db, name, postgres.OrderingXID, oneEvent(uuid.New(), 1)[0])
	if got := readIDs(t, r, 0); fmt.Sprint(got) != fmt.Sprint(first) {
		t.Fatalf("with the horizon denied, readers see %v, want %v (what MaxNotificationID made final)", got, first)
	}
}

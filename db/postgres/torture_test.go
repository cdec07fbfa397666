package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
)

// The torture test of the no-late-fills rule. Writers append in explicit transactions that they hold
// open for a random while before committing or rolling back, so IDs are taken in one order and become
// visible in another; a reader tails the log with SelectNotifications from the last ID it has seen, and
// a subscription follows it. At the end both must have seen every committed event exactly once, in
// increasing ID order, and nothing that was rolled back. A late fill (an ID appearing below one already
// seen) shows up as a committed event the tailing reader never saw.

const (
	tortureWriters = 8
	tortureTxs     = 5 // transactions per writer per round
)

// tortureWriter is one way of appending: it returns the IDs of the events it appended and whether its
// transaction committed.
type tortureWriter func(ctx context.Context, rng *rand.Rand, events []es.StoredEvent) (ids []int64, committed bool, err error)

func TestTorture(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	cases := []struct {
		name      string
		ordering  postgres.Ordering
		unrelated bool // a transaction elsewhere holds an xid all along
	}{
		{"xid", postgres.OrderingXID, false},
		{"table_lock", postgres.OrderingTableLock, false},
		// With the xmin held back all along, the xid ordering's readers see only what the horizon
		// (no append in flight) lets them: this tests that path on its own.
		{"xid_held_back", postgres.OrderingXID, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, name := pgtestSchema(t)
			r := mustProcess(t, db, name, postgres.WithOrdering(c.ordering))
			if c.unrelated {
				unrelatedWriter(t, pgtest.Open(t))
			}
			// Half the writers use the test hook (events_append in their own transaction, delayed,
			// sometimes rolled back); the others use the recorder as applications do.
			writers := []tortureWriter{delayedAppend(db, name, c.ordering), viaRecorder(r, 0)}
			if _, round, problems := tortureRounds(t, rounds, r, writers); len(problems) > 0 {
				t.Fatalf("round %d:\n%s", round, strings.Join(problems, "\n"))
			}
		})
	}
}

// delayedAppend calls events_append inside an explicit transaction, sleeps up to 4 ms, and then
// commits or (one time in four) rolls back.
func delayedAppend(db *sql.DB, schemaName string, o postgres.Ordering) tortureWriter {
	q := fmt.Sprintf(`SELECT coalesce(%s.events_append($1, NULL, $2::uuid[], $3::bigint[], $4::text[], $5::bytea[], NULL, NULL, NULL, NULL), 0)`, schemaName)
	return txWriter(db, true, func(ctx context.Context, rng *rand.Rand, tx *sql.Tx, events []es.StoredEvent) ([]int64, error) {
		ids, vs, topics, states := make([][16]byte, len(events)), make([]int64, len(events)), make([]string, len(events)), make([][]byte, len(events))
		for i, e := range events {
			ids[i], vs[i], topics[i], states[i] = e.OriginatorID, e.OriginatorVersion, e.Topic, e.State
		}
		var first int64
		if err := tx.QueryRowContext(ctx, q, o.String(), ids, vs, topics, states).Scan(&first); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_sleep($1)`, rng.Float64()*0.004); err != nil {
			return nil, err
		}
		out := make([]int64, len(events))
		for i := range out {
			out[i] = first + int64(i)
		}
		return out, nil
	})
}

// txWriter returns a writer that runs write in a transaction of its own on db and then commits it, or,
// with rollbacks, rolls it back one time in four.
func txWriter(db *sql.DB, rollbacks bool, write func(ctx context.Context, rng *rand.Rand, tx *sql.Tx, events []es.StoredEvent) ([]int64, error)) tortureWriter {
	return func(ctx context.Context, rng *rand.Rand, events []es.StoredEvent) ([]int64, bool, error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, false, err
		}
		defer tx.Rollback()
		out, err := write(ctx, rng, tx, events)
		if err != nil {
			return nil, false, err
		}
		if rollbacks && rng.IntN(4) == 0 {
			return out, false, tx.Rollback()
		}
		return out, true, tx.Commit()
	}
}

// tortureRounds runs up to rounds rounds of the writers, read through r, and stops at the first whose
// readers saw problems: it returns the cursor reached, and that round and its problems (none when every
// round passed).
func tortureRounds(t *testing.T, rounds int, r es.ApplicationRecorder, writers []tortureWriter) (cursor int64, round int, problems []string) {
	t.Helper()
	for round = range rounds {
		if cursor, problems = tortureRound(t, round, r, writers, cursor); len(problems) > 0 {
			return cursor, round, problems
		}
	}
	return cursor, rounds, nil
}

// tortureRound runs one round from cursor (the last ID seen so far) and returns the new last ID and
// the late fills (and other violations of the log's rules) it found. Failures of the harness itself fail t.
func tortureRound(t *testing.T, round int, r es.ApplicationRecorder, writers []tortureWriter, cursor int64) (int64, []string) {
	t.Helper()
	return tortureRoundWith(t, round, r, writers, cursor, nil)
}

// logTruth returns the IDs above after that the log holds, read once every transaction has ended: for
// rounds whose writers cannot always know whether they committed (their sessions are cancelled or
// terminated).
type logTruth func(ctx context.Context, after int64) ([]int64, error)

// tortureRoundWith is tortureRound with what the readers must see taken from truth, when not nil, rather
// than from what the writers report: every committed event a writer reports must be in it, and no
// rolled-back one.
func tortureRoundWith(t *testing.T, round int, r es.ApplicationRecorder, writers []tortureWriter, cursor int64, truth logTruth) (int64, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// The subscription runs for the whole round and is checked at the end.
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	var (
		subMu   sync.Mutex
		subSeen []es.Notification
		subErr  error
	)
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for n, err := range r.Subscribe(subCtx, cursor) {
			subMu.Lock()
			if err != nil {
				subErr = err
				subMu.Unlock()
				return
			}
			subSeen = append(subSeen, n)
			subMu.Unlock()
		}
	}()

	var (
		mu        sync.Mutex
		committed = map[int64]es.StoredEvent{}
		rolled    = map[int64]bool{}
		writerErr error
	)
	writersDone := make(chan struct{})
	go func() {
		defer close(writersDone)
		var wg sync.WaitGroup
		for w := range tortureWriters {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				write := writers[w%len(writers)]
				id := uuid.New()
				var version int64
				for range tortureTxs {
					time.Sleep(time.Duration(rng.IntN(1000)) * time.Microsecond)
					n := 1 + rng.IntN(3)
					events := make([]es.StoredEvent, n)
					for i := range events {
						version++
						events[i] = es.StoredEvent{OriginatorID: id, OriginatorVersion: version, Topic: "torture", State: fmt.Appendf(nil, "r%d w%d v%d", round, w, version)}
					}
					ids, ok, err := write(ctx, rng, events)
					mu.Lock()
					if err != nil && writerErr == nil {
						writerErr = fmt.Errorf("writer %d: %w", w, err)
					}
					for i, nid := range ids {
						if ok {
							committed[nid] = events[i]
						} else {
							rolled[nid] = true
						}
					}
					mu.Unlock()
					if err != nil {
						return
					}
					if !ok {
						version -= int64(n) // those versions were not recorded: reuse them
					}
				}
			})
		}
		wg.Wait()
	}()

	// The tailing reader: small pages, from the last ID seen, as fast as it can.
	var seen []es.Notification
	var want []int64 // from truth, when given
	last := cursor
	rng := rand.New(rand.NewPCG(uint64(round), 99))
	maxCommitted := int64(-1) // known once the writers are done
	for {
		select {
		case <-writersDone:
			if maxCommitted < 0 {
				mu.Lock()
				maxCommitted = cursor
				for id := range committed {
					maxCommitted = max(maxCommitted, id)
				}
				mu.Unlock()
				if truth != nil {
					ids, err := truth(ctx, cursor)
					if err != nil {
						t.Fatalf("round %d: the log's truth: %v", round, err)
					}
					want = ids
					for _, id := range ids {
						maxCommitted = max(maxCommitted, id)
					}
				}
			}
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("round %d: the tailing reader did not reach the last committed ID %d (at %d)", round, maxCommitted, last)
		}
		page, err := r.SelectNotifications(ctx, es.NotificationQuery{After: last, Limit: 1 + rng.IntN(8)})
		if err != nil {
			t.Fatalf("round %d: tailing reader: %v", round, err)
		}
		for _, n := range page {
			if n.ID <= last {
				t.Fatalf("round %d: tailing reader: ID %d after %d", round, n.ID, last)
			}
			last = n.ID
		}
		seen = append(seen, page...)
		if maxCommitted >= 0 && last >= maxCommitted {
			break
		}
	}
	if writerErr != nil {
		t.Fatalf("round %d: %v", round, writerErr)
	}

	var problems []string
	if truth == nil {
		want = slices.Sorted(maps.Keys(committed))
	} else {
		for id := range committed {
			if _, found := slices.BinarySearch(want, id); !found {
				problems = append(problems, fmt.Sprintf("ID %d was committed but is not in the log", id))
			}
		}
		for id := range rolled {
			if _, found := slices.BinarySearch(want, id); found {
				problems = append(problems, fmt.Sprintf("ID %d was rolled back but is in the log", id))
			}
		}
	}
	check := func(who string, got []es.Notification) {
		gotIDs := make([]int64, len(got))
		for i, n := range got {
			gotIDs[i] = n.ID
			if rolled[n.ID] {
				problems = append(problems, fmt.Sprintf("%s saw ID %d, which was rolled back", who, n.ID))
			}
			if e, ok := committed[n.ID]; ok && (e.OriginatorID != n.OriginatorID || e.OriginatorVersion != n.OriginatorVersion || string(e.State) != string(n.State)) {
				problems = append(problems, fmt.Sprintf("%s saw ID %d as %v v%d, want %v v%d", who, n.ID, n.OriginatorID, n.OriginatorVersion, e.OriginatorID, e.OriginatorVersion))
			}
		}
		if !slices.Equal(gotIDs, want) {
			missing := []int64{}
			for _, id := range want {
				if !slices.Contains(gotIDs, id) {
					missing = append(missing, id)
				}
			}
			problems = append(problems, fmt.Sprintf("%s saw %d notifications, want the %d committed; missing (late fills) %v; saw %v; want %v",
				who, len(gotIDs), len(want), missing, gotIDs, want))
		}
	}
	check("tailing reader", seen)

	// The subscription must reach the same point (it is not timed: 10 s is a generous bound).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		subMu.Lock()
		reached := subErr != nil || (len(subSeen) > 0 && subSeen[len(subSeen)-1].ID >= last) || last == cursor
		subMu.Unlock()
		if reached {
			break
		}
	}
	stopSub()
	<-subDone
	if subErr != nil {
		t.Fatalf("round %d: subscription: %v", round, subErr)
	}
	check("subscription", subSeen)
	return last, problems
}

// TestTortureDetectsLateFills is the torture test's control: writers that take IDs without any
// ordering (benchkit's raw insert, in a transaction held open, then committed or rolled back), read
// without a filter, must produce late fills, and the harness must see them. Otherwise a passing
// TestTorture would prove nothing.
func TestTortureDetectsLateFills(t *testing.T) {
	db, name := pgtestSchema(t)
	// The table-lock ordering's readers apply no filter; these writers bypass its lock.
	r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingTableLock))
	naive := txWriter(db, true, func(ctx context.Context, rng *rand.Rand, tx *sql.Tx, events []es.StoredEvent) ([]int64, error) {
		return rawAppend(ctx, rng, tx, name, events, 0.004)
	})
	expectLateFills(t, r, naive, "unordered writers")
}

// TestTortureDetectsXIDMisuse is the control of the xid ordering: writers whose xid is assigned before
// they take their IDs (so xid order and ID order disagree, which events_append prevents by requiring
// the append to be the first write of its transaction), read through the xid ordering's filter, must
// produce late fills the harness sees.
func TestTortureDetectsXIDMisuse(t *testing.T) {
	db, name := pgtestSchema(t)
	r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID))
	early := txWriter(db, false, func(ctx context.Context, rng *rand.Rand, tx *sql.Tx, events []es.StoredEvent) ([]int64, error) {
		if _, err := tx.ExecContext(ctx, `SELECT pg_current_xact_id(), pg_sleep($1)`, rng.Float64()*0.004); err != nil {
			return nil, err
		}
		return rawAppend(ctx, rng, tx, name, events, 0.002)
	})
	expectLateFills(t, r, early, "writers with early xids")
}

// rawAppend appends events to schema name with benchkit's raw insert in tx, which it then holds open
// for up to maxSleep seconds.
func rawAppend(ctx context.Context, rng *rand.Rand, tx *sql.Tx, name string, events []es.StoredEvent, maxSleep float64) ([]int64, error) {
	out, err := benchkit.NewPostgresWriter(tx, name).Append(ctx, events)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_sleep($1)`, rng.Float64()*maxSleep); err != nil {
		return nil, err
	}
	return out, nil
}

// expectLateFills is the check of a control: 20 torture rounds of w, writers that are not ordered
// (what names them), must show the harness a late fill.
func expectLateFills(t *testing.T, r *postgres.ProcessRecorder, w tortureWriter, what string) {
	t.Helper()
	if _, round, problems := tortureRounds(t, 20, r, []tortureWriter{w}); len(problems) > 0 {
		t.Logf("round %d: late fills detected, as they should be: %.200s", round, problems[0])
		return
	}
	t.Fatalf("20 rounds of %s produced no late fill the harness could see: the torture test is not sensitive", what)
}

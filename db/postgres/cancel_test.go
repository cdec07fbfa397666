package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
)

// An append is cancelled while it waits inside the xid ordering's critical section, and cancelled
// again while it deals with the first cancellation. Its connection then goes back to the pool, idle;
// no lock of the ordering may be left with it, and the next append must go through. Each step is made
// to happen, not left to timing: the append waits for the sequence, which a transaction has locked
// with ALTER SEQUENCE, and whatever it runs after the first cancellation waits for pg_locks, which
// another transaction has locked (the first migrations' exception handler looked the lock up there, and
// left it held when the second cancellation arrived).
func TestXIDCancelledTwiceLeavesNoLock(t *testing.T) {
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingXID))
	ctl := pgtest.Open(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	seqLock := beginTx(t, ctl)
	if _, err := seqLock.ExecContext(ctx, `ALTER SEQUENCE `+name+`.events_notification_id_seq NO CYCLE`); err != nil {
		t.Fatal(err)
	}
	viewLock := beginTx(t, ctl) // it also observes the append, since only it can read pg_locks
	if _, err := viewLock.ExecContext(ctx, `LOCK TABLE pg_catalog.pg_locks IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Skipf("cannot lock pg_locks, which takes a superuser: %v", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := r.InsertEvents(ctx, oneEvent(uuid.New(), 1))
		done <- err
	}()
	var waits []string // the relations the append waited for, each cancelled once
	var appendErr error
	for finished := false; !finished; {
		select {
		case appendErr = <-done:
			finished = true
			continue
		case <-ctx.Done():
			t.Fatalf("the append neither waited nor ended; waits so far: %v", waits)
		case <-time.After(time.Millisecond):
		}
		// pg_stat_activity is read once per transaction and then kept: without this, a first look taken
		// before the append had started its statement would be all the loop ever sees.
		if _, err := viewLock.ExecContext(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
			t.Fatal(err)
		}
		var pid int
		var rel string
		err := viewLock.QueryRowContext(ctx, `
SELECT l.pid, l.relation::regclass::text
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted AND l.locktype = 'relation' AND a.query LIKE '%' || $1 || '.events_%'`, name).Scan(&pid, &rel)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && len(waits) > 0 && waits[len(waits)-1] == rel) {
			continue // not waiting, or still in the wait already cancelled
		}
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, rel)
		if _, err := viewLock.ExecContext(ctx, `SELECT pg_cancel_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
	}
	if err := viewLock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := seqLock.Rollback(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the append waited for %v, was cancelled in each wait, and returned %v", waits, appendErr)
	if len(waits) == 0 || waits[0] != name+".events_notification_id_seq" {
		t.Fatalf("the append was not cancelled while it waited for the sequence (waits %v)", waits)
	}
	if appendErr == nil {
		t.Fatal("the cancelled append succeeded")
	}
	requireNoOrderingLocks(t, ctl, name) // from another pool: a session lock is its own session's to take again
	requireAppends(t, mustProcess(t, ctl, name))
}

// beginTx begins a transaction on db, rolled back when the test ends unless it has ended before.
func beginTx(t *testing.T, db *sql.DB) *sql.Tx {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return tx
}

// requireAppends fails unless an append through r succeeds within 10 s.
func requireAppends(t *testing.T, r es.ApplicationRecorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := r.InsertEvents(ctx, oneEvent(uuid.New(), 1)); err != nil {
		t.Fatalf("append after the cancellations: %v", err)
	}
}

// Appends of both orderings under a storm: 16 sessions cancel the appending backends at random and now
// and then terminate one; some appends run with a short statement_timeout and lock_timeout, some with
// a context deadline, some hold their transaction open for a while before they commit or roll back.
// Meanwhile a reader tails the log and a subscription follows it, as in the torture test, whose checker
// judges them against the rows that ended up in the log (a writer whose session was cancelled or
// terminated cannot always know whether it committed). Afterwards no session holds or waits for a lock
// of the ordering, and appends go through.
func TestCancelStorm(t *testing.T) {
	rounds := 10
	if testing.Short() {
		rounds = 3
	}
	for _, o := range orderings {
		t.Run(o.String(), func(t *testing.T) {
			db, name := pgtest.Schema(t)
			reader := mustProcess(t, db, name, postgres.WithOrdering(o))
			app := "es_storm_" + name
			storm := stormDB(t, app, "")
			timeouts := stormDB(t, app, "3ms")
			quiet := postgres.WithLogger(slog.New(slog.DiscardHandler)) // their notifications are cancelled too
			plain := mustProcess(t, storm, name, postgres.WithOrdering(o), quiet)
			limited := mustProcess(t, timeouts, name, postgres.WithOrdering(o), postgres.WithLockTimeout(time.Millisecond), quiet)
			writers := []tortureWriter{
				stormWriter(viaRecorder(plain, 0)),
				stormWriter(delayedAppend(storm, name, o)),
				stormWriter(viaRecorder(limited, 0)),
				stormWriter(viaRecorder(plain, 2*time.Millisecond)),
			}

			var cancelled, terminated atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			ctl := pgtest.Open(t)
			for c := range 16 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(c), 3))
					for {
						select {
						case <-stop:
							return
						case <-time.After(time.Duration(1+rng.IntN(5)) * time.Millisecond):
						}
						signal, states, count := "pg_cancel_backend", "'active'", &cancelled
						if rng.IntN(40) == 0 {
							signal, states, count = "pg_terminate_backend", "'active', 'idle in transaction'", &terminated
						}
						var ok bool
						err := ctl.QueryRowContext(t.Context(), `SELECT `+signal+`(pid) FROM pg_stat_activity
WHERE application_name = $1 AND state IN (`+states+`) ORDER BY random() LIMIT 1`, app).Scan(&ok)
						if ok {
							count.Add(1)
						}
						if err != nil && !errors.Is(err, sql.ErrNoRows) && t.Context().Err() == nil {
							t.Error(err)
							return
						}
					}
				})
			}
			truth := func(ctx context.Context, after int64) ([]int64, error) {
				if err := waitQuiet(ctx, ctl, app); err != nil {
					return nil, err
				}
				return logIDs(ctx, db, name, after)
			}
			var cursor int64
			for round := range rounds {
				var problems []string
				cursor, problems = tortureRoundWith(t, round, reader, writers, cursor, truth)
				if len(problems) > 0 {
					close(stop)
					wg.Wait()
					t.Fatalf("round %d:\n%s", round, problems)
				}
			}
			close(stop)
			wg.Wait()
			t.Logf("%d backends cancelled, %d terminated; the log reached ID %d", cancelled.Load(), terminated.Load(), cursor)
			if cancelled.Load() == 0 || terminated.Load() == 0 {
				t.Fatal("the storm cancelled or terminated nothing")
			}
			requireNoOrderingLocks(t, db, name)
			// Pooled sessions that were terminated while idle fail their next use: drop them (after the
			// check above, since closing a session would release a lock it had kept).
			storm.SetMaxIdleConns(0)
			storm.SetMaxIdleConns(32)
			requireAppends(t, plain)
			requireAppends(t, reader)
		})
	}
}

// stormDB returns a pool whose sessions carry application_name app (the cancellers pick their victims
// by it) and, when not empty, statementTimeout.
func stormDB(t *testing.T, app, statementTimeout string) *sql.DB {
	t.Helper()
	pgtest.Open(t) // skips without a server
	cfg, err := pgx.ParseConfig(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = app
	if statementTimeout != "" {
		cfg.RuntimeParams["statement_timeout"] = statementTimeout
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxIdleConns(32)
	t.Cleanup(func() { db.Close() })
	return db
}

// viaRecorder appends through r, with a context deadline when timeout is not zero.
func viaRecorder(r es.ApplicationRecorder, timeout time.Duration) tortureWriter {
	return func(ctx context.Context, rng *rand.Rand, events []es.StoredEvent) ([]int64, bool, error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.Int64N(int64(timeout))))
			defer cancel()
		}
		ids, err := r.InsertEvents(ctx, events)
		return ids, err == nil, err
	}
}

// stormWriter gives each call's events an aggregate of their own (so that an append whose outcome is
// unknown does not make the next one conflict) and turns failures into appends of unknown outcome,
// which the torture round neither counts as committed nor as rolled back.
func stormWriter(w tortureWriter) tortureWriter {
	return func(ctx context.Context, rng *rand.Rand, events []es.StoredEvent) ([]int64, bool, error) {
		id := uuid.New()
		for i := range events {
			events[i].OriginatorID, events[i].OriginatorVersion = id, int64(i+1)
		}
		ids, ok, err := w(ctx, rng, events)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, err
			}
			return nil, false, nil
		}
		return ids, ok, nil
	}
}

// waitQuiet waits until no session of application app runs a statement or holds a transaction open.
func waitQuiet(ctx context.Context, db *sql.DB, app string) error {
	for {
		var busy int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE application_name = $1 AND state NOT IN ('idle')`, app).Scan(&busy)
		if err != nil || busy == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d sessions of %s still busy: %w", busy, app, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// logIDs returns the IDs above after in the events table of schemaName, read without any filter.
func logIDs(ctx context.Context, db *sql.DB, schemaName string, after int64) ([]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT notification_id FROM `+schemaName+`.events WHERE notification_id > $1 ORDER BY 1`, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

package postgres_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
)

// withParam adds a query parameter to a URL-style DSN.
func withParam(dsn, kv string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + kv
	}
	return dsn + "?" + kv
}

// collector gathers a subscription's notifications.
type collector struct {
	mu   sync.Mutex
	got  []es.Notification
	err  error
	done chan struct{}
}

func collect(ctx context.Context, r es.ApplicationRecorder, after int64) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for n, err := range r.Subscribe(ctx, after) {
			c.mu.Lock()
			if err != nil {
				c.err = err
			} else {
				c.got = append(c.got, n)
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// waitFor waits until the subscription has delivered n notifications, and checks they are the IDs
// want so far (no skip, no duplicate).
func (c *collector) waitFor(t *testing.T, want []int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		got := make([]int64, len(c.got))
		for i, n := range c.got {
			got[i] = n.ID
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			t.Fatalf("subscription failed: %v", err)
		}
		if len(got) >= len(want) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("subscription delivered %v, want %v", got, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription delivered %v within %v, want %v", got, within, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// listenerPID waits for a listening backend of application appName other than not, and returns its
// pid.
func listenerPID(t *testing.T, db *sql.DB, appName string, not int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var pid int
		err := db.QueryRowContext(t.Context(), `SELECT pid FROM pg_stat_activity
WHERE application_name = $1 AND query LIKE 'LISTEN %' AND pid <> $2`, appName, not).Scan(&pid)
		if err == nil {
			return pid
		}
		if err != sql.ErrNoRows {
			t.Fatal(err)
		}
	}
	t.Fatalf("no listener of %s appeared", appName)
	return 0
}

// Notifications from another process reach a subscription through LISTEN/NOTIFY (polling is set to
// an hour, so nothing else could deliver them in time), also after the listener's backend has been
// terminated, and including an append made while it was gone.
func TestSubscribeListenerSurvivesTerminatedBackend(t *testing.T) {
	for _, o := range orderings {
		t.Run(o.String(), func(t *testing.T) {
			admin, name := pgtest.Schema(t)
			appName := pgtest.SchemaName() // unique
			subDB, err := sql.Open("pgx", withParam(pgtest.DSN(), "application_name="+appName))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { subDB.Close() })
			sub := mustProcess(t, subDB, name, postgres.WithOrdering(o), postgres.WithPollInterval(time.Hour))
			writer := mustProcess(t, pgtest.Open(t), name, postgres.WithOrdering(o))

			ctx, cancel := context.WithCancel(t.Context())
			c := collect(ctx, sub, 0)
			pid := listenerPID(t, admin, appName, 0)

			var want []int64
			appendOne := func() {
				t.Helper()
				ids, err := writer.InsertEvents(t.Context(), oneEvent(uuid.New(), 1))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, ids...)
			}
			appendOne()
			c.waitFor(t, want, 5*time.Second)

			if _, err := admin.ExecContext(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
				t.Fatal(err)
			}
			appendOne() // most likely while no listener is there
			c.waitFor(t, want, 10*time.Second)
			pid2 := listenerPID(t, admin, appName, pid)
			appendOne()
			c.waitFor(t, want, 5*time.Second)
			if pid2 == pid {
				t.Fatal("the listener's backend did not change")
			}

			cancel()
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
				t.Fatal("the subscription did not end with its context")
			}
			if c.err != nil {
				t.Fatalf("the subscription ended with %v, want no error", c.err)
			}
		})
	}
}

// With a driver other than pgx's stdlib there is no listener: subscriptions poll.
func TestSubscribePollsWithOtherDrivers(t *testing.T) {
	admin, name := pgtest.Schema(t)
	registerWrapped.Do(func() { sql.Register("pgx-wrapped", wrappedDriver{}) })
	db, err := sql.Open("pgx-wrapped", pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sub := mustProcess(t, db, name, postgres.WithPollInterval(20*time.Millisecond))
	writer := mustProcess(t, admin, name)
	c := collect(t.Context(), sub, 0)
	var want []int64
	for v := int64(1); v <= 3; v++ {
		ids, err := writer.InsertEvents(t.Context(), oneEvent(uuid.New(), v))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ids...)
		c.waitFor(t, want, 5*time.Second)
	}
	// The recorder on the wrapped driver works otherwise too.
	if _, err := sub.InsertEvents(t.Context(), oneEvent(uuid.New(), 1)); err != nil {
		t.Fatal(err)
	}
}

var registerWrapped sync.Once

// A hot standby cancels queries that conflict with the recovery it replays (SQLSTATE 40001), however
// short they are. A subscription on a standby must not end for one: here the first reads of the log
// fail so, as through a standby, and the subscription still delivers every event, without an error.
func TestSubscribeRetriesRecoveryConflicts(t *testing.T) {
	admin, name := pgtest.Schema(t)
	registerConflicting.Do(func() { sql.Register("pgx-recovery-conflicts", conflictingDriver{}) })
	conflicts.Store(3)
	db, err := sql.Open("pgx-recovery-conflicts", pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	writer := mustProcess(t, admin, name)
	ids, err := writer.InsertEvents(t.Context(), oneEvent(uuid.New(), 1))
	if err != nil {
		t.Fatal(err)
	}
	sub := mustProcess(t, db, name, postgres.WithPollInterval(20*time.Millisecond))
	c := collect(t.Context(), sub, 0)
	c.waitFor(t, ids, 10*time.Second)
	if n := conflicts.Load(); n > 0 {
		t.Fatalf("%d of the 3 conflicts were not met: the subscription did not read through them", n)
	}
}

var (
	registerConflicting sync.Once
	conflicts           atomic.Int32 // reads of the log still to fail
)

// conflictingDriver is pgx's stdlib driver whose reads of the notification log fail with a recovery
// conflict while conflicts is above 0.
type conflictingDriver struct{}

func (conflictingDriver) Open(name string) (driver.Conn, error) {
	c, err := wrappedDriver{}.Open(name)
	if err != nil {
		return nil, err
	}
	return conflictingConn{c.(wrappedConn)}, nil
}

type conflictingConn struct{ wrappedConn }

func (c conflictingConn) QueryContext(ctx context.Context, q string, a []driver.NamedValue) (driver.Rows, error) {
	if strings.Contains(q, "name: SelectNotifications") && conflicts.Add(-1) >= 0 {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: "40001",
			Message: "canceling statement due to conflict with recovery",
			Detail:  "User query might have needed to see row versions that must be removed."}
	}
	return c.wrappedConn.QueryContext(ctx, q, a)
}

// wrappedDriver is pgx's stdlib driver behind a connection type of its own, as another driver would be.
type wrappedDriver struct{}

func (wrappedDriver) Open(name string) (driver.Conn, error) {
	c, err := stdlib.GetDefaultDriver().Open(name)
	if err != nil {
		return nil, err
	}
	return wrappedConn{c.(*stdlib.Conn)}, nil
}

type wrappedConn struct{ c *stdlib.Conn }

func (w wrappedConn) Prepare(q string) (driver.Stmt, error) { return w.c.Prepare(q) }
func (w wrappedConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return w.c.PrepareContext(ctx, q)
}
func (w wrappedConn) Close() error              { return w.c.Close() }
func (w wrappedConn) Begin() (driver.Tx, error) { return w.c.Begin() } //nolint:staticcheck
func (w wrappedConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	return w.c.BeginTx(ctx, o)
}
func (w wrappedConn) ExecContext(ctx context.Context, q string, a []driver.NamedValue) (driver.Result, error) {
	return w.c.ExecContext(ctx, q, a)
}
func (w wrappedConn) QueryContext(ctx context.Context, q string, a []driver.NamedValue) (driver.Rows, error) {
	return w.c.QueryContext(ctx, q, a)
}
func (w wrappedConn) Ping(ctx context.Context) error             { return w.c.Ping(ctx) }
func (w wrappedConn) CheckNamedValue(v *driver.NamedValue) error { return w.c.CheckNamedValue(v) }
func (w wrappedConn) ResetSession(ctx context.Context) error     { return w.c.ResetSession(ctx) }

// A pool of one connection: the listener has a connection of its own, outside the pool, so appends and
// reads are not starved and live subscriptions still hear of them.
func TestSubscribeWithOneConnectionPool(t *testing.T) {
	db, name := pgtest.Schema(t)
	db.SetMaxOpenConns(1)
	r := mustProcess(t, db, name, postgres.WithPollInterval(20*time.Millisecond))
	c := collect(t.Context(), r, 0)
	var want []int64
	for v := int64(1); v <= 3; v++ {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		ids, err := r.InsertEvents(ctx, oneEvent(uuid.New(), v))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ids...)
		c.waitFor(t, want, 5*time.Second)
	}
}

// Every connection of the subscriber's pool is terminated (the listener's and the idle ones its reads
// use): the subscription goes on, without skipping or repeating.
func TestSubscribeSurvivesTerminatedPool(t *testing.T) {
	admin, name := pgtest.Schema(t)
	appName := pgtest.SchemaName()
	subDB, err := sql.Open("pgx", withParam(pgtest.DSN(), "application_name="+appName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { subDB.Close() })
	subDB.SetMaxIdleConns(8)
	sub := mustProcess(t, subDB, name, postgres.WithPollInterval(20*time.Millisecond))
	writer := mustProcess(t, pgtest.Open(t), name)
	c := collect(t.Context(), sub, 0)
	listenerPID(t, admin, appName, 0)
	var want []int64
	for round := range 3 {
		ids, err := writer.InsertEvents(t.Context(), oneEvent(uuid.New(), 1))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ids...)
		c.waitFor(t, want, 10*time.Second)
		var n int
		if err := admin.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, appName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("round %d: no backend of the subscriber to terminate", round)
		}
	}
	ids, err := writer.InsertEvents(t.Context(), oneEvent(uuid.New(), 1))
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, append(want, ids...), 10*time.Second)
}

// The listener's connection is not the pool's: while a subscription listens, every connection the
// pool allows is still the application's.
func TestListenerHoldsNoPoolConnection(t *testing.T) {
	db, name := pgtest.Schema(t)
	db.SetMaxOpenConns(2)
	r := mustProcess(t, db, name)
	c := collect(t.Context(), r, 0)
	ids, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1))
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, ids, 5*time.Second)
	// Hold both connections of the pool at once; with the listener in the pool, the second would wait.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var txs []*sql.Tx
	for range 2 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatalf("the pool's connections are not all available while a subscription listens: %v", err)
		}
		if _, err := tx.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatalf("the pool's connections are not all available while a subscription listens: %v", err)
		}
		txs = append(txs, tx)
	}
	for _, tx := range txs {
		tx.Rollback()
	}
}

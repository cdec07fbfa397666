// Package drivertest runs the module's conformance suites through database/sql drivers that the
// module itself does not depend on: lib/pq beside pgx for PostgreSQL, and mattn/go-sqlite3 and
// modernc.org/sqlite beside ncruces/go-sqlite3 for SQLite. It is a Go module of its own, so that these
// drivers never enter the library's go.mod; `make test` runs it.
//
// Each driver has a package of its own (a test binary of its own), since ncruces and mattn both
// register the driver name "sqlite3" and cannot be linked into one program. Each calls [SQLite] or
// [Postgres], which run, on fresh databases: recordertest's process and snapshot suites,
// projectiontest.TestSQLTracker, and a repository round trip (the bank example's accounts, snapshots,
// an atomic transfer, a conflict and a projection). [WakeUp] measures how long a subscription in
// another recorder takes to deliver a new event.
package drivertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/examples/bank/bank"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/projection/projectiontest"
	"github.com/eventsourcing-go/eventsourcing/recordertest"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// Recorder is what the SQL process recorders are: the suites need all of it.
type Recorder interface {
	es.ProcessRecorder
	projection.SQLTracker
	io.Closer
}

// Database is a fresh, migrated database (or PostgreSQL schema) and its recorders.
type Database struct {
	DB *sql.DB
	// Process and Snapshots return new recorders on DB, closed when the test ends.
	Process   func(t testing.TB) Recorder
	Snapshots func(t testing.TB) es.AggregateRecorder
}

// SQLite runs the suites on databases that open returns: each a new, empty database (a file, or an
// in-memory database shared by the pool's connections), closed when the test ends.
func SQLite(t *testing.T, open func(t testing.TB) *sql.DB) {
	run(t, func(t testing.TB) Database { return SQLiteDatabase(t, open(t)) })
}

// SQLiteDatabase migrates db and returns it with its recorders.
func SQLiteDatabase(t testing.TB, db *sql.DB, opts ...sqlite.Option) Database {
	t.Helper()
	if err := schema.Migrate(t.Context(), db, schema.SQLite); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return database(db, opts, sqlite.NewProcessRecorder, sqlite.NewSnapshotRecorder)
}

// OpenSQLite returns a function that opens, through the driver registered as driverName, the
// database that dsn names for a test (a new one at each call: TempFile, or a DSN of an in-memory
// database with a random name), closed when the test ends.
func OpenSQLite(driverName string, dsn func(t testing.TB) string) func(t testing.TB) *sql.DB {
	return func(t testing.TB) *sql.DB {
		t.Helper()
		db, err := sql.Open(driverName, dsn(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

// TempFile returns the path of a database file in a new directory, removed when the test ends. The
// path is short: t.TempDir's names the (deeply nested) test, and SQLite limits path lengths (ncruces
// v0.37 panics on one of about a thousand bytes).
func TempFile(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "es-drivertest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "events.db")
}

// Postgres runs the suites through the database/sql driver registered as driverName, each on a fresh
// schema of the test server (pgtest: ES_POSTGRES_DSN), migrated through that driver.
func Postgres(t *testing.T, driverName string) {
	PostgresWithParams(t, driverName, nil)
}

// PostgresWithParams is Postgres with params added to the test server's DSN: settings of the driver,
// such as pgx's default_query_exec_mode.
func PostgresWithParams(t *testing.T, driverName string, params url.Values) {
	run(t, func(t testing.TB) Database { return postgresDatabase(t, driverName, params) })
}

// PostgresDatabase returns a fresh schema migrated through driverName, a *sql.DB of that driver whose
// connections have the schema as their search_path (so that read models land in it), and recorders
// on the schema (with opts). The schema is dropped when the test ends.
func PostgresDatabase(t testing.TB, driverName string, opts ...postgres.Option) Database {
	t.Helper()
	return postgresDatabase(t, driverName, nil, opts...)
}

func postgresDatabase(t testing.TB, driverName string, params url.Values, opts ...postgres.Option) Database {
	t.Helper()
	name := pgtest.EmptySchema(t, pgtest.Open(t)) // skips, or fails, without a server
	db := openPostgres(t, driverName, name, params)
	if err := schema.Migrate(t.Context(), db, schema.Postgres, schema.WithSchema(name)); err != nil {
		t.Fatalf("migrate schema %s through %s: %v", name, driverName, err)
	}
	opts = append([]postgres.Option{postgres.WithSchema(name)}, opts...)
	return database(db, opts, postgres.NewProcessRecorder, postgres.NewSnapshotRecorder)
}

// database returns db with the recorders that a dialect's constructors make on it with opts.
func database[O any, P Recorder, S interface {
	es.AggregateRecorder
	io.Closer
}](db *sql.DB, opts []O, newProcess func(context.Context, *sql.DB, ...O) (P, error), newSnapshots func(context.Context, *sql.DB, ...O) (S, error)) Database {
	return Database{
		DB: db,
		Process: func(t testing.TB) Recorder {
			r, err := newProcess(t.Context(), db, opts...)
			return closeLater(t, r, err)
		},
		Snapshots: func(t testing.TB) es.AggregateRecorder {
			r, err := newSnapshots(t.Context(), db, opts...)
			return closeLater(t, r, err)
		},
	}
}

// OpenPostgres opens the test server through driverName with searchPath as the connections'
// search_path (both drivers pass unknown DSN parameters to the server as settings); closed when the
// test ends.
func OpenPostgres(t testing.TB, driverName, searchPath string) *sql.DB {
	t.Helper()
	return openPostgres(t, driverName, searchPath, nil)
}

func openPostgres(t testing.TB, driverName, searchPath string, params url.Values) *sql.DB {
	t.Helper()
	u, err := url.Parse(pgtest.DSN())
	if err != nil {
		t.Fatalf("parse ES_POSTGRES_DSN: %v", err)
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	q.Set("search_path", searchPath)
	u.RawQuery = q.Encode()
	db, err := sql.Open(driverName, u.String())
	if err != nil {
		t.Fatalf("open %s: %v", driverName, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func closeLater[R io.Closer](t testing.TB, r R, err error) R {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func run(t *testing.T, fresh func(t testing.TB) Database) {
	t.Run("ProcessRecorder", func(t *testing.T) {
		recordertest.TestProcessRecorder(t, func(t *testing.T) es.ProcessRecorder { return fresh(t).Process(t) })
	})
	t.Run("SnapshotRecorder", func(t *testing.T) {
		recordertest.TestAggregateRecorder(t, func(t *testing.T) es.AggregateRecorder { return fresh(t).Snapshots(t) })
	})
	t.Run("SQLTracker", func(t *testing.T) {
		projectiontest.TestSQLTracker(t, func(t *testing.T) projection.SQLTracker { return fresh(t).Process(t) })
	})
	t.Run("Repository", func(t *testing.T) { RoundTrip(t, fresh(t)) })
}

// RoundTrip runs the bank example's domain on d: accounts saved and loaded through repositories with
// snapshots, a transfer saving two accounts atomically, a stale save failing with es.ErrConflict
// (and changing nothing), and the balances projection reading the log into a table of d.DB.
func RoundTrip(t *testing.T, d Database) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	events := d.Process(t)
	m, err := mapper.New(bank.Registry(), mapper.WithCompression(mapper.DefaultCompressionQuality))
	if err != nil {
		t.Fatal(err)
	}
	app := projection.Application{Name: "bank", Store: eventstore.New(m, events)}
	service := func() *bank.Service {
		s, err := bank.NewService(app.Store, eventstore.New(m, d.Snapshots(t)), 2)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	svc := service()
	ada, err := svc.OpenAccount(ctx, "ada")
	if err != nil {
		t.Fatalf("open account: %v", err)
	}
	bob, err := svc.OpenAccount(ctx, "bob")
	if err != nil {
		t.Fatalf("open account: %v", err)
	}
	for _, step := range []func() error{
		func() error { return svc.Deposit(ctx, ada, 100) },
		func() error { return svc.Deposit(ctx, ada, 50) },
		func() error { return svc.Transfer(ctx, ada, bob, 30) },
		func() error { return svc.Withdraw(ctx, bob, 10) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int64{"ada": 120, "bob": 20}
	balances := func(s *bank.Service, what string) {
		t.Helper()
		for owner, id := range map[string]uuid.UUID{"ada": ada, "bob": bob} {
			got, err := s.Balance(ctx, id)
			if err != nil {
				t.Fatalf("%s: balance of %s: %v", what, owner, err)
			}
			if got != want[owner] {
				t.Fatalf("%s: balance of %s %d, want %d", what, owner, got, want[owner])
			}
		}
	}
	balances(svc, "the service that saved")
	balances(service(), "a new service (no cache: snapshots and events)")

	// Two copies of one account: the second save is stale.
	a1, err := service().Accounts.Get(ctx, ada)
	if err != nil {
		t.Fatal(err)
	}
	other := service()
	a2, err := other.Accounts.Get(ctx, ada)
	if err != nil {
		t.Fatal(err)
	}
	if err := a1.Deposit(1); err != nil {
		t.Fatal(err)
	}
	if err := a2.Deposit(2); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Accounts.Save(ctx, a1); err != nil {
		t.Fatalf("first save: %v", err)
	}
	if _, err := other.Accounts.Save(ctx, a2); !errors.Is(err, es.ErrConflict) {
		t.Fatalf("stale save: %v, want an error wrapping ErrConflict", err)
	}
	want["ada"]++
	balances(service(), "after the conflict")

	// The balances projection, tracked in the same database.
	if _, err := d.DB.ExecContext(ctx, bank.BalancesTable); err != nil {
		t.Fatal(err)
	}
	runner, err := projection.NewRunner("balances", app, projection.SQL(events), bank.Balances)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("projection: %v", err)
		}
	}()
	last, err := events.MaxNotificationID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Wait(ctx, last); err != nil {
		t.Fatalf("projection: wait for %d: %v", last, err)
	}
	rows, err := d.DB.QueryContext(ctx, bank.BalancesByOwner)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int64{}
	for rows.Next() {
		var owner string
		var total int64
		if err := rows.Scan(&owner, &total); err != nil {
			t.Fatal(err)
		}
		got[owner] = total
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || got["ada"] != want["ada"] || got["bob"] != want["bob"] {
		t.Fatalf("read model %v, want %v", got, want)
	}
}

// Append measures appends of 1, 10 and 100 events per call through d's process recorder, one
// aggregate per sub-benchmark.
func Append(b *testing.B, d Database) {
	r := d.Process(b)
	state := benchkit.SampleState()
	for _, size := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			id, v := benchkit.NewID(), int64(1)
			for b.Loop() {
				if _, err := r.InsertEvents(b.Context(), benchkit.StoredEvents(id, v, size, state)); err != nil {
					b.Fatal(err)
				}
				v += int64(size)
			}
		})
	}
}

// WakeUp measures b.N deliveries to a subscription in another recorder than the one that appends (as
// in another process: no in-process wake-up), from the commit to the delivery, with the writes at
// random points of the subscriber's poll cycle. It reports the percentiles as p50-ms, p99-ms and
// max-ms, and logs them.
func WakeUp(b *testing.B, d Database) {
	writer, subscriber := d.Process(b), d.Process(b)
	b.ResetTimer()
	lat, _, err := benchkit.MeasureLatency(b.Context(), benchkit.LatencyRun{
		Writer: writer, Subscriber: subscriber, Samples: b.N, Pause: postgres.DefaultPollInterval,
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	l := benchkit.Summarise(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(l.P50), "p50-ms")
	b.ReportMetric(ms(l.P99), "p99-ms")
	b.ReportMetric(ms(l.Max), "max-ms")
	b.Logf("wake-up in another recorder: %v", l)
}

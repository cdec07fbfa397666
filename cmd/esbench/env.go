package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// orderings are the PostgreSQL recorder's orderings, each measured.
var orderings = []postgres.Ordering{postgres.OrderingXID, postgres.OrderingTableLock}

// env holds what the scenarios share: the temporary directory for SQLite files, the PostgreSQL
// connection (nil when skipped) and the cleanups to run at the end, also after an error or interrupt.
type env struct {
	cfg    config
	tmp    string
	pg     *sql.DB
	pgSkip string // why PostgreSQL scenarios are skipped; "" when the server is used
	logf   func(format string, args ...any)

	// What close does, all registered by the scenarios, which run one after the other.
	recorders []io.Closer // closed first
	cleanups  []func()    // then these, in reverse order of registration
	files     int
}

func newEnv(ctx context.Context, cfg config, logf func(string, ...any)) (*env, error) {
	tmp, err := os.MkdirTemp("", "esbench-")
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, tmp: tmp, logf: logf}
	e.onClose(func() { os.RemoveAll(tmp) })
	if cfg.pgDSN == "" || cfg.pgDSN == "off" || cfg.pgDSN == "none" {
		e.pgSkip = "PostgreSQL was turned off (-postgres=" + cfg.pgDSN + ")"
		return e, nil
	}
	db, err := benchkit.OpenPostgres(ctx, cfg.pgDSN)
	if err != nil {
		if ctx.Err() != nil {
			return e, ctx.Err()
		}
		e.pgSkip = fmt.Sprintf("PostgreSQL at %s could not be reached (%v)", redactDSN(cfg.pgDSN), err)
		return e, nil
	}
	// 16 writers plus readers, listeners and the raw baselines; database/sql keeps only 2 idle
	// connections by default, which would make the concurrent scenarios reconnect all the time.
	db.SetMaxOpenConns(64)
	db.SetMaxIdleConns(64)
	// Open the connections the 16-writer scenario needs now (they go back to the pool when newEnv
	// returns), so that no measurement pays for connecting.
	for range 24 {
		c, err := db.Conn(ctx)
		if err != nil {
			db.Close()
			e.pgSkip = fmt.Sprintf("PostgreSQL at %s answered a ping but failed to open more connections (%v)", redactDSN(cfg.pgDSN), err)
			return e, nil
		}
		defer c.Close()
	}
	e.pg = db
	e.onClose(func() { db.Close() })
	return e, nil
}

// onClose registers f to run at close, in reverse order of registration.
func (e *env) onClose(f func()) { e.cleanups = append(e.cleanups, f) }

// closeFirst registers c to be closed before every other cleanup: a PostgreSQL recorder's listener
// holds a pooled connection locked (database/sql's Conn.Raw) while it waits for notifications, and
// closing a statement that was ever prepared on that connection waits for the lock.
func (e *env) closeFirst(c io.Closer) { e.recorders = append(e.recorders, c) }

// close runs the cleanups: recorders are closed, then statements and databases, schemas dropped,
// files removed. It gives up after timeout, saying what it leaves behind.
func (e *env) close(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range e.recorders {
			c.Close()
		}
		for _, f := range slices.Backward(e.cleanups) {
			f()
		}
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		e.logf("cleanup did not finish within %v: files in %s and esbench_* schemas may be left behind", timeout, e.tmp)
	}
}

// sqlitePath returns a fresh file name in the temporary directory.
func (e *env) sqlitePath(label string) string {
	e.files++
	return filepath.Join(e.tmp, fmt.Sprintf("%02d-%s.db", e.files, label))
}

// opener opens the stores, recorders and baselines of a scenario, each closed at the end by the env.
// It keeps the first error and opens nothing after it, so that a scenario checks err once, after its
// openings.
type opener struct {
	e   *env
	ctx context.Context
	err error
}

func (e *env) opener(ctx context.Context) *opener { return &opener{e: e, ctx: ctx} }

// interleave measures ops (see benchkit.Interleave) once everything they need has opened.
func (o *opener) interleave(p benchkit.Plan, ops ...benchkit.Op) ([][]benchkit.Sample, error) {
	if o.err != nil {
		return nil, o.err
	}
	return benchkit.Interleave(o.ctx, p, ops...)
}

// do runs f unless an earlier step failed, and keeps its error.
func (o *opener) do(f func() error) {
	if o.err == nil {
		o.err = f()
	}
}

// open runs f unless an earlier step failed, and registers what it opens to be closed at the end,
// before everything else when first (see closeFirst).
func open[C io.Closer](o *opener, first bool, f func() (C, error)) C {
	var c C
	o.do(func() (err error) {
		if c, err = f(); err == nil && first {
			o.e.closeFirst(c)
		} else if err == nil {
			o.e.onClose(func() { c.Close() })
		}
		return err
	})
	return c
}

// sqliteDB opens (creating if need be) and migrates the database file path.
func (o *opener) sqliteDB(path string, s sqlite.Synchronous) *sql.DB {
	db := open(o, false, func() (*sql.DB, error) { return ncruces.Open(o.ctx, path, sqlite.WithSynchronous(s)) })
	o.do(func() error {
		if err := schema.Migrate(o.ctx, db, schema.SQLite); err != nil {
			return fmt.Errorf("migrate %s: %w", path, err)
		}
		return nil
	})
	return db
}

// sqlite opens a fresh database with a process recorder on it.
func (o *opener) sqlite(label string, s sqlite.Synchronous) (*sqlite.ProcessRecorder, *sql.DB) {
	db := o.sqliteDB(o.e.sqlitePath(label), s)
	return o.sqliteRecorder(db, s), db
}

func (o *opener) sqliteRecorder(db *sql.DB, s sqlite.Synchronous) *sqlite.ProcessRecorder {
	return open(o, true, func() (*sqlite.ProcessRecorder, error) {
		return sqlite.NewProcessRecorder(o.ctx, db, sqlite.WithSynchronous(s))
	})
}

func (o *opener) sqliteSnapshots(db *sql.DB, s sqlite.Synchronous) *sqlite.SnapshotRecorder {
	return open(o, true, func() (*sqlite.SnapshotRecorder, error) {
		return sqlite.NewSnapshotRecorder(o.ctx, db, sqlite.WithSynchronous(s))
	})
}

func (o *opener) sqliteWriter(db *sql.DB) *benchkit.SQLiteWriter {
	return open(o, false, func() (*benchkit.SQLiteWriter, error) { return benchkit.NewSQLiteWriter(o.ctx, db) })
}

func (o *opener) sqliteReader(db *sql.DB) *benchkit.Reader {
	return open(o, false, func() (*benchkit.Reader, error) { return benchkit.NewSQLiteReader(o.ctx, db) })
}

// pgSchema creates and migrates a fresh schema with a random name, dropped at close.
func (o *opener) pgSchema() string {
	e := o.e
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "esbench_" + hex.EncodeToString(b[:])
	o.do(func() error {
		if e.pg == nil {
			return errors.New("PostgreSQL is not available")
		}
		// Registered before it exists, so that a failed migration leaves nothing behind either.
		e.onClose(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// name is esbench_<hex>: a plain identifier, safe as SQL text. A busy server may time out a
			// connection; try again rather than leave the schema behind.
			for attempt := range 3 {
				_, err := e.pg.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE")
				if err == nil {
					return
				}
				e.logf("cleanup: drop schema %s (attempt %d): %v", name, attempt+1, err)
				time.Sleep(time.Second)
			}
			e.logf("cleanup: schema %s is left behind; drop it by hand", name)
		})
		if err := schema.Migrate(o.ctx, e.pg, schema.Postgres, schema.WithSchema(name)); err != nil {
			return fmt.Errorf("migrate schema %s: %w", name, err)
		}
		return nil
	})
	return name
}

// postgres makes a fresh schema with a process recorder with ordering ord on it.
func (o *opener) postgres(ord postgres.Ordering) (*postgres.ProcessRecorder, string) {
	name := o.pgSchema()
	return o.pgRecorder(name, ord), name
}

func (o *opener) pgRecorder(name string, ord postgres.Ordering) *postgres.ProcessRecorder {
	return open(o, true, func() (*postgres.ProcessRecorder, error) {
		return postgres.NewProcessRecorder(o.ctx, o.e.pg, postgres.WithSchema(name), postgres.WithOrdering(ord))
	})
}

func (o *opener) pgReader(name string) *benchkit.Reader {
	return open(o, false, func() (*benchkit.Reader, error) { return benchkit.NewPostgresReader(o.ctx, o.e.pg, name) })
}

// describeMachine returns the rows of the report's machine table, all but the load average at the end.
func describeMachine(ctx context.Context, e *env) [][]string {
	cpu, memory, osName := benchkit.Host()
	sqliteVersion := "unknown"
	if db, err := ncruces.Open(ctx, ncruces.Memory); err == nil {
		sqliteVersion = benchkit.SQLiteVersion(ctx, db)
		db.Close()
	}
	sqliteVersion, pg := sqliteVersion+" (github.com/ncruces/go-sqlite3, WAL mode, files in "+os.TempDir()+")", "not used: "+e.pgSkip
	if e.pg != nil {
		pg = benchkit.PostgresServer(ctx, e.pg) + ", same machine, reached as " + redactDSN(e.cfg.pgDSN)
	}
	return [][]string{{"CPU", cpu}, {"Cores", strconv.Itoa(runtime.NumCPU())}, {"Memory", memory}, {"OS", osName},
		{"Go", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}, {"SQLite", sqliteVersion}, {"PostgreSQL", pg},
		{"Load average (1, 5, 15 min)", "at start " + benchkit.LoadAvg()}}
}

// redactDSN drops a password from a DSN before it is printed.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

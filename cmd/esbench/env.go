package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// env holds what the scenarios share: the temporary directory for SQLite files, the PostgreSQL
// connection (nil when skipped) and the cleanups to run at the end, also after an error or interrupt.
type env struct {
	cfg    config
	tmp    string
	pg     *sql.DB
	pgSkip string // why PostgreSQL scenarios are skipped; "" when the server is used
	logf   func(format string, args ...any)

	mu        sync.Mutex
	recorders []func() // closed first
	cleanups  []func() // then these, in reverse order of registration
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
	db, err := openPostgres(ctx, cfg.pgDSN)
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
	// Open the connections the 16-writer scenario needs now, so that no measurement pays for
	// connecting.
	if err := warmPool(ctx, db, 24); err != nil {
		db.Close()
		e.pgSkip = fmt.Sprintf("PostgreSQL at %s answered a ping but failed to open more connections (%v)", redactDSN(cfg.pgDSN), err)
		return e, nil
	}
	e.pg = db
	e.onClose(func() { db.Close() })
	return e, nil
}

// openPostgres opens dsn with the pgx driver and pings it: a few attempts, about five seconds in all,
// since a busy server may miss one. Every connection gets a connect timeout (10 s unless the DSN sets
// one), so that a server that stops answering fails a scenario instead of hanging the program.
func openPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = 30 * time.Second
	}
	db := stdlib.OpenDB(*pc)
	deadline := time.Now().Add(5 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return db, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			db.Close()
			return nil, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// warmPool opens n connections of db at once and returns them to the pool, where they stay idle.
func warmPool(ctx context.Context, db *sql.DB, n int) error {
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	return nil
}

// onClose registers f to run at close, in reverse order of registration.
func (e *env) onClose(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

// onCloseRecorder registers the closing of a recorder, which happens before every other cleanup: a
// PostgreSQL recorder's listener holds a pooled connection locked (database/sql's Conn.Raw) while it
// waits for notifications, and closing a statement that was ever prepared on that connection waits for
// the lock.
func (e *env) onCloseRecorder(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recorders = append(e.recorders, f)
}

// close runs the cleanups: recorders are closed, then statements and databases, schemas dropped,
// files removed. It gives up after timeout, saying what it leaves behind.
func (e *env) close(timeout time.Duration) {
	e.mu.Lock()
	fs := slices.Clone(e.recorders)
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		fs = append(fs, e.cleanups[i])
	}
	e.recorders, e.cleanups = nil, nil
	e.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, f := range fs {
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
	e.mu.Lock()
	defer e.mu.Unlock()
	e.files++
	return filepath.Join(e.tmp, fmt.Sprintf("%02d-%s.db", e.files, label))
}

// sqliteDB opens a fresh, migrated SQLite database file in the temporary directory.
func (e *env) sqliteDB(ctx context.Context, label string, s sqlite.Synchronous) (*sql.DB, error) {
	return e.openSQLite(ctx, e.sqlitePath(label), s)
}

// openSQLite opens (creating if need be) and migrates the database file path, closed at the end.
func (e *env) openSQLite(ctx context.Context, path string, s sqlite.Synchronous) (*sql.DB, error) {
	db, err := sqlite.Open(ctx, path, sqlite.WithSynchronous(s))
	if err != nil {
		return nil, err
	}
	e.onClose(func() { db.Close() })
	if err := schema.Migrate(ctx, db, schema.SQLite); err != nil {
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return db, nil
}

// sqliteRecorder opens a fresh database and a process recorder on it.
func (e *env) sqliteRecorder(ctx context.Context, label string, s sqlite.Synchronous) (*sqlite.ProcessRecorder, *sql.DB, error) {
	db, err := e.sqliteDB(ctx, label, s)
	if err != nil {
		return nil, nil, err
	}
	r, err := e.sqliteRecorderOn(ctx, db, s)
	return r, db, err
}

func (e *env) sqliteRecorderOn(ctx context.Context, db *sql.DB, s sqlite.Synchronous, opts ...sqlite.Option) (*sqlite.ProcessRecorder, error) {
	r, err := sqlite.NewProcessRecorder(ctx, db, append([]sqlite.Option{sqlite.WithSynchronous(s)}, opts...)...)
	if err != nil {
		return nil, err
	}
	e.onCloseRecorder(func() { r.Close() })
	return r, nil
}

// pgSchema creates and migrates a fresh schema with a random name, dropped at close.
func (e *env) pgSchema(ctx context.Context) (string, error) {
	if e.pg == nil {
		return "", errors.New("PostgreSQL is not available")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "esbench_" + hex.EncodeToString(b[:])
	// Registered before it exists, so that a failed migration leaves nothing behind either.
	e.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// name is esbench_<hex>: a plain identifier, safe as SQL text. A busy server may time out a
		// connection; try again rather than leave the schema behind.
		var err error
		for attempt := range 3 {
			if _, err = e.pg.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err == nil {
				return
			}
			e.logf("cleanup: drop schema %s (attempt %d): %v", name, attempt+1, err)
			time.Sleep(time.Second)
		}
		e.logf("cleanup: schema %s is left behind; drop it by hand", name)
	})
	if err := schema.Migrate(ctx, e.pg, schema.Postgres, schema.WithSchema(name)); err != nil {
		return "", fmt.Errorf("migrate schema %s: %w", name, err)
	}
	return name, nil
}

// pgRecorder returns a process recorder with ordering o on a fresh schema.
func (e *env) pgRecorder(ctx context.Context, o postgres.Ordering) (*postgres.ProcessRecorder, string, error) {
	name, err := e.pgSchema(ctx)
	if err != nil {
		return nil, "", err
	}
	r, err := e.pgRecorderOn(ctx, name, o)
	return r, name, err
}

func (e *env) pgRecorderOn(ctx context.Context, schemaName string, o postgres.Ordering) (*postgres.ProcessRecorder, error) {
	r, err := postgres.NewProcessRecorder(ctx, e.pg, postgres.WithSchema(schemaName), postgres.WithOrdering(o))
	if err != nil {
		return nil, err
	}
	e.onCloseRecorder(func() { r.Close() })
	return r, nil
}

// machine describes where the report was made.
type machine struct {
	cpu, cores, memory, goVersion, os, postgres, sqlite, loadStart, loadEnd string
}

func describeMachine(ctx context.Context, e *env) machine {
	m := machine{
		cpu:       cpuModel(),
		cores:     strconv.Itoa(runtime.NumCPU()),
		memory:    memTotal(),
		goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		os:        strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		loadStart: loadAvg(),
	}
	if m.os != "" {
		m.os = "Linux " + m.os
	} else {
		m.os = runtime.GOOS
	}
	m.sqlite = sqliteVersion(ctx, e)
	if e.pg == nil {
		m.postgres = "not used: " + e.pgSkip
	} else {
		var v, sc, fs string
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := e.pg.QueryRowContext(qctx, "SHOW server_version").Scan(&v); err != nil {
			v = "unknown (" + err.Error() + ")"
		}
		_ = e.pg.QueryRowContext(qctx, "SHOW synchronous_commit").Scan(&sc)
		_ = e.pg.QueryRowContext(qctx, "SHOW fsync").Scan(&fs)
		m.postgres = fmt.Sprintf("%s (synchronous_commit=%s, fsync=%s), same machine, reached as %s", v, sc, fs, redactDSN(e.cfg.pgDSN))
	}
	return m
}

func sqliteVersion(ctx context.Context, e *env) string {
	db, err := sqlite.Open(ctx, sqlite.Memory)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, "select sqlite_version()").Scan(&v); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return v + " (github.com/ncruces/go-sqlite3, WAL mode, files in " + os.TempDir() + ")"
}

func readFile(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	return string(b)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	for line := range strings.Lines(readFile("/proc/meminfo")) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
					return fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	return "unknown"
}

func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// redactDSN drops a password from a DSN before it is printed.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if user, _, ok := strings.Cut(rest[:at], ":"); ok {
				return dsn[:i+3] + user + ":***" + rest[at:]
			}
		}
	}
	return dsn
}

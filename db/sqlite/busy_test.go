package sqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// A read that finds the database file busy (SQLITE_BUSY, as a pool connection without a busy timeout
// of its own reports it: modernc's by default, while another connection rebuilds the WAL index) is
// tried again within the recorder's busy timeout, rather than failing with "database is locked".
func TestReadRetriesABusyFile(t *testing.T) {
	var busy atomic.Int32
	db := openBusy(t, filepath.Join(t.TempDir(), "busy.db"), &busy)
	if err := schema.Migrate(t.Context(), db, schema.SQLite); err != nil {
		t.Fatal(err)
	}
	r := newProcessRecorder(t, db)
	if _, err := r.InsertEvents(t.Context(), events(uuid.New(), 1, 2)); err != nil {
		t.Fatal(err)
	}

	busy.Store(3)
	got, err := r.SelectNotifications(t.Context(), es.NotificationQuery{Limit: 10})
	if err != nil || len(got) != 2 {
		t.Fatalf("SelectNotifications after three busy answers: %d notifications, %v; want 2, no error", len(got), err)
	}
	if n := busy.Load(); n > 0 {
		t.Fatalf("%d busy answers left: the read did not go through the busy driver", n)
	}

	// Past the busy timeout the error is reported, naming the operation.
	r = newProcessRecorder(t, db, sqlite.WithBusyTimeout(0))
	busy.Store(1 << 20)
	if _, err := r.SelectNotifications(t.Context(), es.NotificationQuery{Limit: 10}); err == nil || !errors.Is(err, errBusy) {
		t.Fatalf("SelectNotifications on a file busy for good: %v, want the driver's error", err)
	}
}

var errBusy = errors.New("database is locked (261)")

// openBusy opens path through the ncruces driver, wrapped so that a query fails with SQLITE_BUSY's
// message while *busy is positive (each failure counts it down).
func openBusy(t *testing.T, path string, busy *atomic.Int32) *sql.DB {
	t.Helper()
	plain, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	c, err := plain.Driver().(driver.DriverContext).OpenConnector("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(busyConnector{c, busy})
	t.Cleanup(func() { db.Close() })
	return db
}

type busyConnector struct {
	driver.Connector
	busy *atomic.Int32
}

func (c busyConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return busyConn{conn, c.busy}, nil
}

type busyConn struct {
	driver.Conn
	busy *atomic.Int32
}

func (c busyConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return busyStmt{s, c.busy}, nil
}

func (c busyConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c busyConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c busyConn) CheckNamedValue(v *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(v)
}

type busyStmt struct {
	driver.Stmt
	busy *atomic.Int32
}

func (s busyStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.busy.Add(-1) >= 0 {
		return nil, errBusy
	}
	s.busy.Add(1)
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

func (s busyStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

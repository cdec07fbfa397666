package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	sqlite3driver "github.com/ncruces/go-sqlite3/driver"
	"github.com/ncruces/go-sqlite3/vfs/memdb"
)

// Memory is the name [Open] takes for a new in-memory database.
const Memory = ":memory:"

// Open opens the SQLite database name with the ncruces/go-sqlite3 driver (pure Go, no cgo), set up the
// way the recorders want every connection of the pool:
//
//   - name is a file path, a "file:" URI (passed to the driver as it is, with the settings below added),
//     or [Memory] for a new in-memory database. SQLite's own ":memory:" gives every connection a
//     database of its own, which a pool cannot use; Open's Memory is one database shared by every
//     connection of the returned pool (the driver's "memdb" VFS), freed when the *sql.DB is closed.
//   - a file database is switched to WAL mode, so that readers never block the writer nor the writer the
//     readers. WAL is a property of the file and stays on. In-memory databases have no WAL; their readers
//     and writer take turns, waiting on each other through the busy timeout.
//   - every connection gets the busy timeout ([WithBusyTimeout]) and the synchronous setting
//     ([WithSynchronous]), which SQLite keeps per connection.
//
// The database is not migrated: run schema.Migrate(ctx, db, schema.SQLite) before creating recorders.
// Open connects once, so that a path that cannot be opened fails here rather than at first use.
//
// The recorders take any *sql.DB: Open is a convenience, not a requirement.
func Open(ctx context.Context, name string, opts ...Option) (*sql.DB, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	dsn, memName, err := openDSN(name, cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", name, err)
	}
	if memName != "" {
		memdb.Create(memName, nil)
	}
	c, err := (&sqlite3driver.SQLite{}).OpenConnector(dsn)
	if err != nil {
		if memName != "" {
			memdb.Delete(memName)
		}
		return nil, fmt.Errorf("sqlite: open %q: %w", name, err)
	}
	oc := &connector{Connector: c, memName: memName, closed: make(chan struct{})}
	db := sql.OpenDB(oc)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", name, err)
	}
	return db, nil
}

// openDSN returns the driver's data source name for name, and the memdb name when name is Memory.
func openDSN(name string, cfg config) (dsn, memName string, err error) {
	q := url.Values{}
	// Order matters to the driver: the busy timeout first, so the journal mode switch can wait for a lock.
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)+")")
	if _, err := cfg.synchronous.pragma(); err != nil {
		return "", "", err
	}
	syncMode := strings.ToLower(cfg.synchronous.String())
	switch {
	case name == "":
		return "", "", fmt.Errorf("empty database name (use sqlite.Memory for an in-memory database)")
	case name == Memory:
		memName = "eventsourcing-" + rand.Text()
		q.Add("_pragma", "synchronous("+syncMode+")")
		q.Set("vfs", "memdb")
		// memdb shares a database among connections when its name starts with a slash.
		u := url.URL{Scheme: "file", OmitHost: true, Path: "/" + memName, RawQuery: q.Encode()}
		return u.String(), memName, nil
	case strings.HasPrefix(name, "file:"):
		u, err := url.Parse(name)
		if err != nil {
			return "", "", err
		}
		given := u.Query()
		if given.Get("vfs") != "memdb" && given.Get("mode") != "memory" {
			q.Add("_pragma", "journal_mode(wal)")
		}
		q.Add("_pragma", "synchronous("+syncMode+")")
		for k, vs := range given { // the caller's settings last: they win
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), "", nil
	default:
		q.Add("_pragma", "journal_mode(wal)")
		q.Add("_pragma", "synchronous("+syncMode+")")
		u := url.URL{Scheme: "file", OmitHost: true, Path: name, RawQuery: q.Encode()}
		return u.String(), "", nil
	}
}

// connector wraps the driver's connector to learn when the *sql.DB is closed: database/sql calls Close
// on a connector that has one. Recorders on a pool from Open then release their writer connection at
// once and report the closed database, instead of writing through a connection database/sql no longer
// hands out. The in-memory database is freed at the same time.
type connector struct {
	driver.Connector
	memName   string
	closed    chan struct{}
	closeOnce sync.Once
}

// Driver returns the driver wrapped so that db.Driver() leads back to this connector: that is how a
// recorder finds out that the *sql.DB it was given has been closed, without a registry of databases.
func (c *connector) Driver() driver.Driver { return openedDriver{c.Connector.Driver(), c} }

type openedDriver struct {
	driver.Driver
	c *connector
}

func (c *connector) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		if c.memName != "" {
			memdb.Delete(c.memName)
		}
	})
	if cl, ok := c.Connector.(interface{ Close() error }); ok {
		return cl.Close()
	}
	return nil
}

// closedSignal returns a channel closed when db, if it came from Open, is closed; nil otherwise.
func closedSignal(db *sql.DB) <-chan struct{} {
	if d, ok := db.Driver().(openedDriver); ok {
		return d.c.closed
	}
	return nil
}

// Package ncruces opens SQLite databases with the github.com/ncruces/go-sqlite3 driver (pure Go, no
// cgo), set up the way the recorders of package sqlite want every connection of the pool.
//
// It is a package of its own because importing the driver registers it with database/sql under the
// name "sqlite3", the name github.com/mattn/go-sqlite3 registers too: a program importing both panics
// when it starts. Package sqlite imports no driver, so programs that bring another driver's *sql.DB
// import only that driver; programs that want ncruces import this package.
package ncruces

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	sqlite3driver "github.com/ncruces/go-sqlite3/driver"
	"github.com/ncruces/go-sqlite3/vfs/memdb"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/closing"
)

// Memory is the name [Open] takes for a new in-memory database.
const Memory = ":memory:"

// Open opens the SQLite database name with the ncruces/go-sqlite3 driver, set up the way the
// recorders want every connection of the pool:
//
//   - name is a file path, a "file:" URI (passed to the driver as it is, with the settings below added),
//     or [Memory] for a new in-memory database. SQLite's own ":memory:" gives every connection a
//     database of its own, which a pool cannot use; Open's Memory is one database shared by every
//     connection of the returned pool (the driver's "memdb" VFS), freed when the *sql.DB is closed.
//   - a file database is switched to WAL mode, so that readers never block the writer nor the writer the
//     readers. WAL is a property of the file and stays on. In-memory databases have no WAL; their readers
//     and writer take turns, waiting on each other through the busy timeout.
//   - every connection runs sqlite.Pragmas(opts...): the busy timeout (sqlite.WithBusyTimeout) and the
//     synchronous setting (sqlite.WithSynchronous), which SQLite keeps per connection.
//
// The database is not migrated: run schema.Migrate(ctx, db, schema.SQLite) before creating recorders.
// Open connects once, so that a path that cannot be opened fails here rather than at first use. The
// recorders of a *sql.DB from Open learn when it is closed: their writes then fail with database/sql's
// "database is closed", like their reads.
//
// The recorders take any *sql.DB: Open is a convenience, not a requirement.
func Open(ctx context.Context, name string, opts ...sqlite.Option) (*sql.DB, error) {
	pragmas, err := sqlite.Pragmas(opts...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	dsn, memName, err := openDSN(name, pragmas)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", name, err)
	}
	var onClose func()
	if memName != "" {
		memdb.Create(memName, nil)
		onClose = func() { memdb.Delete(memName) }
	}
	c, err := (&sqlite3driver.SQLite{}).OpenConnector(dsn)
	if err != nil {
		if onClose != nil {
			onClose()
		}
		return nil, fmt.Errorf("sqlite: open %q: %w", name, err)
	}
	db := sql.OpenDB(closing.Wrap(c, onClose))
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", name, err)
	}
	return db, nil
}

// openDSN returns the driver's data source name for name, and the memdb name when name is Memory.
func openDSN(name string, pragmas []string) (dsn, memName string, err error) {
	q := url.Values{}
	// Order matters to the driver: the busy timeout first (Pragmas puts it first), so the journal mode
	// switch can wait for a lock. The driver runs "PRAGMA " + each _pragma value.
	for _, p := range pragmas {
		q.Add("_pragma", strings.TrimPrefix(p, "PRAGMA "))
	}
	switch {
	case name == "":
		return "", "", fmt.Errorf("empty database name (use ncruces.Memory for an in-memory database)")
	case name == Memory:
		memName = "eventsourcing-" + rand.Text()
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
		for k, vs := range given { // the caller's settings last: they win
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), "", nil
	default:
		q.Add("_pragma", "journal_mode(wal)")
		u := url.URL{Scheme: "file", OmitHost: true, Path: name, RawQuery: q.Encode()}
		return u.String(), "", nil
	}
}

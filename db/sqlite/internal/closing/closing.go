// Package closing lets a *sql.DB tell the SQLite recorders that it has been closed. A recorder writes
// through a connection it keeps, which database/sql does not close while it is in use; on a *sql.DB
// opened on a Connector, the recorder learns of the Close at once and refuses to write, as every other
// use of the closed *sql.DB does.
package closing

import (
	"database/sql"
	"database/sql/driver"
	"sync"
)

// Connector wraps a driver's connector for sql.OpenDB: database/sql calls its Close when the *sql.DB
// is closed, and the *sql.DB's Driver leads back to it, which is how Signal finds it without a registry
// of databases.
type Connector struct {
	driver.Connector
	onClose func()
	closed  chan struct{}
	once    sync.Once
}

// Wrap returns c wrapped; onClose, when not nil, runs once when the *sql.DB is closed.
func Wrap(c driver.Connector, onClose func()) *Connector {
	return &Connector{Connector: c, onClose: onClose, closed: make(chan struct{})}
}

// Driver returns the driver of the wrapped connector, wrapped so that it leads back to c.
func (c *Connector) Driver() driver.Driver { return openedDriver{c.Connector.Driver(), c} }

type openedDriver struct {
	driver.Driver
	c *Connector
}

// Close signals the close, runs onClose and closes the wrapped connector if it can be closed.
func (c *Connector) Close() error {
	c.once.Do(func() {
		close(c.closed)
		if c.onClose != nil {
			c.onClose()
		}
	})
	if cl, ok := c.Connector.(interface{ Close() error }); ok {
		return cl.Close()
	}
	return nil
}

// Signal returns a channel that is closed when db is, if db was opened on a Connector; nil (a channel
// that is never ready) for any other *sql.DB.
func Signal(db *sql.DB) <-chan struct{} {
	if d, ok := db.Driver().(openedDriver); ok {
		return d.c.closed
	}
	return nil
}

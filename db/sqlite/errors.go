package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/eventsourcing-go/eventsourcing/schema"
)

// Errors are classified by SQLite's own messages, which every driver passes on in its error's text
// (ncruces, mattn and modernc are tested): the package imports no driver, so it cannot use their error
// types, and SQLite keeps the texts stable.

// opError names the operation and wraps the cause; a missing table or column also wraps
// schema.ErrNotMigrated and says what to do, since "no such table" alone does not.
func opError(op string, err error) error {
	if isNotMigrated(err) {
		return fmt.Errorf("sqlite: %s: %w (run schema.Migrate(ctx, db, schema.SQLite)): %w", op, schema.ErrNotMigrated, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") ||
		strings.Contains(msg, "PRIMARY KEY constraint failed")
}

// isNotMigrated reports whether err says a table or a column is missing: the database has not been
// migrated, or not to the latest version. SQLite has no error code for it (it is SQLITE_ERROR, like a
// syntax error), so the message decides, for every driver.
func isNotMigrated(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "no such column"))
}

// isReadOnly reports whether err is SQLITE_READONLY: a write to a database opened read-only (or whose
// file the process cannot write).
func isReadOnly(err error) bool {
	return err != nil && strings.Contains(err.Error(), "attempt to write a readonly database")
}

// isLocked reports whether err is SQLITE_LOCKED: a table or schema lock of SQLite's shared-cache mode
// (an in-memory database opened as "file:name?mode=memory&cache=shared", or any database with
// cache=shared), held by another connection of the same cache. Unlike a lock of the database file
// (SQLITE_BUSY, "database is locked"), the busy timeout does not wait for it: the recorders retry.
func isLocked(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "database table is locked") || strings.Contains(msg, "database schema is locked")
}

// lockedRetry paces the retries of work that a shared-cache lock (isLocked) got in the way of, as
// SQLite's busy handler paces its own: short pauses first, then longer ones. The zero value starts.
type lockedRetry struct {
	start time.Time
	n     int
}

// pause waits before the next attempt and reports true, or reports false when timeout has passed
// since the first pause or ctx has ended.
func (l *lockedRetry) pause(ctx context.Context, timeout time.Duration) bool {
	if l.n == 0 {
		l.start = time.Now()
	}
	d := min(time.Duration(1<<min(l.n, 6))*time.Millisecond, 50*time.Millisecond) // 1, 2, 4 … 50 ms
	l.n++
	if time.Since(l.start)+d > timeout {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// isBusy reports whether err is SQLITE_BUSY ("database is locked"), with any extended code. A read
// meets it on a connection without a busy timeout of its own: the recorder sets one on its writer's
// connection, but the pool's connections are the driver's, opened with whatever the DSN says (modernc's
// wait for nothing by default). In WAL mode a reader is held up only for a moment (another connection
// rebuilding the WAL index, SQLITE_BUSY_RECOVERY, say, as several connections open a new file at once),
// so a read that meets it is tried again.
func isBusy(err error) bool {
	return err != nil && strings.Contains(err.Error(), "database is locked")
}

// whileLocked calls read until it fails otherwise than on a shared-cache lock (isLocked) or a busy
// database file (isBusy), for up to timeout: reads can be repeated at will.
func whileLocked[T any](ctx context.Context, timeout time.Duration, read func() (T, error)) (T, error) {
	var l lockedRetry
	for {
		v, err := read()
		if !(isLocked(err) || isBusy(err)) || !l.pause(ctx, timeout) {
			return v, err
		}
	}
}

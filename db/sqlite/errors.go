package sqlite

import (
	"fmt"
	"strings"

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

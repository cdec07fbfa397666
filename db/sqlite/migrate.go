package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/eventsourcing-go/eventsourcing/schema"
)

// Migrate brings db up to date for the recorders: schema.Migrate with schema.SQLite. It takes the
// recorders' options, as postgres.Migrate does, so that code for either dialect reads alike; they are
// checked and otherwise ignored (a SQLite database has no schemas).
func Migrate(ctx context.Context, db *sql.DB, opts ...Option) error {
	if _, err := newConfig(opts); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return schema.Migrate(ctx, db, schema.SQLite)
}

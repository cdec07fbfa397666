package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/eventsourcing-go/eventsourcing/schema"
)

// Migrate brings the schema named by WithSchema (without it, the connection's search_path) up to date
// for the recorders: schema.Migrate with schema.Postgres, the same schema and the logger of WithLogger.
// It takes the recorders' options, so that one list names the schema for the migration and the
// recorders alike; the options that concern only recorders are checked and otherwise ignored.
func Migrate(ctx context.Context, db *sql.DB, opts ...Option) error {
	cfg, err := newConfig(opts)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	mopts := []schema.Option{schema.WithLogger(cfg.logger)}
	if cfg.schemaSet {
		mopts = append(mopts, schema.WithSchema(cfg.schema))
	}
	return schema.Migrate(ctx, db, schema.Postgres, mopts...)
}

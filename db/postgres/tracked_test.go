package postgres_test

import (
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/projection/projectiontest"
)

var _ projection.SQLTracker = (*postgres.ProcessRecorder)(nil)

// searchPathDB opens the test database with the schema as its search_path, so that a projection's
// unqualified tables land in the test's schema (and are dropped with it).
func searchPathDB(t *testing.T, name string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = name
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestProcessTracked(t *testing.T) {
	for _, o := range orderings {
		t.Run(o.String(), func(t *testing.T) {
			projectiontest.TestSQLTracker(t, func(t *testing.T) projection.SQLTracker {
				_, name := pgtest.Schema(t)
				return mustProcess(t, searchPathDB(t, name), name, postgres.WithOrdering(o))
			})
		})
	}
}

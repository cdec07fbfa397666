package postgres_test

import (
	"testing"

	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/projection/projectiontest"
)

var _ projection.SQLTracker = (*postgres.ProcessRecorder)(nil)

func TestProcessTracked(t *testing.T) {
	for _, o := range orderings {
		t.Run(o.String(), func(t *testing.T) {
			projectiontest.TestSQLTracker(t, func(t *testing.T) projection.SQLTracker {
				_, name := pgtest.Schema(t)
				return mustProcess(t, pgtest.InSchema(t, name), name, postgres.WithOrdering(o))
			})
		})
	}
}

package postgres_test

import (
	"testing"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/recordertest"
)

func TestProcessRecorderConformance(t *testing.T) {
	for _, o := range orderings {
		t.Run(o.String(), func(t *testing.T) {
			recordertest.TestProcessRecorder(t, func(t *testing.T) es.ProcessRecorder {
				return newProcess(t, postgres.WithOrdering(o))
			})
		})
	}
}

func TestSnapshotRecorderConformance(t *testing.T) {
	recordertest.TestAggregateRecorder(t, func(t *testing.T) es.AggregateRecorder {
		db, name := pgtest.Schema(t)
		return mustSnapshots(t, db, postgres.WithSchema(name))
	})
}

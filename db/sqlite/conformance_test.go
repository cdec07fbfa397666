package sqlite_test

import (
	"testing"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/projection"
	"github.com/eventsourcing-go/eventsourcing/projection/projectiontest"
	"github.com/eventsourcing-go/eventsourcing/recordertest"
)

// The conformance suite, unchanged, on a database file and on an in-memory database.

func TestProcessRecorderConformance(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		recordertest.TestProcessRecorder(t, func(t *testing.T) es.ProcessRecorder {
			return newProcessRecorder(t, open(t))
		})
	})
}

func TestSnapshotRecorderConformance(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		recordertest.TestAggregateRecorder(t, func(t *testing.T) es.AggregateRecorder {
			return newSnapshotRecorder(t, open(t))
		})
	})
}

// The SQL tracker suite: ProcessTracked as a projection's tracking store.

var _ projection.SQLTracker = (*sqlite.ProcessRecorder)(nil)

func TestProcessTracked(t *testing.T) {
	projectiontest.TestSQLTracker(t, func(t *testing.T) projection.SQLTracker {
		return newProcessRecorder(t, openFile(t))
	})
}

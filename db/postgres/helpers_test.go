package postgres_test

import (
	"database/sql"
	"sync"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
)

var orderings = []postgres.Ordering{postgres.OrderingXID, postgres.OrderingTableLock}

func pgtestSchema(t testing.TB) (*sql.DB, string) { return pgtest.Schema(t) }

type recorderEnv struct {
	db     *sql.DB
	schema string
}

var envs sync.Map // *postgres.ProcessRecorder → recorderEnv

// newProcess returns a process recorder on a fresh schema, closed when the test ends.
func newProcess(t testing.TB, opts ...postgres.Option) *postgres.ProcessRecorder {
	t.Helper()
	db, name := pgtest.Schema(t)
	r := mustProcess(t, db, name, opts...)
	envs.Store(r, recorderEnv{db, name})
	return r
}

// dbOf returns the database and schema of a recorder made by newProcess.
func dbOf(t testing.TB, r *postgres.ProcessRecorder) (*sql.DB, string) {
	t.Helper()
	e, ok := envs.Load(r)
	if !ok {
		t.Fatal("dbOf: recorder not made by newProcess")
	}
	return e.(recorderEnv).db, e.(recorderEnv).schema
}

// mustProcess returns a process recorder in schema name of db, closed when the test ends.
func mustProcess(t testing.TB, db *sql.DB, name string, opts ...postgres.Option) *postgres.ProcessRecorder {
	t.Helper()
	return processOn(t, db, append([]postgres.Option{postgres.WithSchema(name)}, opts...)...)
}

// processOn returns a process recorder on db, closed when the test ends.
func processOn(t testing.TB, db *sql.DB, opts ...postgres.Option) *postgres.ProcessRecorder {
	t.Helper()
	r, err := postgres.NewProcessRecorder(t.Context(), db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// mustSnapshots returns a snapshot recorder on db.
func mustSnapshots(t testing.TB, db *sql.DB, opts ...postgres.Option) *postgres.SnapshotRecorder {
	t.Helper()
	r, err := postgres.NewSnapshotRecorder(t.Context(), db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func oneEvent(id uuid.UUID, v int64) []es.StoredEvent {
	return []es.StoredEvent{{OriginatorID: id, OriginatorVersion: v, Topic: "bench", State: payload}}
}

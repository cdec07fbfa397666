// The suites through lib/pq, and what lib/pq does differently from pgx: its errors and its arrays.
package pq_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	_ "github.com/lib/pq"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/drivertest"
)

func TestSuites(t *testing.T) { drivertest.Postgres(t, "postgres") }

// BenchmarkWakeUp: lib/pq has no LISTEN through database/sql, so other recorders' appends are found by
// polling (postgres.DefaultPollInterval).
func BenchmarkWakeUp(b *testing.B) {
	drivertest.WakeUp(b, drivertest.PostgresDatabase(b, "postgres"))
}

// A conflict says which key clashed, as it does through pgx.
func TestConflictDetail(t *testing.T) {
	r := drivertest.PostgresDatabase(t, "postgres").Process(t)
	e := []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t", State: []byte("x")}}
	if _, err := r.InsertEvents(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	_, err := r.InsertEvents(t.Context(), e)
	if !errors.Is(err, es.ErrConflict) {
		t.Fatalf("second insert: %v, want an error wrapping ErrConflict", err)
	}
	if want := "Key (originator_id, originator_version)=(" + e[0].OriginatorID.String() + ", 1) already exists"; !strings.Contains(err.Error(), want) {
		t.Fatalf("conflict %q does not say %q", err, want)
	}
}

// records collects the messages a logger receives.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// A query error that is not a broken connection ends a subscription at once, as through pgx: it is not
// retried as if the connection had broken.
func TestSubscribeQueryError(t *testing.T) {
	logs := &records{}
	d := drivertest.PostgresDatabase(t, "postgres", postgres.WithLogger(slog.New(logs)))
	r := d.Process(t)
	if _, err := r.InsertEvents(t.Context(), []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); err != nil {
		t.Fatal(err)
	}
	// The subscription's reads now fail with undefined_table (42P01).
	if _, err := d.DB.ExecContext(t.Context(), "ALTER TABLE events RENAME TO events_gone"); err != nil {
		t.Fatal(err)
	}
	var err error
	for _, err = range r.Subscribe(t.Context(), 0) {
		if err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "42P01") {
		t.Fatalf("subscription ended with %v, want the undefined table (42P01)", err)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, m := range logs.msgs {
		if strings.Contains(m, "retrying") {
			t.Errorf("a query error was retried as a broken connection: %s", m)
		}
	}
}

func BenchmarkAppend(b *testing.B) { drivertest.Append(b, drivertest.PostgresDatabase(b, "postgres")) }

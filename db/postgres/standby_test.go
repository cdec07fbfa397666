package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// Readers on a hot standby, on a primary and a streaming standby made for the test: while eight writers
// append on the primary (half of them through events_append in transactions they hold open for a while,
// a quarter of those rolled back), a recorder made WithReadOnly on the standby tails the log and a
// subscription follows it. Neither may skip or repeat an ID: these are the torture test's rounds, with
// the readers on the standby. A recorder that writes cannot be opened there, and says what to do; the
// read-only one refuses writes, and its subscriptions poll without complaint (a standby has no LISTEN).
func TestStandbyReaders(t *testing.T) {
	primaryServer := pgtest.NewCluster(t)
	standbyServer := primaryServer.Standby()
	primary := pgtest.OpenDSN(t, primaryServer.DSN())
	standby := pgtest.OpenDSN(t, standbyServer.DSN())
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for _, o := range orderings {
		t.Run(o.String(), func(t *testing.T) {
			name := pgtest.EmptySchema(t, primary)
			if err := schema.Migrate(t.Context(), primary, schema.Postgres, schema.WithSchema(name)); err != nil {
				t.Fatal(err)
			}
			w := mustProcess(t, primary, name, postgres.WithOrdering(o))
			standbyServer.WaitReplayed(primaryServer)

			_, err := postgres.NewProcessRecorder(t.Context(), standby, postgres.WithSchema(name))
			requireErr(t, err, "accepts no writes", "WithReadOnly")
			var warnings warningLog
			r := mustProcess(t, standby, name, postgres.WithReadOnly(), postgres.WithLogger(slog.New(&warnings)))
			if r.Ordering() != o {
				t.Fatalf("the read-only recorder reads with ordering %v, the schema records %v", r.Ordering(), o)
			}

			writers := []tortureWriter{delayedAppend(primary, name, o), viaRecorder(w, 0)}
			cursor, round, problems := tortureRounds(t, rounds, r, writers)
			if len(problems) > 0 {
				t.Fatalf("round %d on the standby:\n%s", round, strings.Join(problems, "\n"))
			}

			// An event whose state is empty is final like any other (the fast read marks rows that are
			// held back with a NULL state).
			ids, err := w.InsertEvents(t.Context(), []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "empty"}})
			if err != nil {
				t.Fatal(err)
			}
			standbyServer.WaitReplayed(primaryServer)
			if got := readIDs(t, r, cursor); !slices.Equal(got, ids) {
				t.Fatalf("on the standby after an event with an empty state: %v, want %v", got, ids)
			}

			if _, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1)); !errors.Is(err, postgres.ErrReadOnly) {
				t.Errorf("InsertEvents on the read-only recorder: %v, want ErrReadOnly", err)
			}
			if msgs := warnings.messages(); len(msgs) > 0 {
				t.Errorf("the read-only recorder on the standby warned: %q", msgs)
			}
		})
	}
}

// warningLog is a slog.Handler that keeps the messages of warnings and errors.
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w *warningLog) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}

func (w *warningLog) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warningLog) WithGroup(string) slog.Handler      { return w }

func (w *warningLog) messages() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

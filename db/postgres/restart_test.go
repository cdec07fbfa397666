package postgres_test

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// retries counts the records of a subscription retrying a broken connection, and those whose error is
// the server's "not accepting connections yet" (57P03).
type retries struct {
	mu           sync.Mutex
	all, in57P03 int
}

func (r *retries) Enabled(context.Context, slog.Level) bool { return true }
func (r *retries) Handle(_ context.Context, rec slog.Record) error {
	if !strings.Contains(rec.Message, "retrying") {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all++
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" && strings.Contains(a.Value.String(), "57P03") {
			r.in57P03++
		}
		return true
	})
	return nil
}
func (r *retries) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *retries) WithGroup(string) slog.Handler      { return r }

func (r *retries) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all, r.in57P03
}

// A subscription outlasts a crash of the server and a recovery that keeps refusing connections
// (57P03) for longer than a few retries: it delivers what is appended after the server is back,
// without an error. The server is the test's own (pgtest.NewCluster), crashed with an immediate
// shutdown and held in recovery until the subscription has retried many times.
func TestSubscriptionOutlastsCrashRecovery(t *testing.T) {
	c := pgtest.NewCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	db, err := sql.Open("pgx", c.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := schema.Migrate(ctx, db, schema.Postgres, schema.WithSchema("app")); err != nil {
		t.Fatal(err)
	}
	logs := &retries{}
	r, err := postgres.NewProcessRecorder(ctx, db, postgres.WithSchema("app"), postgres.WithLogger(slog.New(logs)),
		postgres.WithReconnectTimeout(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	insert := func(v int64) int64 {
		t.Helper()
		// The pool's connections died with the server: an append may find one of them first.
		var err error
		for range 5 {
			var ids []int64
			if ids, err = r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); err == nil {
				return ids[0]
			}
		}
		t.Fatalf("insert %d: %v", v, err)
		return 0
	}

	type delivery struct {
		id  int64
		err error
	}
	deliveries := make(chan delivery, 16)
	go func() {
		defer close(deliveries)
		for n, err := range r.Subscribe(ctx, 0) {
			deliveries <- delivery{n.ID, err}
			if err != nil {
				return
			}
		}
	}()
	next := func(want int64) {
		t.Helper()
		select {
		case d, ok := <-deliveries:
			if !ok || d.err != nil || d.id != want {
				t.Fatalf("delivery %+v (open %v), want notification %d", d, ok, want)
			}
		case <-ctx.Done():
			t.Fatalf("notification %d not delivered: %v", want, ctx.Err())
		}
	}
	next(insert(1))

	c.Stop("immediate")
	c.StartInRecovery()
	// The subscription polls, finds the server gone and then recovering; it must keep retrying. Wait
	// until it has retried well past the five attempts it used to give up after, several of them
	// answered 57P03.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for all, in57P03 := logs.counts(); all < 10 || in57P03 < 3; all, in57P03 = logs.counts() {
		select {
		case d := <-deliveries:
			t.Fatalf("the subscription gave up while the server recovered: %+v", d)
		case <-ctx.Done():
			t.Fatalf("%d retries logged (%d answered 57P03): %v", all, in57P03, ctx.Err())
		case <-tick.C:
		}
	}
	c.Promote()
	next(insert(2))
}

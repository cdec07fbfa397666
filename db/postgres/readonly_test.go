package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/internal/pgtest"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// A recorder made WithReadOnly writes nothing, not even when it is made: it opens where nothing can be
// written (here, sessions whose transactions are read-only, as on a standby, where a recorder that
// writes is refused with a message that says what to do); it reads what a writer recorded; its writing
// methods fail with ErrReadOnly and change nothing.
func TestReadOnly(t *testing.T) {
	db, name := pgtest.Schema(t)
	cfg, err := pgx.ParseConfig(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	readOnly := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { readOnly.Close() })

	_, err = postgres.NewProcessRecorder(t.Context(), readOnly, postgres.WithSchema(name))
	requireErr(t, err, "accepts no writes", "WithReadOnly")
	r := mustProcess(t, readOnly, name, postgres.WithReadOnly())
	if got := r.Ordering(); got != postgres.OrderingXID {
		t.Errorf("with no ordering recorded, the read-only recorder reads with %v, want xid", got)
	}

	w := mustProcess(t, db, name, postgres.WithOrdering(postgres.OrderingTableLock))
	id := uuid.New()
	ids, err := w.InsertEvents(t.Context(), []es.StoredEvent{
		{OriginatorID: id, OriginatorVersion: 1, Topic: "a", State: []byte("1")},
		{OriginatorID: id, OriginatorVersion: 2, Topic: "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first recorder, opened before the writer recorded its ordering, reads its events all the same.
	if got := readIDs(t, r, 0); !slices.Equal(got, ids) {
		t.Errorf("read-only recorder (xid readers) reads %v, want %v", got, ids)
	}
	r = mustProcess(t, readOnly, name, postgres.WithReadOnly())
	if got := r.Ordering(); got != postgres.OrderingTableLock {
		t.Errorf("the read-only recorder reads with %v, the schema records table_lock", got)
	}
	_, err = postgres.NewProcessRecorder(t.Context(), readOnly, postgres.WithSchema(name), postgres.WithReadOnly(),
		postgres.WithOrdering(postgres.OrderingXID))
	if !errors.Is(err, postgres.ErrOrderingMismatch) {
		t.Errorf("read-only recorder asking for another ordering than the recorded one: %v, want ErrOrderingMismatch", err)
	}

	if got := readIDs(t, r, 0); !slices.Equal(got, ids) {
		t.Errorf("SelectNotifications = %v, want %v", got, ids)
	}
	if got, err := r.SelectEvents(t.Context(), id, es.EventQuery{}); err != nil || len(got) != 2 {
		t.Errorf("SelectEvents = %v, %v; want the 2 events", got, err)
	}
	if got := maxID(t, r); got != ids[1] {
		t.Errorf("MaxNotificationID = %d, want %d", got, ids[1])
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var followed []int64
	for n, err := range r.Subscribe(ctx, 0, "b") {
		if err != nil {
			t.Fatal(err)
		}
		followed = append(followed, n.ID)
		cancel()
	}
	if !slices.Equal(followed, ids[1:]) {
		t.Errorf("Subscribe(topic b) yielded %v, want %v", followed, ids[1:])
	}

	tracking := es.Tracking{Consumer: "c", Upstream: "u", NotificationID: 1}
	writes := map[string]func() error{
		"InsertEvents": func() error {
			_, err := r.InsertEvents(t.Context(), oneEvent(uuid.New(), 1))
			return err
		},
		"InsertEvents batch": func() error {
			_, err := r.InsertEvents(t.Context(), []es.StoredEvent{oneEvent(id, 3)[0], oneEvent(id, 4)[0]})
			return err
		},
		"InsertEvents tracking": func() error {
			_, err := r.InsertEvents(t.Context(), nil, es.WithTracking(tracking))
			return err
		},
		"InsertTracking": func() error { return r.InsertTracking(t.Context(), tracking) },
		"ProcessTracked": func() error {
			return r.ProcessTracked(t.Context(), tracking, func(context.Context, projection.SQLTx) error {
				t.Error("ProcessTracked ran its function on a read-only recorder")
				return nil
			})
		},
		"DeleteTracking": func() error { return r.DeleteTracking(t.Context(), "c", "u") },
	}
	for what, write := range writes {
		if err := write(); !errors.Is(err, postgres.ErrReadOnly) {
			t.Errorf("%s on a read-only recorder: %v, want ErrReadOnly", what, err)
		}
	}
	if got := readIDs(t, w, 0); !slices.Equal(got, ids) {
		t.Errorf("after the refused writes the log is %v, want %v", got, ids)
	}
	if marks, err := w.TrackingMarks(t.Context()); err != nil || len(marks) != 0 {
		t.Errorf("after the refused writes the tracking marks are %v, %v; want none", marks, err)
	}
}

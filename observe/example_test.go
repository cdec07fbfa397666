package observe_test

import (
	"context"
	"fmt"
	"log"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/observe"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

// appendLog is a RecorderTracer that prints each append and read as it ends. A tracer that makes
// spans would start one in each Start method and return the context holding it.
type appendLog struct{}

func (appendLog) AppendStart(ctx context.Context, _ observe.Append) context.Context { return ctx }

func (appendLog) AppendEnd(_ context.Context, a observe.Append) {
	fmt.Printf("append: %d events (%d bytes), notifications %d–%d, error %v\n",
		a.Events, a.Bytes, a.FirstNotificationID, a.LastNotificationID, a.Err)
}

func (appendLog) SelectStart(ctx context.Context, _ observe.Select) context.Context { return ctx }

func (appendLog) SelectEnd(_ context.Context, s observe.Select) {
	fmt.Printf("select: %d events, notifications %d–%d\n", s.Events, s.FirstNotificationID, s.LastNotificationID)
}

func (appendLog) GroupCommit(context.Context, observe.GroupCommit) {}

// A tracer is given to a constructor's WithTracer option; it is told about every operation, with
// counts, sizes and identifiers, never event data.
func Example() {
	ctx := context.Background()
	db, err := ncruces.Open(ctx, ncruces.Memory)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := schema.Migrate(ctx, db, schema.SQLite); err != nil {
		log.Fatal(err)
	}
	r, err := sqlite.NewProcessRecorder(ctx, db, sqlite.WithTracer(appendLog{}))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	id := uuid.MustParse("8a4e0b5e-4a35-4d3c-9d6e-2f1b7c0a9e11")
	if _, err := r.InsertEvents(ctx, []es.StoredEvent{
		{OriginatorID: id, OriginatorVersion: 1, Topic: "AccountOpened", State: []byte(`{"owner":"Ada"}`)},
		{OriginatorID: id, OriginatorVersion: 2, Topic: "AmountDeposited", State: []byte(`{"amount":100}`)},
	}); err != nil {
		log.Fatal(err)
	}
	if _, err := r.SelectNotifications(ctx, es.NotificationQuery{Limit: 10}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// append: 2 events (29 bytes), notifications 1–2, error <nil>
	// select: 2 events, notifications 1–2
}

package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces"
	"github.com/eventsourcing-go/eventsourcing/schema"
)

func ExampleNewProcessRecorder() {
	ctx := context.Background()

	// A file path works the same way; ncruces.Memory is a database shared by the pool's connections.
	db, err := ncruces.Open(ctx, ncruces.Memory)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := schema.Migrate(ctx, db, schema.SQLite); err != nil {
		log.Fatal(err)
	}

	r, err := sqlite.NewProcessRecorder(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close() // before db.Close, which the deferred calls run after

	account := uuid.MustParse("8a4e0b5e-4a35-4d3c-9d6e-2f1b7c0a9e11")
	ids, err := r.InsertEvents(ctx, []es.StoredEvent{
		{OriginatorID: account, OriginatorVersion: 1, Topic: "AccountOpened", State: []byte(`{"owner":"Ada"}`)},
		{OriginatorID: account, OriginatorVersion: 2, Topic: "AmountDeposited", State: []byte(`{"amount":100}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("notification IDs:", ids)

	// Version 2 is recorded already: a concurrent modification.
	_, err = r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: account, OriginatorVersion: 2, Topic: "AmountWithdrawn"}})
	fmt.Println("conflict:", errors.Is(err, es.ErrConflict))

	events, err := r.SelectEvents(ctx, account, es.EventQuery{})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Printf("version %d: %s %s\n", e.OriginatorVersion, e.Topic, e.State)
	}

	page, err := r.SelectNotifications(ctx, es.NotificationQuery{After: 1, Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range page {
		fmt.Printf("notification %d: %s\n", n.ID, n.Topic)
	}
	// Output:
	// notification IDs: [1 2]
	// conflict: true
	// version 1: AccountOpened {"owner":"Ada"}
	// version 2: AmountDeposited {"amount":100}
	// notification 2: AmountDeposited
}

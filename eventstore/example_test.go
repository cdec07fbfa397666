package eventstore_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
)

// An event stream that is not an aggregate: a log of the IDs of the accounts opened, one event each.
func ExampleEventStore() {
	type AccountListed struct{ Account uuid.UUID }
	ctx := context.Background()
	reg := mapper.NewRegistry()
	mapper.Register[AccountListed](reg, "example.AccountListed")
	m, err := mapper.New(reg)
	if err != nil {
		panic(err)
	}
	store := eventstore.New(m, memory.NewProcessRecorder())

	log := aggregate.NameID(uuid.NameSpaceOID, "accounts-log")
	for v := int64(1); v <= 3; v++ {
		e := aggregate.Event{OriginatorID: log, OriginatorVersion: v, Data: AccountListed{Account: uuid.New()}}
		if _, err := store.Put(ctx, []aggregate.Event{e}); err != nil {
			panic(err)
		}
	}
	latest, err := store.Get(ctx, log, es.EventQuery{Desc: true, Limit: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println("entries:", latest[0].OriginatorVersion)
	// Output: entries: 3
}

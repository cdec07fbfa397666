package memory_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/memory"
)

func Example() {
	ctx := context.Background()
	r := memory.NewProcessRecorder()
	account := uuid.MustParse("0d4c3b7a-2f5e-4c1b-9a8d-7e6f5a4b3c2d")

	ids, err := r.InsertEvents(ctx, []es.StoredEvent{
		{OriginatorID: account, OriginatorVersion: 1, Topic: "Account.Opened", State: []byte(`{"owner":"Ada"}`)},
		{OriginatorID: account, OriginatorVersion: 2, Topic: "Account.Credited", State: []byte(`{"amount":100}`)},
	})
	fmt.Println("notification IDs:", ids, err)

	// Recording version 2 again is a concurrent modification.
	_, err = r.InsertEvents(ctx, []es.StoredEvent{{OriginatorID: account, OriginatorVersion: 2, Topic: "Account.Debited"}})
	fmt.Println(err)

	events, _ := r.SelectEvents(ctx, account, es.EventQuery{Desc: true, Limit: 1})
	fmt.Printf("latest: v%d %s %s\n", events[0].OriginatorVersion, events[0].Topic, events[0].State)

	// Follow the notification log: the history, then live until ctx ends.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for n, err := range r.Subscribe(ctx, 0) {
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("notification %d: %s\n", n.ID, n.Topic)
		if n.ID == 2 {
			break
		}
	}
	// Output:
	// notification IDs: [1 2] <nil>
	// memory: insert events: originator 0d4c3b7a-2f5e-4c1b-9a8d-7e6f5a4b3c2d version 2: eventsourcing: conflict
	// latest: v2 Account.Credited {"amount":100}
	// notification 1: Account.Opened
	// notification 2: Account.Credited
}

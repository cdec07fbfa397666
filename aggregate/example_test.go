package aggregate_test

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
)

// A command method checks its rule, then triggers an event; Apply derives the state, for new events
// and for replayed ones alike.
func ExampleTrigger() {
	acc := &Account{}
	aggregate.Trigger(acc, Opened{Owner: "ada"})
	if err := acc.Deposit(30); err != nil {
		panic(err)
	}
	for _, e := range acc.Pending() {
		fmt.Printf("v%d %T\n", e.OriginatorVersion, e.Data)
	}

	replayed := &Account{}
	if err := aggregate.Replay(replayed, acc.Collect()...); err != nil {
		panic(err)
	}
	fmt.Println(replayed.Owner, replayed.Balance, replayed.Version)
	// Output:
	// v1 aggregate_test.Opened
	// v2 aggregate_test.Deposited
	// ada 30 2
}

// An aggregate found by a natural key gets a name-based ID, the same every time.
func ExampleNameID() {
	users := uuid.MustParse("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
	first, again := aggregate.NameID(users, "ada@example.com"), aggregate.NameID(users, "ada@example.com")
	fmt.Println(first == again, first.Version())
	// Output: true VERSION_5
}

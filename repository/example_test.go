package repository_test

import (
	"context"
	"errors"
	"fmt"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// Save a new aggregate, load it, change it, and see a concurrent change fail with ErrConflict.
func ExampleRepository() {
	ctx := context.Background()
	reg := mapper.NewRegistry()
	mapper.Register[Started](reg, "example.Started")
	mapper.Register[Incremented](reg, "example.Incremented")
	mapper.Register[Counter](reg, "example.Counter") // names the type of the streams the repository starts
	m, err := mapper.New(reg)
	if err != nil {
		panic(err)
	}
	counters, err := repository.New[Counter](eventstore.New(m, memory.NewProcessRecorder()))
	if err != nil {
		panic(err)
	}

	c := &Counter{}
	aggregate.Trigger(c, Started{Name: "visits"})
	c.Inc(2)
	if _, err := counters.Save(ctx, c); err != nil {
		panic(err)
	}

	a, _ := counters.Get(ctx, c.ID)
	b, _ := counters.Get(ctx, c.ID)
	a.Inc(1)
	b.Inc(5)
	_, err = counters.Save(ctx, a)
	fmt.Println("first save:", err)
	_, err = counters.Save(ctx, b)
	fmt.Println("second save conflicts:", errors.Is(err, es.ErrConflict))

	latest, _ := counters.Get(ctx, c.ID)
	fmt.Println(latest.Name, latest.Count, "at version", latest.Version)
	// Output:
	// first save: <nil>
	// second save conflicts: true
	// visits 3 at version 3
}

// Snapshots every 100 events bound how many events a load replays; GetAt loads any past version.
func ExampleWithSnapshots() {
	ctx := context.Background()
	reg := mapper.NewRegistry()
	mapper.Register[Started](reg, "example.Started")
	mapper.Register[Incremented](reg, "example.Incremented")
	mapper.Register[Counter](reg, "example.Counter") // the streams' type and the snapshots' topic
	m, err := mapper.New(reg)
	if err != nil {
		panic(err)
	}
	snapshots := memory.NewAggregateRecorder()
	counters, err := repository.New[Counter](eventstore.New(m, memory.NewProcessRecorder()),
		repository.WithSnapshots(eventstore.New(m, snapshots), 100))
	if err != nil {
		panic(err)
	}

	c := &Counter{}
	aggregate.Trigger(c, Started{Name: "clicks"})
	for range 250 {
		c.Inc(1)
		if c.Version%50 == 0 {
			if _, err := counters.Save(ctx, c); err != nil {
				panic(err)
			}
		}
	}
	if _, err := counters.Save(ctx, c); err != nil {
		panic(err)
	}
	stored, _ := snapshots.SelectEvents(ctx, c.ID, es.EventQuery{})
	for _, s := range stored {
		fmt.Println("snapshot at version", s.OriginatorVersion)
	}
	old, _ := counters.GetAt(ctx, c.ID, 120)
	fmt.Println("count at version 120:", old.Count)
	// Output:
	// snapshot at version 100
	// snapshot at version 200
	// count at version 120: 119
}

// Update is the command loop: load, run the command, save, and on a concurrent change load again and run
// it again. The command's own error comes back as it is, and nothing is saved.
func ExampleRepository_Update() {
	ctx := context.Background()
	reg := mapper.NewRegistry()
	mapper.Register[Started](reg, "example.Started")
	mapper.Register[Incremented](reg, "example.Incremented")
	mapper.Register[Counter](reg, "example.Counter")
	m, err := mapper.New(reg)
	if err != nil {
		panic(err)
	}
	counters, err := repository.New[Counter](eventstore.New(m, memory.NewProcessRecorder()))
	if err != nil {
		panic(err)
	}
	c := &Counter{}
	aggregate.Trigger(c, Started{Name: "seats"})
	if _, err := counters.Save(ctx, c); err != nil {
		panic(err)
	}

	errFull := errors.New("no seats left")
	book := func(n int) func(*Counter) error {
		return func(c *Counter) error {
			if c.Count+n > 10 {
				return errFull
			}
			c.Inc(n)
			return nil
		}
	}
	ids, err := counters.Update(ctx, c.ID, book(8))
	fmt.Println("booked 8, notification", ids[0], err)
	_, err = counters.Update(ctx, c.ID, book(3))
	fmt.Println("booking 3 more:", err, errors.Is(err, errFull))
	// Output:
	// booked 8, notification 2 <nil>
	// booking 3 more: no seats left true
}

// Package aggregatetest tests aggregates in the given/when/then style: given past events, when a command
// runs, then exactly these events (or this error and no events) follow.
//
//	acc := aggregatetest.Given[Account](t, Opened{Owner: "ada"}, Deposited{Amount: 100})
//	err := acc.Withdraw(30)
//	aggregatetest.Then(t, acc, err, Withdrawn{Amount: 30})
package aggregatetest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
)

// Given returns a new aggregate of type T with events replayed as its history (versions 1, 2, …, a
// fresh random ID), so that a test starts from any state in one line. It fails the test if replay fails,
// for instance on an event given as a pointer (events are values) or an Apply that panics.
func Given[T any, P interface {
	*T
	aggregate.Root
}](t testing.TB, events ...any) P {
	t.Helper()
	return given[T, P](t, "aggregatetest.Given", aggregate.NewID(), events)
}

// GivenID is Given with a chosen aggregate ID.
func GivenID[T any, P interface {
	*T
	aggregate.Root
}](t testing.TB, id uuid.UUID, events ...any) P {
	t.Helper()
	return given[T, P](t, "aggregatetest.GivenID", id, events)
}

func given[T any, P interface {
	*T
	aggregate.Root
}](t testing.TB, name string, id uuid.UUID, events []any) P {
	t.Helper()
	a := P(new(T))
	a.AggregateBase().ID = id
	hist := make([]aggregate.Event, len(events))
	for i, data := range events {
		hist[i] = aggregate.Event{OriginatorID: id, OriginatorVersion: int64(i + 1), Data: data}
	}
	if err := aggregate.Replay(a, hist...); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return a
}

// Then asserts that the command returned no error, that the aggregate can be saved (see
// aggregate.Base.Err: a Trigger refused no event and no Apply panicked) and that a's pending events are
// exactly want, in order (compared with reflect.DeepEqual). It collects them, so a test can issue the
// next command and call Then again.
func Then(t testing.TB, a aggregate.Root, err error, want ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("command failed: %v", err)
	}
	if err := a.AggregateBase().Err(); err != nil {
		t.Fatalf("the aggregate cannot be saved: %v", err)
	}
	got := a.AggregateBase().Collect()
	if len(got) != len(want) {
		t.Fatalf("got %d events %s, want %d %s", len(got), describe(got), len(want), describeData(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i].Data, want[i]) {
			t.Fatalf("event %d: got %#v, want %#v", i+1, got[i].Data, want[i])
		}
	}
}

// ThenError asserts that the command's error matches target (errors.Is), that it triggered no event
// and that the aggregate can still be saved.
func ThenError(t testing.TB, a aggregate.Root, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
	if err := a.AggregateBase().Err(); err != nil {
		t.Fatalf("the aggregate cannot be saved: %v", err)
	}
	if p := a.AggregateBase().Pending(); len(p) > 0 {
		t.Fatalf("a failed command triggered %d events: %s", len(p), describe(p))
	}
}

func describe(events []aggregate.Event) string {
	data := make([]any, len(events))
	for i, e := range events {
		data[i] = e.Data
	}
	return describeData(data)
}

func describeData(data []any) string {
	s := "["
	for i, d := range data {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%T", d)
	}
	return s + "]"
}

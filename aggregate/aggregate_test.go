package aggregate_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/aggregate/aggregatetest"
)

type Opened struct{ Owner string }
type Deposited struct{ Amount int64 }

var ErrNotOpen = errors.New("not open")

type Account struct {
	aggregate.Base
	Owner     string
	Balance   int64
	AppliedAt int64 // version seen by Apply, to check Trigger updates Base first
}

func (a *Account) Apply(e any) {
	switch e := e.(type) {
	case Opened:
		a.Owner = e.Owner
	case Deposited:
		a.Balance += e.Amount
	}
	a.AppliedAt = a.Version
}

func (a *Account) Deposit(n int64) error {
	if a.Owner == "" {
		return ErrNotOpen
	}
	aggregate.Trigger(a, Deposited{Amount: n})
	return nil
}

func TestTriggerStampsVersionsAndTimes(t *testing.T) {
	a := &Account{}
	before := time.Now().UTC()
	aggregate.Trigger(a, Opened{Owner: "ada"})
	aggregate.Trigger(a, Deposited{Amount: 5})
	if a.ID == uuid.Nil || a.ID.Version() != 7 {
		t.Fatalf("fresh aggregate got ID %v, want a UUIDv7", a.ID)
	}
	if a.Version != 2 || a.Balance != 5 || a.AppliedAt != 2 {
		t.Fatalf("version %d balance %d applied at %d", a.Version, a.Balance, a.AppliedAt)
	}
	p := a.Pending()
	if len(p) != 2 || p[0].OriginatorVersion != 1 || p[1].OriginatorVersion != 2 || p[0].OriginatorID != a.ID {
		t.Fatalf("pending %+v", p)
	}
	if p[0].Timestamp.Location() != time.UTC || p[0].Timestamp.Before(before) || p[1].Timestamp.Before(p[0].Timestamp) {
		t.Fatalf("timestamps %v %v", p[0].Timestamp, p[1].Timestamp)
	}
	if !a.CreatedOn.Equal(p[0].Timestamp) || !a.ModifiedOn.Equal(p[1].Timestamp) {
		t.Fatalf("created %v modified %v", a.CreatedOn, a.ModifiedOn)
	}
	if got := a.Collect(); len(got) != 2 || len(a.Pending()) != 0 {
		t.Fatalf("collect returned %d, left %d", len(got), len(a.Pending()))
	}
}

func TestReplayRebuildsState(t *testing.T) {
	a := &Account{}
	aggregate.Trigger(a, Opened{Owner: "ada"})
	aggregate.Trigger(a, Deposited{Amount: 5})
	aggregate.Trigger(a, Deposited{Amount: 7})
	b := &Account{}
	if err := aggregate.Replay(b, a.Collect()...); err != nil {
		t.Fatal(err)
	}
	if b.ID != a.ID || b.Version != 3 || b.Balance != 12 || !b.CreatedOn.Equal(a.CreatedOn) || !b.ModifiedOn.Equal(a.ModifiedOn) {
		t.Fatalf("replayed %+v, want %+v", b, a)
	}
	if len(b.Pending()) != 0 {
		t.Fatal("replay must not create pending events")
	}
}

func TestReplayRefusesGapsAndOtherOriginators(t *testing.T) {
	id := aggregate.NewID()
	ev := func(id uuid.UUID, v int64, d any) aggregate.Event {
		return aggregate.Event{OriginatorID: id, OriginatorVersion: v, Data: d}
	}
	cases := map[string][]aggregate.Event{
		"gap":       {ev(id, 1, Opened{"a"}), ev(id, 3, Deposited{1})},
		"repeat":    {ev(id, 1, Opened{"a"}), ev(id, 1, Deposited{1})},
		"not first": {ev(id, 2, Deposited{1})},
		"other":     {ev(id, 1, Opened{"a"}), ev(aggregate.NewID(), 2, Deposited{1})},
	}
	for name, events := range cases {
		t.Run(name, func(t *testing.T) {
			a := &Account{}
			err := aggregate.Replay(a, events...)
			if !errors.Is(err, aggregate.ErrReplay) {
				t.Fatalf("got %v, want ErrReplay", err)
			}
			if a.Balance != 0 {
				t.Fatal("the refused event was applied")
			}
		})
	}
}

func TestNameIDIsStable(t *testing.T) {
	ns := uuid.MustParse("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
	a, b := aggregate.NameID(ns, "ada@example.com"), aggregate.NameID(ns, "ada@example.com")
	if a != b || a.Version() != 5 || a == aggregate.NameID(ns, "bob@example.com") {
		t.Fatalf("name IDs %v %v", a, b)
	}
}

func TestGivenWhenThen(t *testing.T) {
	acc := aggregatetest.Given[Account](t, Opened{Owner: "ada"}, Deposited{Amount: 10})
	aggregatetest.Then(t, acc, acc.Deposit(5), Deposited{Amount: 5})
	if acc.Balance != 15 || acc.Version != 3 {
		t.Fatalf("balance %d version %d", acc.Balance, acc.Version)
	}
	closed := aggregatetest.Given[Account](t)
	aggregatetest.ThenError(t, closed, closed.Deposit(5), ErrNotOpen)
}

// Exploding is an event whose Apply panics: a bug in the aggregate that a caller recovers from.
type Exploding struct{}

type Fragile struct {
	aggregate.Base
	Applied int
}

func (f *Fragile) Apply(e any) {
	if _, ok := e.(Exploding); ok {
		panic("boom")
	}
	f.Applied++
}

// triggerRecovering triggers e on a and returns the value Trigger panicked with, nil when it did not.
func triggerRecovering(a aggregate.Root, e any) (recovered any) {
	defer func() { recovered = recover() }()
	aggregate.Trigger(a, e)
	return nil
}

func TestTriggerRefusesPointerAndNilEvents(t *testing.T) {
	for name, event := range map[string]any{
		"pointer":       &Deposited{Amount: 5},
		"nil":           nil,
		"typed nil ptr": (*Deposited)(nil),
	} {
		t.Run(name, func(t *testing.T) {
			a := &Account{}
			aggregate.Trigger(a, Opened{Owner: "ada"})
			aggregate.Trigger(a, event)
			if a.Balance != 0 || a.Version != 1 || len(a.Pending()) != 1 {
				t.Fatalf("the refused event changed the aggregate: balance %d version %d pending %d",
					a.Balance, a.Version, len(a.Pending()))
			}
			err := a.Err()
			if !errors.Is(err, aggregate.ErrInvalidEvent) {
				t.Fatalf("Err() = %v, want ErrInvalidEvent", err)
			}
			if name == "pointer" && !strings.Contains(err.Error(), "*aggregate_test.Deposited") {
				t.Fatalf("the error does not name the event's type: %v", err)
			}
			// Later events are applied as usual, but the aggregate stays refused.
			aggregate.Trigger(a, Deposited{Amount: 1})
			if a.Balance != 1 || !errors.Is(a.Err(), aggregate.ErrInvalidEvent) {
				t.Fatalf("balance %d, Err %v", a.Balance, a.Err())
			}
		})
	}
}

func TestReplayRefusesPointerEvents(t *testing.T) {
	id := aggregate.NewID()
	a := &Account{}
	err := aggregate.Replay(a,
		aggregate.Event{OriginatorID: id, OriginatorVersion: 1, Data: Opened{Owner: "ada"}},
		aggregate.Event{OriginatorID: id, OriginatorVersion: 2, Data: &Deposited{Amount: 5}})
	if !errors.Is(err, aggregate.ErrInvalidEvent) || a.Version != 1 {
		t.Fatalf("got %v at version %d, want ErrInvalidEvent at version 1", err, a.Version)
	}
}

func TestTriggerIsAllOrNothingWhenApplyPanics(t *testing.T) {
	f := &Fragile{}
	aggregate.Trigger(f, Deposited{Amount: 1})
	id, created, modified := f.ID, f.CreatedOn, f.ModifiedOn
	if r := triggerRecovering(f, Exploding{}); r != "boom" {
		t.Fatalf("Trigger must let Apply's panic through unchanged, got %v", r)
	}
	if f.ID != id || f.Version != 1 || !f.CreatedOn.Equal(created) || !f.ModifiedOn.Equal(modified) || len(f.Pending()) != 1 {
		t.Fatalf("after the panic: version %d, pending %d: the failed event left a trace", f.Version, len(f.Pending()))
	}
	if !errors.Is(f.Err(), aggregate.ErrApplyPanicked) {
		t.Fatalf("Err() = %v, want ErrApplyPanicked", f.Err())
	}
	aggregate.Trigger(f, Deposited{Amount: 1})
	if p := f.Pending(); len(p) != 2 || p[1].OriginatorVersion != 2 || f.Version != 2 {
		t.Fatalf("the next event got version %d (aggregate at %d)", p[len(p)-1].OriginatorVersion, f.Version)
	}

	// A panic in the very first event leaves a fresh aggregate fresh, without an ID.
	g := &Fragile{}
	triggerRecovering(g, Exploding{})
	if g.ID != uuid.Nil || g.Version != 0 || !g.CreatedOn.IsZero() || len(g.Pending()) != 0 {
		t.Fatalf("fresh aggregate after a panic: %+v", g.Base)
	}
}

func TestReplayTurnsApplyPanicsIntoErrors(t *testing.T) {
	id := aggregate.NewID()
	f := &Fragile{}
	err := aggregate.Replay(f,
		aggregate.Event{OriginatorID: id, OriginatorVersion: 1, Data: Deposited{Amount: 1}},
		aggregate.Event{OriginatorID: id, OriginatorVersion: 2, Data: Exploding{}})
	if !errors.Is(err, aggregate.ErrApplyPanicked) {
		t.Fatalf("got %v, want ErrApplyPanicked", err)
	}
	for _, want := range []string{"*aggregate_test.Fragile", id.String(), "aggregate_test.Exploding", "version 2", "boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

func TestErrReportsPendingEventsThatDoNotFollowOn(t *testing.T) {
	a := &Account{}
	aggregate.Trigger(a, Opened{Owner: "ada"})
	aggregate.Trigger(a, Deposited{Amount: 1})
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
	a.Version = 5 // changed by hand: the pending events no longer end at the aggregate's version
	if err := a.Err(); !errors.Is(err, aggregate.ErrVersionGap) {
		t.Fatalf("Err() = %v, want ErrVersionGap", err)
	}
}

package aggregate_test

import (
	"errors"
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

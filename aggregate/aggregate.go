// Package aggregate is the write side of a domain model: aggregates are Go types that embed [Base], change
// only by triggering events, and are rebuilt by replaying those events.
//
// A command method checks its preconditions, then calls [Trigger] with a plain event struct. Trigger
// stamps the next version and a UTC timestamp, applies the event through the aggregate's Apply method,
// and keeps it as pending until a repository saves it. Loading replays the recorded events through the
// same Apply, so state is derived in exactly one place.
package aggregate

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Root is what the repository needs of an aggregate. Embed [Base] to get AggregateBase, and write Apply,
// which changes state for one event and must not fail: validation belongs in the command methods,
// before Trigger, because replay has to accept every event that was once recorded.
type Root interface {
	// Apply changes the aggregate's state for one event (a value of a registered event type).
	Apply(event any)
	// AggregateBase returns the embedded Base.
	AggregateBase() *Base
}

// Base holds the identity and version bookkeeping of an aggregate. Embed it (as a value) in aggregate
// structs. Its fields are exported so that snapshots and caches, which serialise the aggregate as JSON,
// carry them.
type Base struct {
	ID         uuid.UUID `json:"id"`
	Version    int64     `json:"version"`     // version of the last event applied, 0 before the first
	CreatedOn  time.Time `json:"created_on"`  // timestamp of the first event
	ModifiedOn time.Time `json:"modified_on"` // timestamp of the last event

	pending []Event
}

// AggregateBase returns b; it makes any struct that embeds Base satisfy part of Root.
func (b *Base) AggregateBase() *Base { return b }

// Pending returns the events triggered since the aggregate was loaded or last saved, oldest first. The
// slice is a copy; the events are not removed (see Collect).
func (b *Base) Pending() []Event {
	out := make([]Event, len(b.pending))
	copy(out, b.pending)
	return out
}

// Collect removes and returns the pending events. Repositories call it once the events are recorded.
func (b *Base) Collect() []Event {
	out := b.pending
	b.pending = nil
	return out
}

// Trigger records that event happened to a: it stamps the next version and the current UTC time,
// updates a's Base (so Apply may read the new Version and ModifiedOn), applies the event, then appends
// it to a's pending events. A fresh aggregate without an ID gets a new random one ([NewID]); set ID
// before the first Trigger to use a name-based one ([NameID]).
func Trigger(a Root, event any) {
	b := a.AggregateBase()
	if b.ID == uuid.Nil {
		b.ID = NewID()
	}
	now := time.Now().UTC()
	if !b.ModifiedOn.IsZero() && now.Before(b.ModifiedOn) {
		// Wall clocks step backwards; an aggregate's history should not.
		now = b.ModifiedOn
	}
	e := Event{OriginatorID: b.ID, OriginatorVersion: b.Version + 1, Timestamp: now, Data: event}
	b.advance(e)
	a.Apply(event)
	b.pending = append(b.pending, e)
}

// ErrReplay is wrapped by the error of Replay for an event that does not continue the aggregate.
var ErrReplay = errors.New("aggregate: event does not continue the aggregate")

// Replay applies recorded events to a, in order. An event of another originator, or whose version is not
// the aggregate's version + 1, is refused with an error wrapping ErrReplay, and nothing of it is applied.
// A fresh aggregate (no ID, version 0) takes the ID of the first event.
func Replay(a Root, events ...Event) error {
	b := a.AggregateBase()
	for _, e := range events {
		if b.ID == uuid.Nil && b.Version == 0 {
			b.ID = e.OriginatorID
		}
		if e.OriginatorID != b.ID {
			return fmt.Errorf("%w: event of originator %s applied to aggregate %s", ErrReplay, e.OriginatorID, b.ID)
		}
		if e.OriginatorVersion != b.Version+1 {
			return fmt.Errorf("%w: aggregate %s is at version %d, event has version %d",
				ErrReplay, b.ID, b.Version, e.OriginatorVersion)
		}
		b.advance(e)
		a.Apply(e.Data)
	}
	return nil
}

func (b *Base) advance(e Event) {
	b.Version = e.OriginatorVersion
	if e.OriginatorVersion == 1 {
		b.CreatedOn = e.Timestamp
	}
	b.ModifiedOn = e.Timestamp
}

// NewID returns a new random aggregate ID: a UUIDv7, whose leading timestamp keeps B-tree indexes on
// originator IDs appending at the right edge instead of splitting pages all over.
func NewID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does; so would NewRandom.
		return uuid.New()
	}
	return id
}

// NameID returns the ID of the aggregate named name in namespace: a UUIDv5, the same for the same
// inputs, so an aggregate found by a natural key (an e-mail address, an account number) needs no lookup
// table.
func NameID(namespace uuid.UUID, name string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte(name))
}

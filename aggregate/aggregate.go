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
	"reflect"
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
	err     error // why the pending events cannot be saved (see Err)
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
//
// event must be a value of a registered event type, never a pointer: Apply's type switch, the mapper
// and replay must all see the same thing, and replay always sees values. Trigger has no error to
// return, so it refuses nil and pointer events by changing nothing and remembering the refusal, which
// [Base.Err] reports and every save of the aggregate fails with (the programmer's mistake surfaces at
// the first save or test, never as a state that reloads differently).
//
// Trigger is all or nothing for the aggregate's Base and pending events: when Apply panics, the Base
// is restored, the event is not kept, and the panic goes on to the caller. Apply may have changed the
// aggregate's own fields before it panicked, so the aggregate also remembers the failure ([Base.Err])
// and can no longer be saved: load it again.
func Trigger(a Root, event any) {
	b := a.AggregateBase()
	if err := checkEventData(event); err != nil {
		b.refuse(fmt.Errorf("%w: Trigger on %T: %s", ErrInvalidEvent, a, err))
		return
	}
	before := *b
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
	applied := false
	defer func() {
		if !applied {
			// Apply panicked: the panic continues once this returns, without the event.
			*b = before
			b.refuse(fmt.Errorf("%w: Trigger of %T at version %d on %T %s; the aggregate may be half-changed: load it again",
				ErrApplyPanicked, event, e.OriginatorVersion, a, e.OriginatorID))
		}
	}()
	a.Apply(event)
	applied = true
	b.pending = append(b.pending, e)
}

var (
	// ErrReplay is wrapped by the error of Replay for an event that does not continue the aggregate.
	ErrReplay = errors.New("aggregate: event does not continue the aggregate")
	// ErrInvalidEvent is wrapped by the error for event data that is nil or a pointer: Trigger refuses
	// it (see Base.Err), and so do Replay and the mapper.
	ErrInvalidEvent = errors.New("aggregate: invalid event")
	// ErrApplyPanicked is wrapped by the error for an Apply that panicked: returned by Replay, and
	// remembered by an aggregate whose Apply panicked in Trigger (see Base.Err).
	ErrApplyPanicked = errors.New("aggregate: Apply panicked")
	// ErrVersionGap is wrapped by the error for events whose versions do not follow on: pending events
	// that do not end at the aggregate's version (Base.Err), or a batch that skips or repeats a
	// version of an originator.
	ErrVersionGap = errors.New("aggregate: versions do not follow on")
)

// checkEventData refuses what cannot be an event: nil, and pointers, which Apply's type switch on
// the value type would not match while the mapper stored them as the value they point to.
func checkEventData(data any) error {
	if data == nil {
		return errors.New("nil event")
	}
	if t := reflect.TypeOf(data); t.Kind() == reflect.Pointer {
		return fmt.Errorf("%v is a pointer; events are values (%v)", t, t.Elem())
	}
	return nil
}

// refuse remembers the first reason why the aggregate cannot be saved.
func (b *Base) refuse(err error) {
	if b.err == nil {
		b.err = err
	}
}

// Err reports why the aggregate's pending events cannot be saved, nil when they can: a Trigger that
// refused its event (an error wrapping ErrInvalidEvent), an Apply that panicked in Trigger (wrapping
// ErrApplyPanicked), or pending events that do not end at the aggregate's version, one after another
// (wrapping ErrVersionGap; the Base was changed by hand). Repositories check it before they record
// anything. A refusal stays with the aggregate value: load the aggregate again to go on.
func (b *Base) Err() error {
	if b.err != nil {
		return b.err
	}
	first := b.Version - int64(len(b.pending)) + 1
	for i, e := range b.pending {
		if e.OriginatorID != b.ID || e.OriginatorVersion != first+int64(i) || e.OriginatorVersion < 1 {
			return fmt.Errorf("%w: aggregate %s is at version %d, and pending event %d of %d is version %d of %s",
				ErrVersionGap, b.ID, b.Version, i+1, len(b.pending), e.OriginatorVersion, e.OriginatorID)
		}
	}
	return nil
}

// Replay applies recorded events to a, in order. An event of another originator, or whose version is not
// the aggregate's version + 1, is refused with an error wrapping ErrReplay, and nothing of it is applied;
// so is event data that is nil or a pointer (ErrInvalidEvent). A panic in Apply is returned as an error
// wrapping ErrApplyPanicked that names the aggregate, the event and its version; the aggregate is then
// half-changed and must be discarded. A fresh aggregate (no ID, version 0) takes the ID of the first
// event.
func Replay(a Root, events ...Event) (err error) {
	b := a.AggregateBase()
	var applying *Event // for the error of a panic
	defer func() {
		if r := recover(); r != nil {
			if applying == nil {
				panic(r) // not Apply's: a bug here
			}
			err = fmt.Errorf("%w: replay of %T at version %d on %T %s: %v",
				ErrApplyPanicked, applying.Data, applying.OriginatorVersion, a, applying.OriginatorID, r)
		}
	}()
	for i := range events {
		e := &events[i]
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
		if err := checkEventData(e.Data); err != nil {
			return fmt.Errorf("%w: replay of version %d on %T %s: %s", ErrInvalidEvent, e.OriginatorVersion, a, b.ID, err)
		}
		b.advance(*e)
		applying = e
		a.Apply(e.Data)
		applying = nil
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

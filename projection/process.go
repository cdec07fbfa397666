package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// Policy is what a process application does with one event of an application it follows: it loads
// its own aggregates (through repositories over its own store), runs commands on them, and collects
// them with p.Collect. The runner then saves their new events and the tracking of the upstream event in
// one InsertEvents call, so they are recorded together or not at all. Collecting nothing is fine: the
// tracking is still recorded, and the process moves on.
//
// A policy must have no effect other than the aggregates it collects: it may run again for the same
// event, after a crash before the save or when the save meets a concurrent change to one of its
// aggregates (it is then run on freshly loaded state, up to a few times). An error stops the process at
// this event.
type Policy func(ctx context.Context, p *Processing, e aggregate.Event) error

// Processing is the work of a policy on one upstream event.
type Processing struct {
	// Upstream is the application whose event is processed: a process application following several
	// leaders can tell them apart.
	Upstream string
	// NotificationID is the event's position in the upstream log.
	NotificationID int64

	aggs []aggregate.Root
}

// Collect adds aggregates whose pending events are to be saved with the tracking record. Collecting
// one aggregate twice saves its events once.
func (p *Processing) Collect(aggs ...aggregate.Root) {
	for _, a := range aggs {
		if a != nil && !slices.Contains(p.aggs, a) {
			p.aggs = append(p.aggs, a)
		}
	}
}

// policyAttempts is how many times a policy runs for one event when its save keeps meeting
// concurrent changes to its aggregates.
const policyAttempts = 5

// NewProcess returns a runner that applies follower.Policy to the events of leader, saving the new
// events of the follower's aggregates and the tracking of each leader event atomically in the
// follower's store, whose recorder must be an eventsourcing.ProcessRecorder. A System makes these for
// its pipes; use NewProcess directly to run one pipe on its own.
func NewProcess(follower, leader Application, opts ...Option) (*Runner[*Processing], error) {
	rec, err := follower.recorder()
	if err != nil {
		return nil, fmt.Errorf("projection: new process: %w", err)
	}
	pr, ok := rec.(es.ProcessRecorder)
	if !ok {
		return nil, fmt.Errorf("projection: new process: follower %q: recorder %T keeps no tracking records (not an eventsourcing.ProcessRecorder)", follower.Name, rec)
	}
	if follower.Policy == nil {
		return nil, fmt.Errorf("projection: new process: follower %q has no policy", follower.Name)
	}
	if follower.Name == leader.Name {
		return nil, fmt.Errorf("projection: new process: %q cannot follow itself", follower.Name)
	}
	store := &processStore{store: follower.Store, recorder: pr}
	r, err := NewRunner(leader, TrackingStore[*Processing](store), Projection[*Processing](follower.Policy), opts...)
	if err != nil {
		return nil, fmt.Errorf("projection: new process: follower %q: %w", follower.Name, err)
	}
	return r, nil
}

// processStore is the TrackingStore of a process application: its transaction is one InsertEvents call
// of the collected events with the tracking record.
type processStore struct {
	store    *eventstore.EventStore
	recorder es.ProcessRecorder
}

func (s *processStore) MaxTrackingID(ctx context.Context, upstream string) (int64, error) {
	return s.recorder.MaxTrackingID(ctx, upstream)
}

func (s *processStore) Process(ctx context.Context, t es.Tracking, fn func(ctx context.Context, p *Processing) error) error {
	for attempt := 1; ; attempt++ {
		// Checking first saves running the policy for an event processed already; the insert below
		// checks again, atomically.
		done, err := s.recorder.HasTrackingID(ctx, t.ApplicationName, t.NotificationID)
		if err != nil {
			return err
		}
		if done {
			return fmt.Errorf("tracking %q notification %d: processed already: %w", t.ApplicationName, t.NotificationID, es.ErrConflict)
		}
		p := &Processing{Upstream: t.ApplicationName, NotificationID: t.NotificationID}
		if err := fn(ctx, p); err != nil {
			return err
		}
		_, err = repository.SaveAll(ctx, s.store, p.aggs, es.WithTracking(t))
		if err == nil || !errors.Is(err, es.ErrConflict) || attempt == policyAttempts {
			return err
		}
		// A conflict: either the event was processed meanwhile (the check at the top of the loop
		// reports it), or another writer changed one of the collected aggregates since the policy
		// loaded it, and the policy runs again on fresh state.
	}
}

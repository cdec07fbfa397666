package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// Policy is what a process application does with one event of an application it follows: it loads
// its own aggregates (through repositories over its own store), runs commands on them, and collects
// them with p.Collect. The runner then saves their new events and the tracking of the upstream events
// in one InsertEvents call, so they are recorded together or not at all. Collecting nothing is fine:
// the tracking is still recorded, and the process moves on.
//
// The runner runs the policy for a batch of upstream events and saves them together (see WithBatch).
// The policy's context holds a repository.UnitOfWork for the batch, so a repository's Get returns the
// aggregate as the policy left it for the events before in the batch: the outcome is that of
// processing the events one by one. (A policy that keeps aggregates elsewhere than in repositories and
// p.Collect loses that.)
//
// A policy must have no effect other than the aggregates it collects: it may run again for the same
// event, after a crash before the save, when the save meets a concurrent change to one of its
// aggregates (the batch is then run again on freshly loaded state, up to a few times), or when its
// batch fails and is narrowed down. An error stops the process at this event; the events before it in
// the batch are saved.
type Policy func(ctx context.Context, p *Processing, e aggregate.Event) error

// Processing is the work of a policy on a batch of upstream events.
type Processing struct {
	// Upstream is the application whose event is processed: a process application following several
	// leaders can tell them apart.
	Upstream string
	// NotificationID is the event's position in the upstream log.
	NotificationID int64

	unit *repository.UnitOfWork
	aggs []aggregate.Root
}

// Collect adds aggregates whose pending events are to be saved with the tracking record. Collecting
// one aggregate twice saves its events once. A collected aggregate joins the batch's unit of work, so a
// new aggregate is found by the repositories' Get for the later events of the batch.
func (p *Processing) Collect(aggs ...aggregate.Root) {
	for _, a := range aggs {
		if a != nil && !slices.Contains(p.aggs, a) {
			p.aggs = append(p.aggs, a)
			p.unit.Add(a)
		}
	}
}

// policyAttempts is how many times a batch's policies run when its save keeps meeting concurrent
// changes to their aggregates.
const policyAttempts = 5

// NewProcess returns a runner that applies follower.Policy to the events of leader, saving the new
// events of the follower's aggregates and the tracking of each batch of leader events atomically in
// the follower's store, whose recorder must be an eventsourcing.ProcessRecorder. The runner's name, and
// its consumer name in the tracking records, is the follower's name. A System makes these for its
// pipes; use NewProcess directly to run one pipe on its own.
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
	policy := follower.Policy
	apply := func(ctx context.Context, p *Processing, batch []item) error {
		for i, it := range batch {
			if it.skip {
				continue
			}
			p.NotificationID = it.id
			if err := policy(ctx, p, it.event); err != nil {
				return &eventError{index: i, err: err}
			}
		}
		return nil
	}
	r, err := newRunner(follower.Name, leader, TrackingStore[*Processing](store), apply, opts)
	if err != nil {
		return nil, fmt.Errorf("projection: new process: follower %q: %w", follower.Name, err)
	}
	if r.reset != nil {
		return nil, fmt.Errorf("projection: new process: follower %q: a process application cannot be reset (its work is recorded as events)", follower.Name)
	}
	return r, nil
}

// processStore is the TrackingStore of a process application: its transaction is one InsertEvents call
// of the collected events with the tracking record.
type processStore struct {
	store    *eventstore.EventStore
	recorder es.ProcessRecorder
}

func (s *processStore) MaxTrackingID(ctx context.Context, consumer, upstream string) (int64, error) {
	return s.recorder.MaxTrackingID(ctx, consumer, upstream)
}

func (s *processStore) DeleteTracking(ctx context.Context, consumer, upstream string) error {
	return errors.New("a process application cannot be rebuilt: its work is recorded as events")
}

func (s *processStore) Process(ctx context.Context, t es.Tracking, fn func(ctx context.Context, p *Processing) error) error {
	for attempt := 1; ; attempt++ {
		// Checking first saves running the policies for a batch processed already; the insert below
		// checks again, atomically.
		mark, err := s.recorder.MaxTrackingID(ctx, t.Consumer, t.Upstream)
		if err != nil {
			return err
		}
		if mark != t.Prior {
			return recorder.MarkConflict(t, mark)
		}
		p := &Processing{Upstream: t.Upstream, unit: repository.NewUnitOfWork()}
		if err := fn(repository.WithUnitOfWork(ctx, p.unit), p); err != nil {
			return err
		}
		_, err = repository.SaveAll(ctx, s.store, p.aggs, es.WithTracking(t))
		if err == nil || !errors.Is(err, es.ErrConflict) || attempt == policyAttempts {
			return err
		}
		// A conflict: either the batch was processed meanwhile (the check at the top of the loop
		// reports it), or another writer changed one of the collected aggregates since the policy
		// loaded it, and the policies run again on fresh state.
	}
}

package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
)

// Application is an application as the consumers of its notification log see it: the name under which
// they track its notifications, and its event store, whose recorder must be an
// [eventsourcing.ApplicationRecorder] (its notification log) and whose mapper decodes its events.
//
// A process application, which follows other applications in a [System], also has a Policy, and its
// store's recorder must be an [eventsourcing.ProcessRecorder], which keeps the tracking records.
type Application struct {
	// Name identifies the application in the tracking records of its followers. It must not change
	// once they have tracked anything: a renamed upstream is a new upstream, processed from the start.
	Name string
	// Store holds the application's events.
	Store *eventstore.EventStore
	// Policy is what the application does with the events of the applications it follows; nil for an
	// application that follows none.
	Policy Policy
}

// recorder returns the application's notification log.
func (a Application) recorder() (es.ApplicationRecorder, error) {
	if a.Name == "" {
		return nil, errors.New("application has no name")
	}
	if a.Store == nil {
		return nil, fmt.Errorf("application %q has no event store", a.Name)
	}
	r, ok := a.Store.Recorder().(es.ApplicationRecorder)
	if !ok {
		return nil, fmt.Errorf("application %q: recorder %T keeps no notification log (not an eventsourcing.ApplicationRecorder)", a.Name, a.Store.Recorder())
	}
	return r, nil
}

// Projection applies one upstream event to a read model through tx, the transaction in which the
// runner also records that the event was processed. It must write nothing outside tx: whatever it does
// elsewhere is not rolled back when the transaction fails, and is repeated when the event is
// processed again after a crash. An error stops the runner without recording the event.
type Projection[Tx any] func(ctx context.Context, tx Tx, e aggregate.Event) error

// TrackingStore is where a projection keeps its read model and its position in each upstream log.
// [MemoryStore] is one; [SQL] makes one of a SQL recorder.
type TrackingStore[Tx any] interface {
	// MaxTrackingID returns the highest notification of upstream processed in this store, 0 if none.
	MaxTrackingID(ctx context.Context, upstream string) (int64, error)
	// Process runs fn in one transaction and records t in it. When t.NotificationID is not above the
	// mark of t.ApplicationName it fails with an error wrapping eventsourcing.ErrConflict; when fn
	// fails, or the commit does, it returns the error. Either way nothing of fn's writes remains.
	Process(ctx context.Context, t es.Tracking, fn func(ctx context.Context, tx Tx) error) error
}

// Option configures a Runner.
type Option func(*options)

type options struct {
	topics []string
}

// WithTopics restricts the runner to the events of these topics (the upstream mapper's topics). The
// filter is applied by the recorder, so the skipped notifications are not even transferred.
func WithTopics(topics ...string) Option {
	return func(o *options) { o.topics = append(o.topics, topics...) }
}

// ErrStopped is returned by Wait when the runner has stopped, without an error, before processing the
// notification waited for: its context ended.
var ErrStopped = errors.New("projection: runner stopped")

// Error is the error with which a runner stops: the upstream notification it could not process and why.
// The notification is not tracked, so a restarted runner starts with it.
type Error struct {
	Upstream       string // the upstream application
	NotificationID int64  // the notification that failed
	Topic          string // its topic
	Err            error  // the failure: decoding, the projection or policy, or the store
}

func (e *Error) Error() string {
	return fmt.Sprintf("projection: %s notification %d (topic %q): %v", e.Upstream, e.NotificationID, e.Topic, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// decoder is what the runner needs of a mapper.
type decoder interface {
	Decode(es.StoredEvent) (aggregate.Event, error)
}

// Runner follows an upstream application's notification log and has each event processed by a
// projection in a TrackingStore, exactly once: see the package documentation. A Runner runs once;
// to restart a projection, make a new Runner over the same store, and it resumes where the last one
// stopped.
type Runner[Tx any] struct {
	upstream   string
	recorder   es.ApplicationRecorder
	decoder    decoder
	store      TrackingStore[Tx]
	projection Projection[Tx]
	topics     []string

	mu      sync.Mutex
	state   runState
	pos     int64 // every notification <= pos that passes the filter is processed
	err     error // why the runner stopped; nil when its context ended
	changed chan struct{}
}

type runState int

const (
	idle runState = iota
	running
	stopped
)

// NewRunner returns a runner that feeds the events of upstream to projection, tracking them in store.
func NewRunner[Tx any](upstream Application, store TrackingStore[Tx], projection Projection[Tx], opts ...Option) (*Runner[Tx], error) {
	rec, err := upstream.recorder()
	if err != nil {
		return nil, fmt.Errorf("projection: new runner: %w", err)
	}
	if store == nil || projection == nil {
		return nil, fmt.Errorf("projection: new runner for %q: nil store or projection", upstream.Name)
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return &Runner[Tx]{
		upstream:   upstream.Name,
		recorder:   rec,
		decoder:    upstream.Store.Mapper(),
		store:      store,
		projection: projection,
		topics:     slices.Clone(o.topics),
		changed:    make(chan struct{}),
	}, nil
}

// Run processes the upstream's events, from the first one not tracked in the store, as they are
// recorded, until ctx ends (it then returns nil) or an event cannot be processed (it returns an *Error
// naming the notification, which stays unprocessed). Events are processed one at a time, each committed
// before the next is read: see Back-pressure in the package documentation.
//
// An event whose tracking record conflicts is skipped, but only once the store confirms that its mark
// has reached that event: then the event was processed already (delivered again, or processed by
// another instance of the same projection) and its effects are in the store. A conflict raised for any
// other reason, say by the projection's own writes, is an error like any other, since skipping it would
// lose the event.
func (r *Runner[Tx]) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.state != idle {
		r.mu.Unlock()
		return fmt.Errorf("projection: runner of %q: Run called twice; make a new Runner to restart", r.upstream)
	}
	r.state = running
	r.mu.Unlock()

	err := r.run(ctx)
	if err != nil && ctx.Err() != nil {
		// The failure is the cancellation (a transaction cut short, a query interrupted): nothing
		// was tracked that was not processed, so this is the clean stop the caller asked for.
		err = nil
	}
	r.mu.Lock()
	r.state, r.err = stopped, err
	r.signal()
	r.mu.Unlock()
	return err
}

func (r *Runner[Tx]) run(ctx context.Context) error {
	mark, err := r.store.MaxTrackingID(ctx, r.upstream)
	if err != nil {
		return fmt.Errorf("projection: %s: read tracking mark: %w", r.upstream, err)
	}
	r.advance(mark)
	for n, err := range r.recorder.Subscribe(ctx, mark, r.topics...) {
		if err != nil {
			return fmt.Errorf("projection: %s: subscription after notification %d: %w", r.upstream, r.position(), err)
		}
		if err := r.process(ctx, n); err != nil {
			return &Error{Upstream: r.upstream, NotificationID: n.ID, Topic: n.Topic, Err: err}
		}
		r.advance(n.ID)
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("projection: %s: subscription ended after notification %d while its context is live", r.upstream, r.position())
}

// process has one notification processed and tracked, or finds it was already.
func (r *Runner[Tx]) process(ctx context.Context, n es.Notification) error {
	e, err := r.decoder.Decode(n.StoredEvent)
	if err != nil {
		return err
	}
	t := es.Tracking{ApplicationName: r.upstream, NotificationID: n.ID}
	err = r.store.Process(ctx, t, func(ctx context.Context, tx Tx) error {
		return r.projection(ctx, tx, e)
	})
	if err == nil || !errors.Is(err, es.ErrConflict) {
		return err
	}
	mark, merr := r.store.MaxTrackingID(ctx, r.upstream)
	if merr != nil {
		return errors.Join(err, fmt.Errorf("read tracking mark after a conflict: %w", merr))
	}
	if mark >= n.ID {
		return nil // processed already; its effects committed with the mark
	}
	return err
}

// position returns the runner's position.
func (r *Runner[Tx]) position() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pos
}

// advance raises the position to id and wakes the waiters.
func (r *Runner[Tx]) advance(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id > r.pos {
		r.pos = id
		r.signal()
	}
}

// signal wakes every waiter. r.mu must be held.
func (r *Runner[Tx]) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Wait returns nil once notificationID has been processed, or will never need to be: it is filtered out
// by the runner's topics, or is a gap in the log. It returns the runner's error if the runner stops
// with one first, ErrStopped if it stops without one, and ctx's error if ctx ends first. It serves
// read-your-writes: record an event, Wait for its notification ID, then query the read model.
//
// Waiting for an ID that a topic filter excludes cannot rely on the runner, which never sees that
// notification and, caught up, sees nothing at all. So Wait asks the upstream log which notifications
// the filter passes between the runner's position and notificationID, and waits for the last of them
// only; until notificationID is recorded (no notification below it can appear once it is) it watches
// the log for it.
func (r *Runner[Tx]) Wait(ctx context.Context, notificationID int64) error {
	var (
		target   int64 // the last notification up to notificationID that the filter passes, once known
		final    bool  // target is that last one, not the end of a page of them
		recorded bool  // notificationID is known to be in the log, or passed over by it
		probe    chan error
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	for {
		r.mu.Lock()
		pos, state, runErr, changed := r.pos, r.state, r.err, r.changed
		r.mu.Unlock()
		switch {
		case pos >= notificationID:
			return nil
		case state == stopped && runErr != nil:
			return runErr
		case state == stopped:
			return ErrStopped
		}
		if len(r.topics) > 0 && state == running && pos >= target {
			if final {
				// Everything the filter passes up to notificationID is processed.
				r.advance(notificationID)
				return nil
			}
			if !recorded {
				max, err := r.recorder.MaxNotificationID(ctx)
				if err != nil {
					return fmt.Errorf("projection: wait for %s notification %d: %w", r.upstream, notificationID, err)
				}
				recorded = max >= notificationID
				if !recorded && probe == nil {
					probe = make(chan error, 1)
					go r.watch(watchCtx, max, notificationID, probe)
				}
			}
			if recorded {
				page, err := r.recorder.SelectNotifications(ctx, es.NotificationQuery{
					After: pos, UpTo: notificationID, Limit: waitPage, Topics: r.topics,
				})
				if err != nil {
					return fmt.Errorf("projection: wait for %s notification %d: %w", r.upstream, notificationID, err)
				}
				if len(page) == 0 {
					r.advance(notificationID)
					return nil
				}
				target, final = page[len(page)-1].ID, len(page) < waitPage
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case err := <-probe:
			if err != nil {
				return fmt.Errorf("projection: wait for %s notification %d: %w", r.upstream, notificationID, err)
			}
			recorded, probe = true, nil
		}
	}
}

// waitPage bounds how many notifications Wait reads from the log at a time.
const waitPage = 256

// watch reports on probe when the log reaches id (nil) or cannot be read (the error).
func (r *Runner[Tx]) watch(ctx context.Context, after, id int64, probe chan<- error) {
	for n, err := range r.recorder.Subscribe(ctx, after) {
		if err != nil {
			probe <- err
			return
		}
		if n.ID >= id {
			probe <- nil
			return
		}
	}
}

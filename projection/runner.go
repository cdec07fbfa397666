package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/internal/option"
	"github.com/eventsourcing-go/eventsourcing/observe"
)

// Application is an application as the consumers of its notification log see it: its name, and its
// event store, whose recorder must be an [eventsourcing.ApplicationRecorder] (its notification log) and
// whose mapper decodes its events.
//
// A process application, which follows other applications in a [System], also has a Policy, and its
// store's recorder must be an [eventsourcing.ProcessRecorder], which keeps the tracking records.
type Application struct {
	// Name identifies the application: its followers track its notifications under it (as their
	// upstream), and a process application tracks what it processed under it (as the consumer). It
	// must not change once anything is tracked: a renamed application is a new one, processed from the
	// start.
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
// processed again. An error stops the runner; the events before it in its batch are committed
// without it (see [Runner.Run]).
type Projection[Tx any] func(ctx context.Context, tx Tx, e aggregate.Event) error

// BatchProjection applies a batch of upstream events, in notification order, to a read model through
// tx, the one transaction of the whole batch: it commits with the tracking of the batch's last
// notification, or not at all. It suits projections that write a batch faster than its events one by
// one (a multi-row insert, a COPY). Like a Projection it must write nothing outside tx. When it fails,
// the runner narrows the batch down to the failing event (see [Runner.Run]), so it must give the same
// outcome for an event whichever batch the event is in.
type BatchProjection[Tx any] func(ctx context.Context, tx Tx, events []aggregate.Event) error

// TrackingStore is where a projection keeps its read model and its position (its tracking mark) in
// each upstream log, per consumer: any number of projections share one store. [MemoryStore] is one;
// [SQL] makes one of a SQL recorder.
type TrackingStore[Tx any] interface {
	// MaxTrackingID returns the mark of consumer for upstream, 0 if nothing is processed.
	MaxTrackingID(ctx context.Context, consumer, upstream string) (int64, error)
	// Process runs fn in one transaction and records t in it, a compare-and-set on t.Prior (see
	// eventsourcing.Tracking): when the mark is not t.Prior, or t.NotificationID is not above it, it
	// fails with an error wrapping eventsourcing.ErrConflict; when fn fails, or the commit does, it
	// returns the error. Either way nothing of fn's writes remains.
	Process(ctx context.Context, t es.Tracking, fn func(ctx context.Context, tx Tx) error) error
	// DeleteTracking removes the mark of consumer for upstream, so that it processes the upstream from
	// the start again.
	DeleteTracking(ctx context.Context, consumer, upstream string) error
}

// Defaults of the options.
const (
	// DefaultBatchSize is the most notifications a runner processes in one transaction.
	DefaultBatchSize = 1000
	// DefaultBatchTime is the longest a runner gathers notifications for one batch.
	DefaultBatchTime = 100 * time.Millisecond
)

// Option configures a Runner. Options record values; NewRunner checks them and fails on an invalid
// one.
type Option func(*options)

type options struct {
	topics    []string
	batchSize int
	batchTime time.Duration
	reset     any // func(context.Context, Tx) error
	forgotten Forgotten
	logger    *slog.Logger
	tracer    observe.ProjectionTracer
}

// Forgotten is what a runner does with an event it cannot decode because its subject has been
// forgotten (crypto-shredding: its data key is deleted, see package datakey).
type Forgotten int

const (
	// SkipForgotten (the default) tracks such an event as processed without giving it to the projection
	// or policy, and logs it at info level: one forgotten customer must not block a read model. What
	// the read model holds of the subject from before it was forgotten stays: delete it where the
	// application forgets the subject.
	SkipForgotten Forgotten = iota
	// StopOnForgotten stops the runner with an *Error naming the event, as any event it cannot decode.
	StopOnForgotten
)

// WithForgotten chooses what the runner does with events of forgotten subjects (default
// SkipForgotten).
func WithForgotten(f Forgotten) Option { return func(o *options) { o.forgotten = f } }

// WithTopics restricts the runner to the events of these topics (the upstream mapper's topics). The
// filter is applied by the recorder, so the skipped notifications are not even transferred.
func WithTopics(topics ...string) Option {
	return func(o *options) { o.topics = append(o.topics, topics...) }
}

// WithBatch bounds the batches of a runner: at most size notifications (default DefaultBatchSize), and
// gathered for at most d (default DefaultBatchTime) after the first of them. A batch also ends as soon
// as no further notification is at hand, so batching never delays an event of a quiet log: a caught-up
// runner processes each event as it arrives, and batches grow only while notifications are waiting,
// when catching up or under load. Size 1 processes one notification per transaction. Both must be
// positive.
func WithBatch(size int, d time.Duration) Option {
	return func(o *options) { o.batchSize, o.batchTime = size, d }
}

// WithReset gives the runner the function that clears the projection's read model, in tx. The runner
// calls it in the transaction of its first batch whenever it starts from nothing (its mark is 0): on a
// new store, where it finds nothing to clear, and after a rebuild was asked for ([Runner.Rebuild], or
// `esctl tracking rebuild`), where it clears the old read model in the transaction that writes the
// first events of the new one, so readers never see a half-cleared model. A running runner whose mark
// is deleted restarts from the first notification at its next batch. Tx must be the store's
// transaction type; NewRunner fails otherwise.
func WithReset[Tx any](reset func(ctx context.Context, tx Tx) error) Option {
	return func(o *options) { o.reset = reset }
}

// WithLogger logs the runner's batches (at debug level) and the failures it recovers from (at warn
// level) to l. Without it, or with nil, the runner logs to slog.Default() as it is when NewRunner is
// called.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTracer tells t about the runner's batches and about every notification its subscription
// delivers (see package observe). With a tracer, the runner also reads the upstream's last
// notification ID after each batch it commits, so that the tracer learns the runner's lag in
// notifications. Without it, or with nil, there is no tracer.
func WithTracer(t observe.ProjectionTracer) Option { return func(o *options) { o.tracer = t } }

var (
	// ErrStopped is returned by Wait when the runner has stopped, without an error, before processing
	// the notification waited for: its context ended.
	ErrStopped = errors.New("projection: runner stopped")
	// ErrReset is wrapped by the error of a runner without a reset function (WithReset) whose mark was
	// deleted or lowered while it ran: carrying on would apply events to the read model twice.
	ErrReset = errors.New("projection: tracking mark reset while running")
)

// Error is the error with which a runner stops: the upstream notification it could not process and why.
// The notification is not tracked, so a restarted runner starts with it; the notifications before it
// in its batch are committed.
type Error struct {
	Consumer       string // the projection or process application
	Upstream       string // the upstream application
	NotificationID int64  // the notification that failed
	Topic          string // its topic
	Err            error  // the failure: decoding, the projection or policy, or the store
}

func (e *Error) Error() string {
	return fmt.Sprintf("projection: %s: %s notification %d (topic %q): %v", e.Consumer, e.Upstream, e.NotificationID, e.Topic, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// decoder is what the runner needs of a mapper.
type decoder interface {
	DecodeContext(context.Context, es.StoredEvent) (aggregate.Event, error)
}

// Runner follows an upstream application's notification log and has its events processed by a
// projection in a TrackingStore, in batches, exactly once: see the package documentation. A Runner
// runs once; to restart a projection, make a new Runner over the same store, and it resumes where the
// last one stopped.
type Runner[Tx any] struct {
	name      string
	upstream  string
	recorder  es.ApplicationRecorder
	decoder   decoder
	store     TrackingStore[Tx]
	apply     func(ctx context.Context, tx Tx, batch []item) error
	reset     func(ctx context.Context, tx Tx) error
	topics    []string
	batchSize int
	batchTime time.Duration
	forgotten Forgotten
	logger    *slog.Logger
	tracer    observe.ProjectionTracer // nil: none

	mark int64 // the tracking mark, as the runner's goroutine last recorded or read it

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

// NewRunner returns a runner, named name, that feeds the events of upstream to projection one at a
// time, committing them in batches with their tracking in store. The name identifies the projection's
// tracking marks in the store: it must be unique among the store's consumers and must not change.
func NewRunner[Tx any](name string, upstream Application, store TrackingStore[Tx], projection Projection[Tx], opts ...Option) (*Runner[Tx], error) {
	if projection == nil {
		return nil, fmt.Errorf("projection: new runner %q: nil projection", name)
	}
	return newRunner(name, upstream, store, eachEvent(projection), opts)
}

// NewBatchRunner returns a runner, named name, that feeds the events of upstream to projection a batch
// at a time (see [BatchProjection]), each batch committed with its tracking in store. The name is as
// for NewRunner.
func NewBatchRunner[Tx any](name string, upstream Application, store TrackingStore[Tx], projection BatchProjection[Tx], opts ...Option) (*Runner[Tx], error) {
	if projection == nil {
		return nil, fmt.Errorf("projection: new runner %q: nil projection", name)
	}
	return newRunner(name, upstream, store, func(ctx context.Context, tx Tx, batch []item) error {
		return projection(ctx, tx, events(batch))
	}, opts)
}

func newRunner[Tx any](name string, upstream Application, store TrackingStore[Tx], apply func(context.Context, Tx, []item) error, opts []Option) (*Runner[Tx], error) {
	if name == "" {
		return nil, fmt.Errorf("projection: new runner of %q: empty name", upstream.Name)
	}
	rec, err := upstream.recorder()
	if err != nil {
		return nil, fmt.Errorf("projection: new runner %q: %w", name, err)
	}
	if store == nil {
		return nil, fmt.Errorf("projection: new runner %q: nil store", name)
	}
	o := options{batchSize: DefaultBatchSize, batchTime: DefaultBatchTime}
	option.Apply(&o, opts)
	if o.forgotten != SkipForgotten && o.forgotten != StopOnForgotten {
		return nil, fmt.Errorf("projection: new runner %q: WithForgotten(%d): unknown choice", name, o.forgotten)
	}
	if o.batchSize < 1 || o.batchTime <= 0 {
		return nil, fmt.Errorf("projection: new runner %q: WithBatch(%d, %v): size and time must be positive", name, o.batchSize, o.batchTime)
	}
	r := &Runner[Tx]{
		name:      name,
		upstream:  upstream.Name,
		recorder:  rec,
		decoder:   upstream.Store.Mapper(),
		store:     store,
		apply:     apply,
		topics:    slices.Clone(o.topics),
		batchSize: o.batchSize,
		batchTime: o.batchTime,
		forgotten: o.forgotten,
		logger:    o.logger,
		tracer:    observe.Use(o.tracer),
		changed:   make(chan struct{}),
	}
	if o.reset != nil {
		reset, ok := o.reset.(func(context.Context, Tx) error)
		if !ok {
			var tx Tx
			return nil, fmt.Errorf("projection: new runner %q: WithReset's function is a %T, not a func(context.Context, %T) error", name, o.reset, tx)
		}
		if reset == nil {
			return nil, fmt.Errorf("projection: new runner %q: WithReset(nil)", name)
		}
		r.reset = reset
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	return r, nil
}

// Name returns the runner's name: the consumer under which it tracks its position.
func (r *Runner[Tx]) Name() string { return r.name }

// Run processes the upstream's events, from the first one not tracked in the store, as they are
// recorded, until ctx ends (it then returns nil) or an event cannot be processed (it returns an *Error
// naming the notification, which stays unprocessed).
//
// Events are processed in batches (see WithBatch): each batch in one transaction of the store, with
// the tracking of its last notification, all or nothing. When a batch fails, the runner narrows it
// down: it commits the events before the failing one (a Projection's error names its event; a
// BatchProjection's failure is halved until one event is left), then processes that event on its own,
// and stops with an *Error if it fails again. A failure that does not repeat (a lost connection, say)
// costs a few more transactions, not the runner.
//
// A batch whose tracking conflicts was processed, wholly or in part, by another instance of the same
// projection (one that started from the same mark): the runner reads the mark it left, drops what it
// covers and goes on with the rest. A conflict raised for any other reason, say by the projection's own
// writes, is a failure like any other, since skipping it would lose events.
func (r *Runner[Tx]) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.state != idle {
		r.mu.Unlock()
		return fmt.Errorf("projection: runner %q: Run called twice; make a new Runner to restart", r.name)
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
	for {
		mark, err := r.store.MaxTrackingID(ctx, r.name, r.upstream)
		if err != nil {
			return fmt.Errorf("projection: %s: read tracking mark of %s: %w", r.name, r.upstream, err)
		}
		r.mark = mark
		r.setPosition(mark)
		restart, err := r.follow(ctx)
		if err != nil || !restart {
			return err
		}
		r.logger.WarnContext(ctx, "projection: tracking mark reset; rebuilding", "consumer", r.name, "upstream", r.upstream)
	}
}

// Rebuild makes the runner rebuild its read model when it runs: it deletes the runner's tracking mark,
// so that Run starts from the first notification and clears the read model with the reset function
// (WithReset) in the transaction of its first batch. It must be called before Run, and needs a reset
// function.
//
// To rebuild while the old read model keeps serving, run a runner with a new name that writes into
// new tables instead, and switch readers over once its lag is 0 (see Status).
func (r *Runner[Tx]) Rebuild(ctx context.Context) error {
	if r.reset == nil {
		return fmt.Errorf("projection: rebuild %q: the runner has no reset function (WithReset)", r.name)
	}
	r.mu.Lock()
	state := r.state
	r.mu.Unlock()
	if state != idle {
		return fmt.Errorf("projection: rebuild %q: the runner has run already; rebuild before Run", r.name)
	}
	if err := r.store.DeleteTracking(ctx, r.name, r.upstream); err != nil {
		return fmt.Errorf("projection: rebuild %q: %w", r.name, err)
	}
	return nil
}

// Status is how far a runner has come in its upstream's log.
type Status struct {
	Consumer string // the runner's name
	Upstream string // the upstream application
	Position int64  // every notification up to it has been processed (or is filtered out)
	Head     int64  // the upstream's highest notification ID
	Lag      int64  // Head - Position: notifications (of any topic) not processed yet
}

// Status reports the runner's position, the upstream's head and the lag between them.
func (r *Runner[Tx]) Status(ctx context.Context) (Status, error) {
	head, err := r.recorder.MaxNotificationID(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("projection: status of %q: %w", r.name, err)
	}
	pos := r.position()
	return Status{Consumer: r.name, Upstream: r.upstream, Position: pos, Head: head, Lag: max(head-pos, 0)}, nil
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

// setPosition sets the position, lower too (after a reset).
func (r *Runner[Tx]) setPosition(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.pos {
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

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite/internal/dbsqlc"
	"github.com/google/uuid"
)

var (
	_ eventsourcing.ProcessRecorder     = (*ProcessRecorder)(nil)
	_ eventsourcing.ApplicationRecorder = (*ProcessRecorder)(nil)
	_ eventsourcing.TrackingRecorder    = (*ProcessRecorder)(nil)
	_ eventsourcing.AggregateRecorder   = (*SnapshotRecorder)(nil)
)

// subscribePage is how many notifications a subscription reads at a time: large enough that catching
// up is not dominated by round trips, small enough to bound its memory.
const subscribePage = 500

// ProcessRecorder records an application's events in the events table of a SQLite database, keeps its
// notification log (the events table's notification_id column) and the tracking records of the upstream
// notifications it has processed. It is the SQLite recorder of an application and of a process
// application.
//
// Writes go through one connection that the recorder takes from the pool and keeps, so that its callers
// never contend for SQLite's write lock. A call that finds no transaction in progress commits at once,
// on its own goroutine; calls that arrive meanwhile are committed together in the next transaction
// (group commit), each in a savepoint of its own: a batch that conflicts rolls back alone, the others
// commit. SQLite serialises writers, so notification IDs are assigned in commit order and a reader never
// sees a lower ID appear after a higher one. Reads go through the pool; in WAL mode they neither wait
// for the writer nor hold it up.
//
// A ProcessRecorder is safe for concurrent use. Close it before closing the *sql.DB: database/sql does
// not close a connection that is in use, so the writer's connection would stay open (and writable)
// until Close. A *sql.DB from [Open] tells its recorders when it is closed: their writes then fail with
// database/sql's "database is closed", like their reads.
type ProcessRecorder struct {
	db     *sql.DB
	reads  *stmtCache
	q      *dbsqlc.Queries // reads, through the pool
	w      *writer
	cfg    config
	notify notifier

	closed    chan struct{}
	closeOnce sync.Once
}

// NewProcessRecorder returns a recorder on db, which must have been migrated with
// schema.Migrate(ctx, db, schema.SQLite): a missing table is reported here, as an error wrapping
// [ErrNotMigrated], rather than at the first write.
//
// The recorder keeps one connection of db's pool for writing until Close, sets its busy timeout and
// synchronous setting ([WithBusyTimeout], [WithSynchronous]) and switches a file database to WAL mode
// (it stays in WAL mode). db must allow at least two open connections: one for the writer, the others
// for reads.
func NewProcessRecorder(ctx context.Context, db *sql.DB, opts ...Option) (*ProcessRecorder, error) {
	const op = "new process recorder"
	cfg, reads, err := prepare(op, db, opts)
	if err != nil {
		return nil, err
	}
	r := &ProcessRecorder{db: db, reads: reads, q: dbsqlc.New(reads), cfg: cfg, closed: make(chan struct{})}
	if _, err := r.q.MaxNotificationID(ctx); err != nil {
		reads.close()
		return nil, opError(op, err)
	}
	if _, err := r.q.MaxTrackingID(ctx, ""); err != nil {
		reads.close()
		return nil, opError(op, err)
	}
	r.w, err = newWriter(ctx, db, cfg, insertEvents, r.notify.broadcast)
	if err != nil {
		reads.close()
		return nil, opError(op, err)
	}
	return r, nil
}

// prepare is what both constructors do first: check db and the options, and make the read side's
// statement cache.
func prepare(op string, db *sql.DB, opts []Option) (config, *stmtCache, error) {
	if db == nil {
		return config{}, nil, fmt.Errorf("sqlite: %s: nil *sql.DB", op)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return config{}, nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := checkPool(db); err != nil {
		return config{}, nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return cfg, newStmtCache(db), nil
}

// checkPool refuses a pool of one connection: the writer would hold it and every read would wait for
// it forever.
func checkPool(db *sql.DB) error {
	if n := db.Stats().MaxOpenConnections; n == 1 {
		return errors.New("the pool allows one open connection; the recorder keeps one for writing and reads through others: allow at least two (db.SetMaxOpenConns)")
	}
	return nil
}

// Close stops the writer goroutine after the transaction in progress, fails writes still queued with
// [ErrClosed], ends waiting subscriptions with ErrClosed, and gives the writer connection back to the
// pool with its pragmas restored. It does not close db. Calling it again does nothing.
func (r *ProcessRecorder) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.w.close()
		r.reads.close()
	})
	return nil
}

// InsertEvents records events atomically and returns their notification IDs in input order. A version
// recorded already for its originator, or appearing twice in events, fails the call with an error
// wrapping [eventsourcing.ErrConflict] and records nothing; so does a tracking record (see
// [eventsourcing.WithTracking]) whose ID is not above the application's mark. Events with the nil
// originator ID or a version below 1 are refused (an error that does not wrap ErrConflict), as every
// recorder of the module does.
//
// If ctx ends before the batch is written, nothing is written and the error wraps ctx's error. Once it
// is written, InsertEvents waits for the commit and reports its outcome.
func (r *ProcessRecorder) InsertEvents(ctx context.Context, events []eventsourcing.StoredEvent, opts ...eventsourcing.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := ctx.Err(); err != nil {
		return nil, opError(op, err)
	}
	o := eventsourcing.ApplyInsertOptions(opts...)
	if err := validate(events); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if len(events) == 0 && o.Tracking == nil {
		return []int64{}, nil
	}
	if t := o.Tracking; t != nil && t.NotificationID <= 0 {
		return nil, fmt.Errorf("sqlite: %s: tracking application %q notification %d: not above the mark (at least 0): %w", op, t.ApplicationName, t.NotificationID, eventsourcing.ErrConflict)
	}
	req := newRequest(ctx, events, o.Tracking)
	if err := r.w.submit(ctx, req); err != nil {
		return nil, opError(op, err)
	}
	if req.ids == nil {
		return []int64{}, nil
	}
	return req.ids, nil
}

// insertEvents is the ProcessRecorder's insertFunc.
func insertEvents(ctx context.Context, q *dbsqlc.Queries, r *request) error {
	ids := make([]int64, len(r.events))
	for i, e := range r.events {
		id, err := q.InsertEvent(ctx, dbsqlc.InsertEventParams{
			OriginatorID:      e.OriginatorID[:],
			OriginatorVersion: e.OriginatorVersion,
			Topic:             e.Topic,
			State:             e.State,
		})
		if err != nil {
			return eventError(i, e, err)
		}
		ids[i] = id
	}
	if t := r.tracking; t != nil {
		n, err := q.InsertTracking(ctx, dbsqlc.InsertTrackingParams{ApplicationName: t.ApplicationName, NotificationID: t.NotificationID})
		if err != nil {
			return fmt.Errorf("tracking application %q notification %d: %w", t.ApplicationName, t.NotificationID, err)
		}
		if n == 0 {
			return fmt.Errorf("tracking application %q notification %d: not above the mark: %w", t.ApplicationName, t.NotificationID, eventsourcing.ErrConflict)
		}
	}
	if r.run != nil {
		if err := runTracked(r.ctx, r.run); err != nil {
			return err
		}
	}
	r.ids = ids
	return nil
}

// eventError names the event an insert failed on; a uniqueness violation wraps ErrConflict.
func eventError(i int, e eventsourcing.StoredEvent, err error) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("event %d: originator %s version %d: %w: %w", i, e.OriginatorID, e.OriginatorVersion, eventsourcing.ErrConflict, err)
	}
	return fmt.Errorf("event %d: originator %s version %d: %w", i, e.OriginatorID, e.OriginatorVersion, err)
}

// validate refuses events no application produces, which other recorders of the module refuse too.
func validate(events []eventsourcing.StoredEvent) error {
	for i, e := range events {
		if e.OriginatorID == uuid.Nil {
			return fmt.Errorf("event %d (version %d): nil originator ID", i, e.OriginatorVersion)
		}
		if e.OriginatorVersion < 1 {
			return fmt.Errorf("event %d: originator %s version %d: versions start at 1", i, e.OriginatorID, e.OriginatorVersion)
		}
	}
	return nil
}

// SelectEvents returns the events of originatorID matching q (see [eventsourcing.EventQuery]); an
// unknown originator gives an empty result. A negative q.Limit is an error.
func (r *ProcessRecorder) SelectEvents(ctx context.Context, originatorID uuid.UUID, q eventsourcing.EventQuery) ([]eventsourcing.StoredEvent, error) {
	const op = "select events"
	if q.Limit < 0 {
		return nil, fmt.Errorf("sqlite: %s: limit %d: must be >= 0 (0: all)", op, q.Limit)
	}
	after, upTo, limit := eventBounds(q)
	var out []eventsourcing.StoredEvent
	if q.Desc {
		rows, err := r.q.SelectEventsDesc(ctx, dbsqlc.SelectEventsDescParams{OriginatorID: originatorID[:], After: after, UpTo: upTo, Lim: limit})
		if err != nil {
			return nil, opError(op, err)
		}
		out = storedEvents(originatorID, rows)
	} else {
		rows, err := r.q.SelectEvents(ctx, dbsqlc.SelectEventsParams{OriginatorID: originatorID[:], After: after, UpTo: upTo, Lim: limit})
		if err != nil {
			return nil, opError(op, err)
		}
		out = storedEvents(originatorID, rows)
	}
	return out, nil
}

// eventRow is every row type sqlc generates for the events and snapshots queries: one type per query,
// all with the same fields, so one conversion serves them all.
type eventRow interface {
	dbsqlc.SelectEventsRow | dbsqlc.SelectEventsDescRow | dbsqlc.SelectSnapshotsRow | dbsqlc.SelectSnapshotsDescRow
}

func storedEvents[R eventRow](id uuid.UUID, rows []R) []eventsourcing.StoredEvent {
	out := make([]eventsourcing.StoredEvent, len(rows))
	for i, row := range rows {
		e := dbsqlc.SelectEventsRow(row)
		out[i] = eventsourcing.StoredEvent{OriginatorID: id, OriginatorVersion: e.OriginatorVersion, Topic: e.Topic, State: e.State}
	}
	return out
}

// eventBounds turns an EventQuery into the queries' parameters: no upper bound is max int64, no limit
// is -1 (SQLite's "no limit").
func eventBounds(q eventsourcing.EventQuery) (after, upTo, limit int64) {
	upTo = q.UpTo
	if upTo == 0 {
		upTo = math.MaxInt64
	}
	limit = int64(q.Limit)
	if limit == 0 {
		limit = -1
	}
	return q.After, upTo, limit
}

// SelectNotifications returns a page of the notification log (see [eventsourcing.NotificationQuery]).
// q.Limit < 1 is an error.
func (r *ProcessRecorder) SelectNotifications(ctx context.Context, q eventsourcing.NotificationQuery) ([]eventsourcing.Notification, error) {
	const op = "select notifications"
	if q.Limit < 1 {
		return nil, fmt.Errorf("sqlite: %s: limit %d: must be >= 1", op, q.Limit)
	}
	ns, err := r.selectNotifications(ctx, q.After, q.UpTo, q.Limit, q.Topics)
	if err != nil {
		return nil, opError(op, err)
	}
	return ns, nil
}

func (r *ProcessRecorder) selectNotifications(ctx context.Context, after, upTo int64, limit int, topics []string) ([]eventsourcing.Notification, error) {
	if upTo == 0 {
		upTo = math.MaxInt64
	}
	var rows []dbsqlc.Event
	var err error
	if len(topics) == 0 {
		rows, err = r.q.SelectNotifications(ctx, dbsqlc.SelectNotificationsParams{After: after, UpTo: upTo, Lim: int64(limit)})
	} else {
		rows, err = r.q.SelectNotificationsByTopics(ctx, dbsqlc.SelectNotificationsByTopicsParams{
			NotificationID: after, NotificationID_2: upTo, Topics: topics, Limit: int64(limit),
		})
	}
	if err != nil {
		return nil, err
	}
	out := make([]eventsourcing.Notification, len(rows))
	for i, row := range rows {
		id, err := originatorID(row.OriginatorID)
		if err != nil {
			return nil, fmt.Errorf("notification %d: %w", row.NotificationID, err)
		}
		out[i] = eventsourcing.Notification{ID: row.NotificationID, StoredEvent: eventsourcing.StoredEvent{
			OriginatorID: id, OriginatorVersion: row.OriginatorVersion, Topic: row.Topic, State: row.State,
		}}
	}
	return out, nil
}

// originatorID converts a stored ID; the table's CHECK makes a wrong length impossible short of
// writing to the file by other means.
func originatorID(b []byte) (uuid.UUID, error) {
	var id uuid.UUID
	if len(b) != len(id) {
		return id, fmt.Errorf("originator ID of %d bytes, want %d", len(b), len(id))
	}
	copy(id[:], b)
	return id, nil
}

// MaxNotificationID returns the highest notification ID recorded, 0 on an empty store.
func (r *ProcessRecorder) MaxNotificationID(ctx context.Context) (int64, error) {
	id, err := r.q.MaxNotificationID(ctx)
	if err != nil {
		return 0, opError("max notification ID", err)
	}
	return id, nil
}

// InsertTracking raises the mark of t.ApplicationName to t.NotificationID. An ID at or below the mark
// fails with an error wrapping [eventsourcing.ErrConflict]. It goes through the writer like
// InsertEvents.
func (r *ProcessRecorder) InsertTracking(ctx context.Context, t eventsourcing.Tracking) error {
	const op = "insert tracking"
	if err := ctx.Err(); err != nil {
		return opError(op, err)
	}
	if t.NotificationID <= 0 {
		return fmt.Errorf("sqlite: %s: application %q notification %d: not above the mark (at least 0): %w", op, t.ApplicationName, t.NotificationID, eventsourcing.ErrConflict)
	}
	if err := r.w.submit(ctx, newRequest(ctx, nil, &t)); err != nil {
		return opError(op, err)
	}
	return nil
}

// Tx is what ProcessTracked's function writes through: the methods of *sql.Tx and *sql.Conn that
// sqlc's generated code (and most hand-written code) uses. It is an alias of an interface literal, so
// that functions written against projection.SQLTx, or any identical alias, fit.
type Tx = interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ProcessTracked records t and runs fn in the same transaction, so that a projection's read-model
// changes and the position it has reached commit together or not at all (see package projection). If
// t is not above the application's mark, it fails with an error wrapping [eventsourcing.ErrConflict]
// before fn runs. If fn fails or panics, nothing of it nor of t is written and the error (or the
// panic, as an error) is returned.
//
// fn runs on the recorder's writer connection, inside a transaction that may also hold other callers'
// appends (group commit): it must not begin, commit or roll back transactions itself, and while it
// runs no other write of this recorder proceeds, so keep it short. The read model's tables belong in
// the same database as the recorder's tracking table.
func (r *ProcessRecorder) ProcessTracked(ctx context.Context, t eventsourcing.Tracking, fn func(ctx context.Context, tx Tx) error) error {
	const op = "process tracked"
	if err := ctx.Err(); err != nil {
		return opError(op, err)
	}
	if fn == nil {
		return fmt.Errorf("sqlite: %s: nil function", op)
	}
	if t.NotificationID <= 0 {
		return fmt.Errorf("sqlite: %s: application %q notification %d: not above the mark (at least 0): %w", op, t.ApplicationName, t.NotificationID, eventsourcing.ErrConflict)
	}
	req := newRequest(ctx, nil, &t)
	conn := r.w.conn
	req.run = func(ctx context.Context) error { return fn(ctx, conn) }
	if err := r.w.submit(ctx, req); err != nil {
		return opError(op, err)
	}
	return nil
}

// runTracked runs a ProcessTracked function, turning a panic into an error so that the writer rolls
// its work back instead of dying with the transaction open.
func runTracked(ctx context.Context, run func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("tracked function panicked: %v", p)
		}
	}()
	if err := run(ctx); err != nil {
		return fmt.Errorf("tracked function: %w", err)
	}
	// Like *sql.Tx, whose Commit fails once its context has ended: the caller has given up, so its
	// work must not commit behind its back.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tracked function: %w", err)
	}
	return nil
}

// MaxTrackingID returns the mark of applicationName, 0 when nothing is tracked.
func (r *ProcessRecorder) MaxTrackingID(ctx context.Context, applicationName string) (int64, error) {
	id, err := r.q.MaxTrackingID(ctx, applicationName)
	if err != nil {
		return 0, opError("max tracking ID", err)
	}
	return id, nil
}

// HasTrackingID reports whether the mark of applicationName is at or above notificationID.
func (r *ProcessRecorder) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	id, err := r.q.MaxTrackingID(ctx, applicationName)
	if err != nil {
		return false, opError("has tracking ID", err)
	}
	return id >= notificationID, nil
}

// Subscribe yields every notification with ID > after (only those of topics, when given) in ID order,
// exactly once: first the history, read in pages of 500, then new events as they commit. It blocks
// while caught up, and wakes at once when this recorder commits events, or after the poll interval
// ([WithPollInterval]) for events committed by other processes or recorders. SQLite serialises writers,
// so IDs become visible in order and reading on from the last ID seen never skips one.
//
// It ends without an error when ctx ends or the loop breaks; an error (after it is yielded) ends it
// too, as does Close, with an error wrapping [ErrClosed]. It starts no goroutine and holds one page at
// most.
func (r *ProcessRecorder) Subscribe(ctx context.Context, after int64, topics ...string) iter.Seq2[eventsourcing.Notification, error] {
	topics = slices.Clone(topics)
	return func(yield func(eventsourcing.Notification, error) bool) {
		last := max(after, 0)
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		for {
			// Take the wake-up channel before reading, so that a commit between the read and the wait
			// is not missed.
			wake := r.notify.wait()
			page, err := r.selectNotifications(ctx, last, 0, subscribePage, topics)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				yield(eventsourcing.Notification{}, opError("subscribe", err))
				return
			}
			for _, n := range page {
				if ctx.Err() != nil {
					return
				}
				if !yield(n, nil) {
					return
				}
				last = n.ID
			}
			if len(page) == subscribePage {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(r.cfg.pollInterval)
			} else {
				timer.Reset(r.cfg.pollInterval)
			}
			select {
			case <-ctx.Done():
				return
			case <-r.closed:
				yield(eventsourcing.Notification{}, fmt.Errorf("sqlite: subscribe: %w", ErrClosed))
				return
			case <-wake:
			case <-timer.C:
			}
		}
	}
}

// notifier wakes subscriptions after a commit: a channel closed and replaced on each broadcast, made
// only when somebody waits.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

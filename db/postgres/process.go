package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/google/uuid"
)

// ProcessRecorder is the recorder of an application on PostgreSQL: its events, its notification log,
// and the tracking marks of the upstream notifications it has processed. It is safe for concurrent use
// by any number of goroutines and processes.
//
// An append is one round trip: one call of the events_append function, which is its own transaction.
// The notification log has no late fills under either [Ordering].
type ProcessRecorder struct {
	base
	ordering     Ordering
	lockTimeout  sql.NullString
	pollInterval time.Duration
	logger       *slog.Logger

	// Wake-ups for subscriptions: committed appends of this recorder wake its subscriptions directly
	// and, through the notifier, those of other processes; the listener relays other processes'.
	wake      signal
	kick      chan struct{} // to the notifier; capacity 1, so bursts of appends coalesce
	life      context.Context
	stop      context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex // guards listening and closed, so that no goroutine starts after Close
	listening bool
	closed    bool
	channel   string // LISTEN/NOTIFY channel, shared by all schemas
	payload   string // the schema name, so that other schemas' notifications can be ignored
}

var _ eventsourcing.ProcessRecorder = (*ProcessRecorder)(nil)

// notifyChannel is the LISTEN/NOTIFY channel of every recorder; the payload names the schema.
const notifyChannel = "eventsourcing_events"

// NewProcessRecorder returns a recorder on db. It checks that the database answers and that the
// schema has been migrated (see schema.Migrate), so that a wrong DSN, an unreachable server or a
// forgotten migration fail here with a clear error rather than at the first append. It also records
// the ordering in the schema on first use, and refuses an ordering other than the recorded one.
//
// Close the recorder to stop its background goroutines; db stays open.
func NewProcessRecorder(ctx context.Context, db *sql.DB, opts ...Option) (*ProcessRecorder, error) {
	const op = "new process recorder"
	cfg := newConfig(opts)
	if cfg.ordering != OrderingDefault && cfg.ordering != OrderingXID && cfg.ordering != OrderingTableLock {
		return nil, fmt.Errorf("postgres: %s: unknown ordering %v", op, cfg.ordering)
	}
	if cfg.lockTimeout < 0 {
		return nil, fmt.Errorf("postgres: %s: negative lock timeout %v", op, cfg.lockTimeout)
	}
	b, err := newBase(ctx, db, op, cfg)
	if err != nil {
		return nil, err
	}
	ordering, err := claimOrdering(ctx, &b, cfg.ordering)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	r := &ProcessRecorder{
		base:         b,
		ordering:     ordering,
		pollInterval: cfg.pollInterval,
		logger:       cfg.logger,
		kick:         make(chan struct{}, 1),
		channel:      notifyChannel,
		payload:      cfg.schema,
	}
	if cfg.lockTimeout > 0 {
		ms := max(cfg.lockTimeout.Milliseconds(), 1)
		r.lockTimeout = sql.NullString{String: strconv.FormatInt(ms, 10) + "ms", Valid: true}
	}
	r.life, r.stop = context.WithCancel(context.Background())
	r.wg.Go(r.notifier)
	return r, nil
}

// claimOrdering records want as the schema's ordering unless one is recorded, and returns the
// recorded one; OrderingDefault takes whatever is recorded (OrderingXID on a new schema).
func claimOrdering(ctx context.Context, b *base, want Ordering) (Ordering, error) {
	claim := want
	if claim == OrderingDefault {
		claim = OrderingXID
	}
	var recorded string
	var err error
	// Two recorders racing on a new schema: the loser's insert does nothing and its statement's
	// snapshot may predate the winner's row, so it finds no row at all; the next attempt sees it.
	for range 3 {
		recorded, err = b.q.ClaimOrdering(ctx, claim.String())
		if !errors.Is(err, sql.ErrNoRows) {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("record the ordering: %w", err)
	}
	got, ok := parseOrdering(recorded)
	if !ok {
		return 0, fmt.Errorf("%s records the unknown ordering %q", b.describeSchema(), recorded)
	}
	if want != OrderingDefault && got != want {
		return 0, fmt.Errorf("%w: %s records ordering %v, the recorder asks for %v; all recorders of a schema must use "+
			"one ordering (to change it, stop every process using the schema and update its recorder_settings row)",
			ErrOrderingMismatch, b.describeSchema(), got, want)
	}
	return got, nil
}

// Ordering returns the notification ordering in use.
func (r *ProcessRecorder) Ordering() Ordering { return r.ordering }

// Close stops the recorder's background goroutines (the notifier and, once something has subscribed,
// the listener) and waits for them. Subscriptions still running fall back to polling. It does not close
// the *sql.DB. Calling it again does nothing.
func (r *ProcessRecorder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.stop()
	r.wg.Wait()
	return nil
}

// InsertEvents records events atomically, with the tracking record of WithTracking if given, in one
// round trip. The returned notification IDs are consecutive, in input order.
func (r *ProcessRecorder) InsertEvents(ctx context.Context, events []eventsourcing.StoredEvent, opts ...eventsourcing.InsertOption) ([]int64, error) {
	const op = "insert events"
	o := eventsourcing.ApplyInsertOptions(opts...)
	if len(events) == 0 && o.Tracking == nil {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", op, err)
		}
		return []int64{}, nil
	}
	cols, err := newColumns(op, events)
	if err != nil {
		return nil, err
	}
	first, err := r.append(ctx, r.q, cols, o.Tracking)
	if err != nil {
		return nil, wrap(op, err)
	}
	ids := make([]int64, len(events))
	for i := range ids {
		ids[i] = first + int64(i)
	}
	if len(events) > 0 {
		r.committed()
	}
	return ids, nil
}

// append calls events_append through q: the recorder's queries, or a transaction's (ProcessTracked).
func (r *ProcessRecorder) append(ctx context.Context, q *dbsqlc.Queries, cols columns, t *eventsourcing.Tracking) (int64, error) {
	p := dbsqlc.AppendEventsParams{
		Ordering:      r.ordering.String(),
		LockTimeout:   r.lockTimeout,
		OriginatorIds: cols.ids,
		Versions:      cols.versions,
		Topics:        cols.topics,
		States:        cols.states,
	}
	if t != nil {
		p.TrackingApp = sql.NullString{String: t.ApplicationName, Valid: true}
		p.TrackingID = sql.NullInt64{Int64: t.NotificationID, Valid: true}
	}
	return q.AppendEvents(ctx, p)
}

// SelectEvents returns events of one originator.
func (r *ProcessRecorder) SelectEvents(ctx context.Context, originatorID uuid.UUID, q eventsourcing.EventQuery) ([]eventsourcing.StoredEvent, error) {
	const op = "select events"
	upTo, limit, err := eventBounds(op, q)
	if err != nil {
		return nil, err
	}
	if q.Desc {
		rows, err := r.q.SelectEventsDesc(ctx, dbsqlc.SelectEventsDescParams{OriginatorID: originatorID, After: q.After, UpTo: upTo, Lim: limit})
		if err != nil {
			return nil, wrap(op, err)
		}
		return toEvents(originatorID, rows), nil
	}
	rows, err := r.q.SelectEvents(ctx, dbsqlc.SelectEventsParams{OriginatorID: originatorID, After: q.After, UpTo: upTo, Lim: limit})
	if err != nil {
		return nil, wrap(op, err)
	}
	return toEvents(originatorID, rows), nil
}

// SelectNotifications returns a page of the notification log. With OrderingXID it returns only
// notifications no older transaction can still precede (see [OrderingXID]).
func (r *ProcessRecorder) SelectNotifications(ctx context.Context, q eventsourcing.NotificationQuery) ([]eventsourcing.Notification, error) {
	const op = "select notifications"
	if q.Limit < 1 {
		return nil, fmt.Errorf("postgres: %s: limit %d: must be at least 1", op, q.Limit)
	}
	ns, err := r.selectNotifications(ctx, q)
	if err != nil {
		return nil, wrap(op, err)
	}
	return ns, nil
}

func (r *ProcessRecorder) selectNotifications(ctx context.Context, q eventsourcing.NotificationQuery) ([]eventsourcing.Notification, error) {
	upTo := q.UpTo
	if upTo == 0 {
		upTo = math.MaxInt64
	}
	limit := int32(min(q.Limit, math.MaxInt32))
	switch {
	case r.ordering == OrderingXID:
		p := dbsqlc.SelectNotificationsXIDParams{After: q.After, UpTo: upTo, Lim: limit}
		if len(q.Topics) > 0 {
			p.Topics = q.Topics
		}
		rows, err := r.q.SelectNotificationsXID(ctx, p)
		return toNotifications(rows), err
	case len(q.Topics) == 0:
		rows, err := r.q.SelectNotifications(ctx, dbsqlc.SelectNotificationsParams{After: q.After, UpTo: upTo, Lim: limit})
		return toNotifications(rows), err
	default:
		rows, err := r.q.SelectNotificationsByTopics(ctx, dbsqlc.SelectNotificationsByTopicsParams{After: q.After, UpTo: upTo, Topics: q.Topics, Lim: limit})
		return toNotifications(rows), err
	}
}

// notificationRow is the shape of every generated SelectNotifications-like row type.
type notificationRow = struct {
	NotificationID    int64
	OriginatorID      uuid.UUID
	OriginatorVersion int64
	Topic             string
	State             []byte
}

func toNotifications[R ~notificationRow](rows []R) []eventsourcing.Notification {
	out := make([]eventsourcing.Notification, len(rows))
	for i, row := range rows {
		r := notificationRow(row)
		out[i] = eventsourcing.Notification{
			ID: r.NotificationID,
			StoredEvent: eventsourcing.StoredEvent{
				OriginatorID:      r.OriginatorID,
				OriginatorVersion: r.OriginatorVersion,
				Topic:             r.Topic,
				State:             r.State,
			},
		}
	}
	return out
}

// MaxNotificationID returns the highest notification ID a reader can see (0 when there is none).
func (r *ProcessRecorder) MaxNotificationID(ctx context.Context) (int64, error) {
	id, err := r.maxNotificationID(ctx)
	if err != nil {
		return 0, wrap("max notification ID", err)
	}
	return id, nil
}

func (r *ProcessRecorder) maxNotificationID(ctx context.Context) (int64, error) {
	if r.ordering == OrderingXID {
		return r.q.MaxNotificationIDXID(ctx)
	}
	return r.q.MaxNotificationID(ctx)
}

// noEvents is an append of tracking only (the arrays are empty, not NULL).
var noEvents = columns{ids: [][16]byte{}, versions: []int64{}, topics: []string{}, states: [][]byte{}}

// InsertTracking raises the mark of t.ApplicationName to t.NotificationID; an ID at or below the mark
// fails with an error wrapping eventsourcing.ErrConflict.
func (r *ProcessRecorder) InsertTracking(ctx context.Context, t eventsourcing.Tracking) error {
	if _, err := r.append(ctx, r.q, noEvents, &t); err != nil {
		return wrap("insert tracking", err)
	}
	return nil
}

// MaxTrackingID returns the mark of applicationName, 0 when nothing is tracked.
func (r *ProcessRecorder) MaxTrackingID(ctx context.Context, applicationName string) (int64, error) {
	id, err := r.q.MaxTrackingID(ctx, applicationName)
	if err != nil {
		return 0, wrap("max tracking ID", err)
	}
	return id, nil
}

// HasTrackingID reports whether the mark of applicationName is at or above notificationID.
func (r *ProcessRecorder) HasTrackingID(ctx context.Context, applicationName string, notificationID int64) (bool, error) {
	id, err := r.q.MaxTrackingID(ctx, applicationName)
	if err != nil {
		return false, wrap("has tracking ID", err)
	}
	return id >= notificationID, nil
}

// Package recorder holds what the module's recorders (memory, SQLite and PostgreSQL) share: the check of
// events before they are written, the wake-up of subscriptions, the running of a tracked transaction's
// function, and the size of a subscription's page.
package recorder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// SubscribePage is how many notifications a subscription reads (or copies out of memory) at a time:
// large enough that catching up is not dominated by round trips, small enough to bound what a
// subscription holds.
const SubscribePage = 500

// ValidateEvents refuses events that no application produces and that would behave differently on
// different recorders: the nil originator ID and versions below 1. Its errors do not wrap
// es.ErrConflict.
func ValidateEvents(events []es.StoredEvent) error {
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

// CheckEventQuery reports what makes q no query for SelectEvents: a negative limit (0 is no limit).
func CheckEventQuery(q es.EventQuery) error {
	if q.Limit < 0 {
		return fmt.Errorf("limit %d: must not be negative (0: all)", q.Limit)
	}
	return nil
}

// CheckNotificationQuery reports what makes q no query for SelectNotifications: a limit below 1 (a
// page of the log always has a bound).
func CheckNotificationQuery(q es.NotificationQuery) error {
	if q.Limit < 1 {
		return fmt.Errorf("limit %d: must be at least 1", q.Limit)
	}
	return nil
}

// Broadcast wakes every waiter at once: a waiter takes the current channel with Wait before it looks
// for news, and Notify closes that channel. Taking the channel first means a Notify between the look
// and the wait is not missed. The channel is made only when somebody waits. The zero value is ready.
type Broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// Wait returns the channel that the next Notify closes.
func (b *Broadcast) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return made(&b.ch)
}

// made returns *ch, making it first when it is nil, so that zero values need no constructor; the
// caller holds the lock that guards *ch.
func made(ch *chan struct{}) chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

// Notify wakes everybody waiting.
func (b *Broadcast) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// RunTracked runs fn, the function a projection gives a tracked transaction, and returns an error
// unless it returned normally while ctx was live: a panic becomes an error, so that the recorder rolls
// the transaction back instead of leaving it open; and, like a *sql.Tx, whose Commit fails once its
// context has ended, work whose caller has given up must not commit behind its back.
func RunTracked(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("tracked function panicked: %v", p)
		}
	}()
	if err := fn(ctx); err != nil {
		return fmt.Errorf("tracked function: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tracked function: %w", err)
	}
	return nil
}

// Life is the open or closed state of a recorder, so that every recorder closes alike: Close marks it
// closed once, after which Err returns es.ErrClosed and Done is closed (which ends the subscriptions
// waiting on it). The zero value is open. Err costs one atomic load, so every call can check it.
type Life struct {
	closed atomic.Bool
	mu     sync.Mutex
	done   chan struct{}
}

// Close marks the recorder closed and reports whether this call did (false when it was closed
// already).
func (l *Life) Close() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return false
	}
	l.closed.Store(true)
	close(made(&l.done))
	return true
}

// Done returns a channel that is closed when the recorder is.
func (l *Life) Done() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return made(&l.done)
}

// Err returns nil while the recorder is open, and es.ErrClosed once it is closed.
func (l *Life) Err() error {
	if l.closed.Load() {
		return es.ErrClosed
	}
	return nil
}

// ValidateTracking refuses a tracking record that can never be recorded: a new mark that is not above
// the prior one wraps es.ErrConflict (marks never go back); a negative prior mark is an error.
func ValidateTracking(t es.Tracking) error {
	switch {
	case t.Prior < 0:
		return fmt.Errorf("tracking consumer %q upstream %q: prior mark %d: marks are never negative", t.Consumer, t.Upstream, t.Prior)
	case t.NotificationID <= t.Prior:
		return fmt.Errorf("tracking consumer %q upstream %q: notification %d is not above the prior mark %d: %w",
			t.Consumer, t.Upstream, t.NotificationID, t.Prior, es.ErrConflict)
	}
	return nil
}

// MarkConflict is the error of a tracking record whose prior mark is not the recorded one: the
// compare-and-set of es.Tracking failed.
func MarkConflict(t es.Tracking, mark int64) error {
	return fmt.Errorf("tracking consumer %q upstream %q: the mark is %d, not the prior mark %d: %w",
		t.Consumer, t.Upstream, mark, t.Prior, es.ErrConflict)
}

// TrackingKey identifies a tracking mark.
type TrackingKey struct{ Consumer, Upstream string }

// Marks are tracking marks in memory, for the memory recorder and projection.MemoryStore. They are
// not safe for concurrent use: their owner's lock guards them. The zero value is empty.
type Marks map[TrackingKey]int64

// Check returns nil when t can be recorded: t is valid and its prior mark is the recorded one.
func (m Marks) Check(t es.Tracking) error {
	if err := ValidateTracking(t); err != nil {
		return err
	}
	if mark := m[TrackingKey{t.Consumer, t.Upstream}]; mark != t.Prior {
		return MarkConflict(t, mark)
	}
	return nil
}

// Sorted returns the marks ordered by consumer and upstream, as es.TrackingRecorder.TrackingMarks does.
func (m Marks) Sorted() []es.Tracking {
	out := make([]es.Tracking, 0, len(m))
	for k, id := range m {
		out = append(out, es.Tracking{Consumer: k.Consumer, Upstream: k.Upstream, NotificationID: id})
	}
	slices.SortFunc(out, func(a, b es.Tracking) int {
		return cmp.Or(cmp.Compare(a.Consumer, b.Consumer), cmp.Compare(a.Upstream, b.Upstream))
	})
	return out
}

// RefuseTracking returns the error of an append given es.WithTracking in opts on a recorder that keeps
// no tracking records, such as a snapshot store's (what names it, as "a SnapshotRecorder"); nil when
// opts give none. It wraps errors.ErrUnsupported.
func RefuseTracking(what string, opts []es.InsertOption) error {
	if t := es.ApplyInsertOptions(opts...).Tracking; t != nil {
		return fmt.Errorf("tracking (consumer %q, upstream %q) given to %s, which keeps no tracking records: %w", t.Consumer, t.Upstream, what, errors.ErrUnsupported)
	}
	return nil
}

// markRow is the shape of the rows of the dialects' generated TrackingMarks queries.
type markRow = struct {
	Consumer       string
	Upstream       string
	NotificationID int64
}

// TrackingMarks turns the rows of a dialect's TrackingMarks query into marks.
func TrackingMarks[R ~markRow](rows []R) []es.Tracking {
	out := make([]es.Tracking, len(rows))
	for i, row := range rows {
		r := markRow(row)
		out[i] = es.Tracking{Consumer: r.Consumer, Upstream: r.Upstream, NotificationID: r.NotificationID}
	}
	return out
}

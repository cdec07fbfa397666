// Package recorder holds what the module's recorders (memory, SQLite and PostgreSQL) share: the check of
// events before they are written, the wake-up of subscriptions, the running of a tracked transaction's
// function, and the size of a subscription's page.
package recorder

import (
	"context"
	"fmt"
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
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
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
	if l.done == nil {
		l.done = make(chan struct{})
	}
	close(l.done)
	return true
}

// Done returns a channel that is closed when the recorder is.
func (l *Life) Done() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	return l.done
}

// Err returns nil while the recorder is open, and es.ErrClosed once it is closed.
func (l *Life) Err() error {
	if l.closed.Load() {
		return es.ErrClosed
	}
	return nil
}

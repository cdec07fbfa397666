package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
)

// Subscribe yields every notification with ID > after (restricted to topics, when given) in ID order,
// exactly once: first the history, page by page, then live as appends commit, until ctx ends.
//
// A caught-up subscription waits for a wake-up: an append by this recorder, a PostgreSQL notification
// from another process's recorder (LISTEN/NOTIFY on a dedicated connection, with the pgx stdlib
// driver, on a primary), or the poll interval (WithPollInterval), whichever comes first. Polling
// covers notifications that are lost, a listener connection that is being reopened, other drivers,
// standbys, and rows that the xid ordering held back. What is read is what SelectNotifications returns, so the
// ordering's guarantee (no late fills) is the subscription's: it never skips.
//
// A read that fails on a broken connection (a terminated backend, a server restart, crash recovery, a
// failover) or that a hot standby cancelled for a conflict with recovery is retried with growing
// pauses for up to the reconnect timeout ([WithReconnectTimeout]), since reads can be repeated at
// will; any other query error, or one that outlasts the timeout, is yielded and ends the sequence. The end of ctx ends it without an error; Close ends it with an error
// wrapping es.ErrClosed.
func (r *ProcessRecorder) Subscribe(ctx context.Context, after int64, topics ...string) iter.Seq2[es.Notification, error] {
	topics = append([]string(nil), topics...)
	return func(yield func(es.Notification, error) bool) {
		if ctx.Err() != nil {
			return
		}
		r.startListener()
		ticker := time.NewTicker(r.pollInterval)
		defer ticker.Stop()
		for {
			if err := r.life.Err(); err != nil {
				yield(es.Notification{}, opError("subscribe", err))
				return
			}
			// Take the wake-up channel before reading, so that a commit during the read wakes the wait.
			woken := r.wake.Wait()
			q := es.NotificationQuery{After: after, Limit: recorder.SubscribePage, Topics: topics}
			var horizon int64
			if len(topics) > 0 {
				// With a topic filter, matching rows may be rare: without an upper bound each poll would
				// rescan every non-matching row after the cursor. Everything up to the highest ID a reader
				// can see now is final (no late fills), and a read up to it returns every row up to it, so
				// once that read comes back short, the cursor moves there.
				var err error
				if horizon, err = retry(ctx, r, func() (int64, error) { return r.maxNotificationID(ctx) }); err != nil {
					r.yieldErr(ctx, yield, err)
					return
				}
				if horizon <= after {
					if !r.idle(ctx, woken, ticker) {
						return
					}
					continue
				}
				q.UpTo = horizon
			}
			page, err := retry(ctx, r, func() ([]es.Notification, error) { return r.selectNotifications(ctx, q) })
			if err != nil {
				r.yieldErr(ctx, yield, err)
				return
			}
			for _, n := range page {
				if !yield(n, nil) {
					return
				}
				after = n.ID
			}
			if len(page) == recorder.SubscribePage {
				continue // more history
			}
			if horizon > after {
				after = horizon
			}
			if !r.idle(ctx, woken, ticker) {
				return
			}
		}
	}
}

// Pauses between the attempts of a read that failed on a broken connection: the first, doubled after
// each failed attempt up to the longest.
const (
	firstReconnectPause = 50 * time.Millisecond
	maxReconnectPause   = time.Second
)

// retry calls read until it succeeds or fails otherwise than transiently (see transient), for at most
// the recorder's reconnect timeout (WithReconnectTimeout) from the first failure, with growing pauses.
// Reads can be repeated at will, and database/sql discards a broken connection, so each attempt gets a
// fresh one.
func retry[T any](ctx context.Context, r *ProcessRecorder, read func() (T, error)) (T, error) {
	v, err := read()
	if err == nil || !transient(err) || ctx.Err() != nil {
		return v, err
	}
	if r.reconnectTimeout == 0 {
		return v, fmt.Errorf("transient failure (WithReconnectTimeout(0): no retries): %w", err)
	}
	r.logger.Warn("postgres recorder: a subscription's read failed on a broken connection or a conflict with recovery; retrying",
		"schema", r.schema, "reconnect_timeout", r.reconnectTimeout, "error", err)
	deadline := time.Now().Add(r.reconnectTimeout)
	pause := firstReconnectPause
	for attempt := 2; ; attempt++ {
		wait := min(pause, time.Until(deadline))
		if wait <= 0 {
			return v, fmt.Errorf("transient failure, retried for %v (WithReconnectTimeout): %w", r.reconnectTimeout, err)
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-r.life.Done():
			return v, err
		case <-time.After(wait):
		}
		v, err = read()
		switch {
		case err == nil:
			r.logger.Debug("postgres recorder: a subscription's read succeeded again", "schema", r.schema, "attempt", attempt)
			return v, nil
		case !transient(err) || ctx.Err() != nil:
			return v, err
		}
		r.logger.Debug("postgres recorder: a subscription's read failed again; retrying",
			"schema", r.schema, "attempt", attempt, "error", err)
		pause = min(2*pause, maxReconnectPause)
	}
}

// transient reports whether a read that failed with err may succeed if it is repeated: the connection
// broke (see brokenConnection), or the server cancelled the read for a serialization failure (SQLSTATE
// 40001), which is how a hot standby cancels queries that conflict with the recovery it replays (rows
// that vacuum on the primary removed, locks it took), however short they are.
func transient(err error) bool {
	const sqlstateSerializationFailure = "40001"
	return brokenConnection(err) || sqlState(err) == sqlstateSerializationFailure
}

// brokenConnection reports whether err means the connection, not the query, failed: an error that is
// not the server's (no SQLSTATE: no answer at all), or a connection exception or shutdown (SQLSTATE
// class 08, 57P01–57P03).
func brokenConnection(err error) bool {
	switch code := sqlState(err); {
	case code == "":
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	default:
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
	}
}

// yieldErr yields err unless it is only the end of ctx.
func (r *ProcessRecorder) yieldErr(ctx context.Context, yield func(es.Notification, error) bool, err error) {
	if ctx.Err() != nil {
		return
	}
	yield(es.Notification{}, opError("subscribe", err))
}

// idle waits for a wake-up, the next tick or Close; false means ctx has ended.
func (r *ProcessRecorder) idle(ctx context.Context, woken <-chan struct{}, ticker *time.Ticker) bool {
	select {
	case <-ctx.Done():
		return false
	case <-r.life.Done(): // reported at the top of the loop
		return true
	case <-woken:
		return true
	case <-ticker.C:
		return true
	}
}

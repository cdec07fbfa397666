package postgres

import (
	"context"
	"errors"
	"iter"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
)

// Subscribe yields every notification with ID > after (restricted to topics, when given) in ID order,
// exactly once: first the history, page by page, then live as appends commit, until ctx ends.
//
// A caught-up subscription waits for a wake-up: an append by this recorder, a PostgreSQL notification
// from another process's recorder (LISTEN/NOTIFY on a dedicated connection, with the pgx stdlib
// driver), or the poll interval (WithPollInterval), whichever comes first. Polling
// covers notifications that are lost, a listener connection that is being reopened, other drivers, and
// rows that the xid ordering held back. What is read is what SelectNotifications returns, so the
// ordering's guarantee (no late fills) is the subscription's: it never skips.
//
// A broken connection (a terminated backend, a server restart) is retried a few times, since reads can
// be repeated at will; any other query error, or one that persists, is yielded and ends the sequence.
// The end of ctx ends it without an error.
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
				// can see now is final (no late fills), so once a read up to it comes back short, the cursor
				// moves there.
				var err error
				if horizon, err = retry(ctx, r.pollInterval, func() (int64, error) { return r.maxNotificationID(ctx) }); err != nil {
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
			page, err := retry(ctx, r.pollInterval, func() ([]es.Notification, error) { return r.selectNotifications(ctx, q) })
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

// subscribeRetries is how many times a subscription repeats a read that failed on a broken connection.
const subscribeRetries = 5

// retry calls read until it succeeds, fails otherwise than on a broken connection, or has failed
// subscribeRetries times, waiting pause (at most a second) between calls. database/sql discards a
// broken connection, so the next call gets a fresh one.
func retry[T any](ctx context.Context, pause time.Duration, read func() (T, error)) (T, error) {
	pause = min(pause, time.Second)
	for attempt := 1; ; attempt++ {
		v, err := read()
		if err == nil || attempt == subscribeRetries || !brokenConnection(err) || ctx.Err() != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(pause):
		}
	}
}

// brokenConnection reports whether err means the connection, not the query, failed: no answer from the
// server at all, or a connection exception or shutdown (SQLSTATE class 08, 57P01–57P03).
func brokenConnection(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
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

package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"time"

	"github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres/internal/dbsqlc"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// subscribePage is how many notifications a subscription reads per query: its memory bound.
const subscribePage = 500

// Subscribe yields every notification with ID > after (restricted to topics, when given) in ID order,
// exactly once: first the history, page by page, then live as appends commit, until ctx ends.
//
// A caught-up subscription waits for a wake-up: an append by this recorder, a PostgreSQL notification
// from another process's recorder (LISTEN/NOTIFY on a dedicated connection, with the pgx stdlib
// driver), or the poll interval (WithPollInterval, 100 ms by default), whichever comes first. Polling
// covers notifications that are lost, a listener connection that is being reopened, other drivers, and
// rows that the xid ordering held back. What is read is what SelectNotifications returns, so the
// ordering's guarantee (no late fills) is the subscription's: it never skips.
//
// A broken connection (a terminated backend, a server restart) is retried a few times, since reads can
// be repeated at will; any other query error, or one that persists, is yielded and ends the sequence.
// The end of ctx ends it without an error.
func (r *ProcessRecorder) Subscribe(ctx context.Context, after int64, topics ...string) iter.Seq2[eventsourcing.Notification, error] {
	topics = append([]string(nil), topics...)
	return func(yield func(eventsourcing.Notification, error) bool) {
		if ctx.Err() != nil {
			return
		}
		r.startListener()
		ticker := time.NewTicker(r.pollInterval)
		defer ticker.Stop()
		for {
			// Take the wake-up channel before reading, so that a commit during the read wakes the wait.
			woken := r.wake.wait()
			q := eventsourcing.NotificationQuery{After: after, Limit: subscribePage, Topics: topics}
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
			page, err := retry(ctx, r.pollInterval, func() ([]eventsourcing.Notification, error) { return r.selectNotifications(ctx, q) })
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
			if len(page) == subscribePage {
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
func (r *ProcessRecorder) yieldErr(ctx context.Context, yield func(eventsourcing.Notification, error) bool, err error) {
	if ctx.Err() != nil {
		return
	}
	yield(eventsourcing.Notification{}, wrap("subscribe", err))
}

// idle waits for a wake-up or the next tick; false means ctx has ended.
func (r *ProcessRecorder) idle(ctx context.Context, woken <-chan struct{}, ticker *time.Ticker) bool {
	select {
	case <-ctx.Done():
		return false
	case <-woken:
		return true
	case <-ticker.C:
		return true
	}
}

// signal wakes every waiter at once: waiters take the current channel, a broadcast closes it.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// committed is called after an append has committed: it wakes this recorder's subscriptions and asks
// the notifier to tell other processes.
func (r *ProcessRecorder) committed() {
	r.wake.broadcast()
	select {
	case r.kick <- struct{}{}:
	default: // a notification is pending already; it will cover this append too
	}
}

// notifyGap is the least time between two NOTIFYs of one recorder. Under a stream of appends, each
// NOTIFY is a transaction of its own competing with the appends (it measurably cost 10–20% of the
// throughput of 16 writers when sent back to back); 10 ms keeps other processes' subscriptions well
// within the 100 ms the contract promises.
const notifyGap = 10 * time.Millisecond

// notifier sends a NOTIFY after appends have committed: appends never wait for it, and every append
// of a burst is covered by one NOTIFY (at most one every notifyGap).
func (r *ProcessRecorder) notifier() {
	gap := time.NewTimer(notifyGap)
	gap.Stop()
	for {
		select {
		case <-r.life.Done():
			return
		case <-r.kick:
		}
		ctx, cancel := context.WithTimeout(r.life, 5*time.Second)
		err := r.q.Notify(ctx, dbsqlc.NotifyParams{Channel: r.channel, Payload: r.payload})
		cancel()
		if err != nil && r.life.Err() == nil {
			r.logger.Warn("postgres recorder: notify failed; subscribers of other processes will poll", "schema", r.schema, "error", err)
		}
		gap.Reset(notifyGap)
		select {
		case <-r.life.Done():
			return
		case <-gap.C:
		}
	}
}

// startListener starts the listener goroutine on the first subscription, unless the recorder is
// closed.
func (r *ProcessRecorder) startListener() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.listening || r.closed {
		return
	}
	r.listening = true
	r.wg.Go(r.listener)
}

// errNotPgx means the driver is not pgx's stdlib: subscriptions poll.
var errNotPgx = errors.New("the driver is not pgx/v5/stdlib")

// listener relays PostgreSQL notifications to this recorder's subscriptions, over a connection of its
// own (outside the pool), reopened (with backoff) whenever it fails. Each time it starts listening it wakes the
// subscriptions, since notifications may have been missed while it was away.
func (r *ProcessRecorder) listener() {
	backoff := 50 * time.Millisecond
	for r.life.Err() == nil {
		start := time.Now()
		err := r.listenOnce(r.life)
		if r.life.Err() != nil {
			return
		}
		if errors.Is(err, errNotPgx) {
			r.logger.Info("postgres recorder: not a pgx connection; subscriptions poll", "schema", r.schema)
			return
		}
		r.wake.broadcast()
		if time.Since(start) > time.Minute {
			backoff = 50 * time.Millisecond
		}
		r.logger.Warn("postgres recorder: listener connection lost; reopening", "schema", r.schema, "error", err, "retry_in", backoff)
		select {
		case <-r.life.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenCheck is how long the listener waits for a notification before it checks its connection.
const listenCheck = 30 * time.Second

func (r *ProcessRecorder) listenOnce(ctx context.Context) error {
	cfg, err := r.listenerConfig(ctx)
	if err != nil {
		return err
	}
	// The listener has a connection of its own, outside the *sql.DB's pool: a pooled connection held
	// for as long as subscriptions last would be taken from the application, and database/sql would
	// make closing the *sql.DB (and other clean-ups that need every connection) wait for it.
	pc, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect the listener: %w", err)
	}
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{r.channel}.Sanitize()); err != nil {
		return err
	}
	r.wake.broadcast()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := pc.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if n.Payload == r.payload {
				r.wake.broadcast()
			}
		case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && !pc.IsClosed():
			// Quiet for a while: make sure the connection is still there.
			if err := pc.Ping(ctx); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// listenerConfig returns the connection settings of the *sql.DB's connections (as pgx's stdlib
// driver made them), for the listener's own connection; errNotPgx for other drivers.
func (r *ProcessRecorder) listenerConfig(ctx context.Context) (*pgx.ConnConfig, error) {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var cfg *pgx.ConnConfig
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errNotPgx
		}
		cfg = sc.Conn().Config().Copy()
		// pgx fills in the handler that queues a connection's notifications when it connects; the copy
		// carries the pooled connection's, which would queue ours there.
		cfg.OnNotification = nil
		return nil
	})
	return cfg, err
}

package sqlite

import (
	"context"
	"iter"
	"slices"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
)

// Subscribe yields every notification with ID > after (only those of topics, when given) in ID order,
// exactly once: first the history, read in pages of 500, then new events as they commit. It blocks
// while caught up, and wakes at once when this recorder commits events, or after the poll interval
// ([WithPollInterval]) for events committed by other processes or recorders. SQLite serialises writers,
// so IDs become visible in order and reading on from the last ID seen never skips one.
//
// It ends without an error when ctx ends or the loop breaks; an error (after it is yielded) ends it
// too, as does Close, with an error wrapping [es.ErrClosed]. It starts no goroutine and holds one page at
// most.
func (r *ProcessRecorder) Subscribe(ctx context.Context, after int64, topics ...string) iter.Seq2[es.Notification, error] {
	topics = slices.Clone(topics)
	return func(yield func(es.Notification, error) bool) {
		last := max(after, 0)
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		for {
			if err := r.life.Err(); err != nil {
				yield(es.Notification{}, opError("subscribe", err))
				return
			}
			// Take the wake-up channel before reading, so that a commit between the read and the wait
			// is not missed.
			wake := r.notify.Wait()
			page, err := r.selectNotifications(ctx, last, 0, recorder.SubscribePage, topics)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				yield(es.Notification{}, opError("subscribe", err))
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
			if len(page) == recorder.SubscribePage {
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
			case <-r.life.Done(): // reported at the top of the loop
			case <-wake:
			case <-timer.C:
			}
		}
	}
}

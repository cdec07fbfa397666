package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/observe"
)

// item is a notification as the runner processes it: decoded, or with the error that ends the runner
// when its turn comes.
type item struct {
	id    int64
	topic string
	event aggregate.Event
	skip  bool  // an event of a forgotten subject, tracked but not processed (WithForgotten)
	err   error // decoding failed (err of an item with id 0: the subscription failed)
}

// events returns the events of batch that are to be processed.
func events(batch []item) []aggregate.Event {
	out := make([]aggregate.Event, 0, len(batch))
	for _, it := range batch {
		if !it.skip {
			out = append(out, it.event)
		}
	}
	return out
}

// eventError is a per-event function's error, with the position of its event in the batch, so that a
// failed batch is narrowed down without a search.
type eventError struct {
	index int
	err   error
}

func (e *eventError) Error() string { return e.err.Error() }
func (e *eventError) Unwrap() error { return e.err }

// eachEvent applies projection to the events of a batch one by one.
func eachEvent[Tx any](projection Projection[Tx]) func(context.Context, Tx, []item) error {
	return func(ctx context.Context, tx Tx, batch []item) error {
		for i, it := range batch {
			if it.skip {
				continue
			}
			if err := projection(ctx, tx, it.event); err != nil {
				return &eventError{index: i, err: err}
			}
		}
		return nil
	}
}

// resetError is the reset function's failure: it stops the runner without naming a notification.
type resetError struct{ err error }

func (e *resetError) Error() string { return "reset the read model: " + e.err.Error() }
func (e *resetError) Unwrap() error { return e.err }

// follow subscribes to the upstream after the runner's mark and processes what comes, batch by batch,
// until ctx ends, a notification fails, or the mark turns out to have been reset (restart).
//
// A feeding goroutine reads the subscription and decodes each notification into a channel that holds
// one batch, so decoding the next batch overlaps with the transaction of this one, and no more than the
// batch in hand and one more wait in memory; the runner takes from the channel what is at hand, up to
// a batch.
func (r *Runner[Tx]) follow(ctx context.Context) (restart bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	items := make(chan item, r.batchSize)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		r.feed(ctx, r.mark, items)
	}()
	defer func() {
		cancel()
		<-fed
	}()
	batch := make([]item, 0, r.batchSize)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return false, nil
		case it := <-items:
			batch = append(batch, it)
		}
		started := time.Now()
	gather:
		for len(batch) < r.batchSize && batch[len(batch)-1].err == nil {
			select {
			case it := <-items:
				batch = append(batch, it)
			default:
				break gather
			}
			if len(batch)%64 == 0 && time.Since(started) >= r.batchTime {
				break gather
			}
		}
		if restart, err := r.process(ctx, batch); err != nil || restart {
			return restart, err
		}
	}
}

// feed sends the notifications after mark, decoded, to items, until ctx ends or the subscription fails
// (the failure is sent as an item of ID 0). A notification at or below one sent already is dropped:
// a subscription delivers each once, but a faulty transport or an at-least-once relay in between
// might not, and a batch must not hold an event twice.
func (r *Runner[Tx]) feed(ctx context.Context, mark int64, items chan<- item) {
	for n, err := range r.recorder.Subscribe(ctx, mark, r.topics...) {
		if err == nil && n.ID <= mark {
			continue
		}
		it := item{id: n.ID, topic: n.Topic}
		if err != nil {
			it = item{err: fmt.Errorf("subscription after notification %d: %w", mark, err)}
		} else {
			it.event, it.err = r.decoder.DecodeContext(ctx, n.StoredEvent)
			if it.err != nil && r.forgotten == SkipForgotten && errors.Is(it.err, datakey.ErrForgotten) {
				r.logger.InfoContext(ctx, "projection: skipping an event of a forgotten subject", "consumer", r.name,
					"upstream", r.upstream, "notification_id", n.ID, "topic", n.Topic, "error", it.err)
				it.skip, it.err = true, nil
			}
			if r.tracer != nil {
				r.tracer.Delivered(ctx, observe.Delivery{Consumer: r.name, Upstream: r.upstream, NotificationID: n.ID, Timestamp: it.event.Timestamp})
			}
			mark = n.ID
		}
		select {
		case items <- it:
		case <-ctx.Done():
			return
		}
		if it.id == 0 {
			return
		}
	}
	if ctx.Err() == nil {
		// A subscription ends only with its context: anything else would leave the runner waiting
		// for ever.
		select {
		case items <- item{err: fmt.Errorf("subscription ended after notification %d while its context is live", mark)}:
		case <-ctx.Done():
		}
	}
}

// process commits the items of batch up to the first that failed to decode, and stops at that one.
func (r *Runner[Tx]) process(ctx context.Context, batch []item) (restart bool, err error) {
	k := len(batch)
	if last := batch[k-1]; last.err != nil {
		k--
	}
	if k > 0 {
		if restart, err := r.commit(ctx, batch[:k]); err != nil || restart {
			return restart, err
		}
	}
	if k == len(batch) {
		return false, nil
	}
	it := batch[k]
	if it.id == 0 {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("projection: %s: %s: %w", r.name, r.upstream, it.err)
	}
	return false, r.fail(it, it.err)
}

// fail is the error that stops the runner at it.
func (r *Runner[Tx]) fail(it item, err error) error {
	var ee *eventError
	if errors.As(err, &ee) {
		err = ee.err
	}
	return &Error{Consumer: r.name, Upstream: r.upstream, NotificationID: it.id, Topic: it.topic, Err: err}
}

// commit processes batch in one transaction with the tracking of its last notification, and when that
// fails, narrows the batch down to the notification that fails on its own (see Run).
func (r *Runner[Tx]) commit(ctx context.Context, batch []item) (restart bool, err error) {
	for {
		// Another instance may have processed some of the batch, or all of it.
		for len(batch) > 0 && batch[0].id <= r.mark {
			batch = batch[1:]
		}
		if len(batch) == 0 {
			return false, nil
		}
		t := es.Tracking{Consumer: r.name, Upstream: r.upstream, NotificationID: batch[len(batch)-1].id, Prior: r.mark}
		bctx, traced := ctx, observe.Batch{} // the batch's context and what the tracer is told
		if r.tracer != nil {
			traced = observe.Batch{Consumer: r.name, Upstream: r.upstream, Events: len(batch),
				FirstNotificationID: batch[0].id, LastNotificationID: t.NotificationID, Prior: t.Prior, Start: time.Now()}
			bctx = r.tracer.BatchStart(ctx, traced)
		}
		err := r.store.Process(bctx, t, func(ctx context.Context, tx Tx) error {
			if t.Prior == 0 && r.reset != nil {
				if err := r.reset(ctx, tx); err != nil {
					return &resetError{err}
				}
			}
			return r.apply(ctx, tx, batch)
		})
		if r.tracer != nil {
			r.traceBatch(bctx, traced, batch, err)
		}
		if err == nil {
			r.mark = t.NotificationID
			r.advance(t.NotificationID)
			r.logger.DebugContext(ctx, "projection: batch committed", "consumer", r.name, "upstream", r.upstream,
				"events", len(batch), "first_notification_id", batch[0].id, "last_notification_id", t.NotificationID)
			return false, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		var re *resetError
		if errors.As(err, &re) {
			return false, fmt.Errorf("projection: %s: %w", r.name, err)
		}
		if errors.Is(err, es.ErrConflict) {
			mark, merr := r.store.MaxTrackingID(ctx, r.name, r.upstream)
			if merr != nil {
				return false, fmt.Errorf("projection: %s: %w", r.name, errors.Join(err, fmt.Errorf("read tracking mark after a conflict: %w", merr)))
			}
			switch {
			case mark > r.mark:
				// Another instance has processed notifications up to mark: they are done, the rest of
				// the batch follows on from there.
				r.logger.DebugContext(ctx, "projection: another instance moved the mark", "consumer", r.name, "upstream", r.upstream,
					"prior", r.mark, "mark", mark)
				r.mark = mark
				r.advance(mark)
				continue
			case mark < r.mark:
				if r.reset == nil {
					return false, fmt.Errorf("projection: %s: %w: the mark for %s went from %d to %d; give the runner a reset function (WithReset) to rebuild",
						r.name, ErrReset, r.upstream, r.mark, mark)
				}
				return true, nil
			}
			// The mark is where the batch started: the conflict is the projection's own.
		}
		return r.narrow(ctx, batch, err)
	}
}

// traceBatch tells the tracer how the batch of b ended: with err, or committed, when it also reads the
// upstream's last notification ID for the lag (a failure to read it leaves the lag unknown).
func (r *Runner[Tx]) traceBatch(ctx context.Context, b observe.Batch, batch []item, err error) {
	b.Err = err
	for i := len(batch) - 1; i >= 0; i-- {
		if !batch[i].skip {
			b.Timestamp = batch[i].event.Timestamp
			break
		}
	}
	if err == nil {
		b.Head, _ = r.recorder.MaxNotificationID(ctx)
	}
	r.tracer.BatchEnd(ctx, b)
}

// narrow commits what it can of a batch that failed with err, and returns the error of the first
// notification that fails on its own.
func (r *Runner[Tx]) narrow(ctx context.Context, batch []item, err error) (restart bool, _ error) {
	if len(batch) == 1 {
		return false, r.fail(batch[0], err)
	}
	r.logger.WarnContext(ctx, "projection: batch failed; narrowing it down", "consumer", r.name, "upstream", r.upstream,
		"first_notification_id", batch[0].id, "last_notification_id", batch[len(batch)-1].id, "error", err)
	var parts [][]item
	var ee *eventError
	if errors.As(err, &ee) && ee.index < len(batch) {
		// The events before the failing one, the failing one alone, then the rest.
		parts = [][]item{batch[:ee.index], batch[ee.index : ee.index+1], batch[ee.index+1:]}
	} else {
		half := len(batch) / 2
		parts = [][]item{batch[:half], batch[half:]}
	}
	for _, part := range parts {
		if restart, err := r.commit(ctx, part); err != nil || restart {
			return restart, err
		}
	}
	return false, nil
}

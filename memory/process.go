package memory

import (
	"context"
	"fmt"
	"iter"
	"slices"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/recorder"
)

// subscribeScan bounds how many log entries one page of a topic-filtered subscription examines while
// holding the lock.
const subscribeScan = 8192

// ProcessRecorder keeps an application's events, its notification log and the tracking records of the
// upstream notifications it has processed. It is the memory recorder of an application (an
// [es.ApplicationRecorder]) and of a process application (an [es.ProcessRecorder]).
//
// Notification IDs are 1, 2, 3 … without gaps: a batch is checked completely before it takes any ID.
// Every commit happens under one lock, so batches occupy contiguous ranges and no reader ever sees a late
// fill. Subscriptions wait on a broadcast that each commit of events fires.
//
// The zero value is an empty recorder ready to use. A ProcessRecorder must not be copied after first use.
type ProcessRecorder struct {
	base     // position i of the store holds notification ID i+1
	tracking recorder.Marks
	wake     recorder.Broadcast // notified by every commit of events
}

// NewProcessRecorder returns an empty ProcessRecorder.
func NewProcessRecorder() *ProcessRecorder {
	return new(ProcessRecorder)
}

// InsertEvents records events atomically, appends them to the notification log and returns their
// notification IDs in input order. A version that is recorded already for its originator, or that
// appears twice in events, fails the call with an error wrapping [es.ErrConflict] and records
// nothing. With [es.WithTracking], the tracking record is inserted in the same transaction:
// when its ID is at or below the application's mark the call fails with ErrConflict and records nothing.
func (r *ProcessRecorder) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	if err := r.check(ctx, "insert events"); err != nil {
		return nil, err
	}
	o := es.ApplyInsertOptions(opts...)
	if err := recorder.ValidateEvents(events); err != nil {
		return nil, fmt.Errorf("memory: insert events: %w", err)
	}
	buf := concatStates(events)

	r.mu.Lock()
	defer r.mu.Unlock()
	if t := o.Tracking; t != nil {
		if err := r.tracking.Check(*t); err != nil {
			return nil, fmt.Errorf("memory: insert events: %w", err)
		}
	}
	if err := r.store.conflict(events); err != nil {
		return nil, err
	}
	ids := make([]int64, len(events))
	r.store.add(events, buf, func(i int, pos int64) { ids[i] = pos + 1 })
	if t := o.Tracking; t != nil {
		r.track(*t)
	}
	if len(events) > 0 {
		r.wake.Notify()
	}
	return ids, nil
}

// SelectNotifications returns a page of the notification log (see [es.NotificationQuery]).
// The result is a copy. q.Limit < 1 is an error.
func (r *ProcessRecorder) SelectNotifications(ctx context.Context, q es.NotificationQuery) ([]es.Notification, error) {
	if err := r.check(ctx, "select notifications"); err != nil {
		return nil, err
	}
	if err := recorder.CheckNotificationQuery(q); err != nil {
		return nil, fmt.Errorf("memory: select notifications: %w", err)
	}
	f := newTopicFilter(q.Topics)
	r.mu.RLock()
	defer r.mu.RUnlock()
	out, _ := r.scan(q.After, q.UpTo, q.Limit, -1, f)
	return out, nil
}

// MaxNotificationID returns the highest notification ID, 0 on an empty recorder.
func (r *ProcessRecorder) MaxNotificationID(ctx context.Context) (int64, error) {
	if err := r.check(ctx, "max notification ID"); err != nil {
		return 0, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.store.len, nil
}

// Subscribe yields every notification with ID > after (only those of topics, when given) in ID order,
// exactly once: first the history, copied out of the log a page at a time, then each new event as it
// commits. It blocks while caught up and ends, without an error, when ctx ends; breaking out of the loop
// ends it too. It starts no goroutine and holds at most one page in memory.
func (r *ProcessRecorder) Subscribe(ctx context.Context, after int64, topics ...string) iter.Seq2[es.Notification, error] {
	f := newTopicFilter(slices.Clone(topics))
	return func(yield func(es.Notification, error) bool) {
		done, closed := ctx.Done(), r.life.Done()
		cursor := max(after, 0)
		for {
			if ctx.Err() != nil {
				return
			}
			if err := r.life.Err(); err != nil {
				yield(es.Notification{}, fmt.Errorf("memory: subscribe: %w", err))
				return
			}
			page, scanned, wake := r.page(cursor, f)
			for _, n := range page {
				select {
				case <-done:
					return
				default:
				}
				if !yield(n, nil) {
					return
				}
			}
			cursor = scanned
			if wake != nil { // caught up when the page was read: wait for the next commit
				select {
				case <-done:
					return
				case <-closed:
				case <-wake:
				}
			}
		}
	}
}

// page returns the next page of a subscription after cursor, the last ID it examined, and, when it
// examined the log up to its end, the channel that the next commit closes.
func (r *ProcessRecorder) page(cursor int64, f topicFilter) ([]es.Notification, int64, <-chan struct{}) {
	wake := r.wake.Wait() // before the read, so that a commit after it is not missed
	r.mu.RLock()
	defer r.mu.RUnlock()
	page, scanned := r.scan(cursor, 0, recorder.SubscribePage, subscribeScan, f)
	if scanned >= r.store.len {
		return page, scanned, wake
	}
	return page, scanned, nil
}

// scan returns up to limit notifications with after < ID <= upTo (0: no bound) that pass f, with copies
// of their states, examining at most maxScan of them (-1: no bound), and the last ID examined. r.mu must
// be held.
func (r *ProcessRecorder) scan(after, upTo int64, limit, maxScan int, f topicFilter) ([]es.Notification, int64) {
	end := r.store.len
	if upTo != 0 && upTo < end {
		end = upTo
	}
	after = max(after, 0)
	if after >= end {
		return nil, after
	}
	var out []es.Notification
	if f.all() {
		out = make([]es.Notification, 0, min(end-after, int64(limit)))
	}
	total := 0
	id := after // positions after … end-1 hold IDs after+1 … end
	for ; id < end && len(out) < limit && maxScan != 0; id++ {
		e := r.store.at(id)
		if f.match(e.Topic) {
			out = append(out, es.Notification{ID: id + 1, StoredEvent: *e})
			total += len(e.State)
		}
		maxScan--
	}
	buf := make([]byte, total)
	for i := range out {
		if s := out[i].State; s != nil {
			n := copy(buf, s)
			out[i].State, buf = buf[:n:n], buf[n:]
		}
	}
	return out, id
}

// InsertTracking moves the mark of t.Consumer for t.Upstream from t.Prior to t.NotificationID (see
// [es.TrackingRecorder]); when the mark is not t.Prior it fails with an error wrapping
// [es.ErrConflict].
func (r *ProcessRecorder) InsertTracking(ctx context.Context, t es.Tracking) error {
	if err := r.check(ctx, "insert tracking"); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.tracking.Check(t); err != nil {
		return fmt.Errorf("memory: insert tracking: %w", err)
	}
	r.track(t)
	return nil
}

// track records the mark of t. r.mu must be held for writing.
func (r *ProcessRecorder) track(t es.Tracking) {
	if r.tracking == nil {
		r.tracking = make(recorder.Marks)
	}
	r.tracking[recorder.TrackingKey{Consumer: t.Consumer, Upstream: t.Upstream}] = t.NotificationID
}

// MaxTrackingID returns the mark of consumer for upstream, 0 when nothing is tracked.
func (r *ProcessRecorder) MaxTrackingID(ctx context.Context, consumer, upstream string) (int64, error) {
	if err := r.check(ctx, "max tracking ID"); err != nil {
		return 0, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tracking[recorder.TrackingKey{Consumer: consumer, Upstream: upstream}], nil
}

// HasTrackingID reports whether the mark of consumer for upstream is at or above notificationID.
func (r *ProcessRecorder) HasTrackingID(ctx context.Context, consumer, upstream string, notificationID int64) (bool, error) {
	if err := r.check(ctx, "has tracking ID"); err != nil {
		return false, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tracking[recorder.TrackingKey{Consumer: consumer, Upstream: upstream}] >= notificationID, nil
}

// TrackingMarks returns every mark, ordered by consumer and upstream.
func (r *ProcessRecorder) TrackingMarks(ctx context.Context) ([]es.Tracking, error) {
	if err := r.check(ctx, "tracking marks"); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tracking.Sorted(), nil
}

// DeleteTracking removes the mark of consumer for upstream.
func (r *ProcessRecorder) DeleteTracking(ctx context.Context, consumer, upstream string) error {
	if err := r.check(ctx, "delete tracking"); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.tracking, recorder.TrackingKey{Consumer: consumer, Upstream: upstream})
	return nil
}

// topicFilter matches the topics of a query or subscription; empty matches all.
type topicFilter struct {
	list []string
	set  map[string]struct{} // for long lists
}

func newTopicFilter(topics []string) topicFilter {
	f := topicFilter{list: topics}
	if len(topics) > 8 {
		f.set = make(map[string]struct{}, len(topics))
		for _, t := range topics {
			f.set[t] = struct{}{}
		}
	}
	return f
}

func (f topicFilter) all() bool { return len(f.list) == 0 }

func (f topicFilter) match(topic string) bool {
	switch {
	case len(f.list) == 0:
		return true
	case f.set != nil:
		_, ok := f.set[topic]
		return ok
	default:
		return slices.Contains(f.list, topic)
	}
}

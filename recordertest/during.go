package recordertest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// duringWritesTimeout bounds subscribeDuringWrites, which writes and reads a thousand events on
// recorders that may be slow under the race detector. Reaching it is a failure.
const duringWritesTimeout = 60 * time.Second

// Topics of the events written by subscribeDuringWrites.
const (
	topicEven = "recordertest.Even"
	topicOdd  = "recordertest.Odd"
)

// subscribeDuringWrites checks that subscriptions started while 8 writers are inserting events see
// every event exactly once, in ID order, without a gap or a duplicate across their switch from the
// recorded history to live delivery: one from the start of the log, one from the position reached when
// they start, and one filtered by topic.
//
// Each writer inserts the events of its own originator in batches of 1 to 3; half of them before the
// subscriptions start, half while they catch up and go live. What the subscriptions deliver is compared
// with the log as SelectNotifications reads it once the writers are done, and each batch's IDs must be
// consecutive (the contract of eventsourcing.ApplicationRecorder).
func subscribeDuringWrites(t *testing.T, newRecorder func(t *testing.T) es.ApplicationRecorder) {
	const writers = 8
	perWriter := 120
	if testing.Short() {
		perWriter = 30
	}
	r := newRecorder(t)
	ctx, cancel := context.WithTimeout(t.Context(), duringWritesTimeout)
	defer cancel()

	topic := func(w, v int) string {
		if (w+v)%2 == 0 {
			return topicEven
		}
		return topicOdd
	}
	total, even := writers*perWriter, 0
	for w := range writers {
		for v := 1; v <= perWriter; v++ {
			if topic(w, v) == topicEven {
				even++
			}
		}
	}

	// Writers: the first half of their events, a barrier, then the rest while the subscriptions run.
	var (
		firstHalf sync.WaitGroup
		all       sync.WaitGroup
		release   = make(chan struct{})
		errs      = make(chan error, writers*2+4)
	)
	firstHalf.Add(writers)
	for w := range writers {
		all.Go(func() {
			half := sync.OnceFunc(firstHalf.Done)
			defer half() // a writer that fails early must not hold up the others
			id := uuid.New()
			v, batch, released := 1, 1, false
			for v <= perWriter {
				if !released && v > perWriter/2 {
					half()
					select {
					case <-release:
					case <-ctx.Done():
						errs <- fmt.Errorf("writer %d: %w", w, ctx.Err())
						return
					}
					released = true
				}
				n := min(batch, perWriter-v+1)
				if !released {
					n = min(n, perWriter/2-v+1)
				}
				events := make([]es.StoredEvent, n)
				for i := range events {
					events[i] = es.StoredEvent{
						OriginatorID:      id,
						OriginatorVersion: int64(v + i),
						Topic:             topic(w, v+i),
						State:             fmt.Appendf(nil, "writer %d event %d", w, v+i),
					}
				}
				ids, err := r.InsertEvents(ctx, events)
				if err != nil {
					errs <- fmt.Errorf("writer %d: insert versions %d..%d: %w", w, v, v+n-1, err)
					return
				}
				if len(ids) != n {
					errs <- fmt.Errorf("writer %d: InsertEvents returned %d IDs for %d events", w, len(ids), n)
					return
				}
				for i := 1; i < n; i++ {
					if ids[i] != ids[i-1]+1 {
						errs <- fmt.Errorf("writer %d: a batch took IDs %v, not a consecutive range", w, ids)
						return
					}
				}
				v += n
				batch = batch%3 + 1
			}
		})
	}
	defer func() { cancel(); all.Wait() }() // no writer outlives the test, even when it fails
	if !waitGroup(ctx, &firstHalf) {
		cancel()
		all.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Fatalf("waiting for the writers' first halves: %v", ctx.Err())
	}
	mid, err := r.MaxNotificationID(ctx)
	if err != nil {
		t.Fatalf("MaxNotificationID: %v", err)
	}
	if want := int64(writers * (perWriter / 2)); mid < want {
		t.Fatalf("MaxNotificationID after %d events is %d", want, mid)
	}

	type sub struct {
		name   string
		after  int64
		topics []string
		want   int
		got    []es.Notification
	}
	subs := []*sub{
		{name: "from the start", want: total},
		{name: fmt.Sprintf("after %d", mid), after: mid, want: writers * (perWriter - perWriter/2)},
		{name: "topic " + topicEven, topics: []string{topicEven}, want: even},
	}
	close(release) // the writers are busy again when the subscriptions start
	var readers sync.WaitGroup
	for _, s := range subs {
		readers.Go(func() {
			if s.want == 0 {
				return
			}
			for n, err := range r.Subscribe(ctx, s.after, s.topics...) {
				if err != nil {
					errs <- fmt.Errorf("subscription %s: %w", s.name, err)
					return
				}
				s.got = append(s.got, n)
				if len(s.got) == s.want {
					return
				}
			}
			errs <- fmt.Errorf("subscription %s: ended after %d of %d notifications: %v", s.name, len(s.got), s.want, ctx.Err())
		})
	}
	all.Wait()
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	log := readAll(t, r, 0)
	if len(log) != total {
		t.Fatalf("the log holds %d notifications, want %d", len(log), total)
	}
	for _, s := range subs {
		want := log
		if s.topics != nil {
			want = slices.DeleteFunc(slices.Clone(log), func(n es.Notification) bool { return !slices.Contains(s.topics, n.Topic) })
		}
		want = slices.DeleteFunc(slices.Clone(want), func(n es.Notification) bool { return n.ID <= s.after })
		if d := deliveryDiff(s.got, want); d != "" {
			t.Errorf("subscription %s: %s", s.name, d)
		}
	}
	// The log itself: every writer's versions in order, once each.
	next := map[uuid.UUID]int64{}
	for _, n := range log {
		if n.OriginatorVersion != next[n.OriginatorID]+1 {
			t.Fatalf("notification %d is version %d of %s, after version %d", n.ID, n.OriginatorVersion, n.OriginatorID, next[n.OriginatorID])
		}
		next[n.OriginatorID] = n.OriginatorVersion
	}
}

// deliveryDiff describes the first difference between what a subscription delivered and the log.
func deliveryDiff(got, want []es.Notification) string {
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.OriginatorID != w.OriginatorID || g.OriginatorVersion != w.OriginatorVersion ||
			g.Topic != w.Topic || string(g.State) != string(w.State) {
			return fmt.Sprintf("delivery %d is notification %d (%s v%d %s), the log has %d (%s v%d %s) there",
				i+1, g.ID, g.OriginatorID, g.OriginatorVersion, g.Topic, w.ID, w.OriginatorID, w.OriginatorVersion, w.Topic)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("delivered %d notifications, the log has %d", len(got), len(want))
	}
	return ""
}

// waitGroup waits for wg, and reports false if ctx ends first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

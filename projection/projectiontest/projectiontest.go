// Package projectiontest holds the tests and measurements that every recorder runs for the projection
// package: a subscription started while writers are busy sees every event exactly once and in order
// ([TestSubscribeDuringWrites]); a SQL recorder's tracked transactions are atomic ([TestSQLTracker]);
// and the latency from commit to delivery ([MeasureLatency], [BenchmarkLatency]).
//
// Like recordertest, it asserts nothing about speed: its waits fail only after a generous timeout.
package projectiontest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// waitTimeout bounds every wait. Reaching it is a failure, never a measurement.
const waitTimeout = 60 * time.Second

// Topics of the events written by TestSubscribeDuringWrites.
const (
	TopicEven = "projectiontest.Even"
	TopicOdd  = "projectiontest.Odd"
)

// TestSubscribeDuringWrites checks that subscriptions started while 8 writers are inserting events see
// every event exactly once, in ID order, without a gap or a duplicate across their switch from the
// recorded history to live delivery: one from the start of the log, one from the position reached when
// they start, and one filtered by topic. newRecorder returns a fresh, empty recorder.
//
// Each writer inserts the events of its own originator in batches of 1 to 3; half of them before the
// subscriptions start, half while they catch up and go live. What the subscriptions deliver is compared
// with the log as SelectNotifications reads it once the writers are done, and each batch's IDs must be
// consecutive (rule 3 of the contract).
func TestSubscribeDuringWrites(t *testing.T, newRecorder func(t *testing.T) es.ApplicationRecorder) {
	t.Helper()
	const writers = 8
	perWriter := 120
	if testing.Short() {
		perWriter = 30
	}
	r := newRecorder(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()

	topic := func(w, v int) string {
		if (w+v)%2 == 0 {
			return TopicEven
		}
		return TopicOdd
	}
	total, even := writers*perWriter, 0
	for w := range writers {
		for v := 1; v <= perWriter; v++ {
			if topic(w, v) == TopicEven {
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
		{name: "topic " + TopicEven, topics: []string{TopicEven}, want: even},
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

	log := selectAll(t, r, 0, nil)
	if len(log) != total {
		t.Fatalf("the log holds %d notifications, want %d", len(log), total)
	}
	for _, s := range subs {
		want := log
		if s.topics != nil {
			want = slices.DeleteFunc(slices.Clone(log), func(n es.Notification) bool { return !slices.Contains(s.topics, n.Topic) })
		}
		want = slices.DeleteFunc(slices.Clone(want), func(n es.Notification) bool { return n.ID <= s.after })
		if d := diff(s.got, want); d != "" {
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

// diff describes the first difference between what a subscription delivered and the log.
func diff(got, want []es.Notification) string {
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

func selectAll(t *testing.T, r es.ApplicationRecorder, after int64, topics []string) []es.Notification {
	t.Helper()
	var out []es.Notification
	for {
		page, err := r.SelectNotifications(t.Context(), es.NotificationQuery{After: after, Limit: 500, Topics: topics})
		if err != nil {
			t.Fatalf("SelectNotifications after %d: %v", after, err)
		}
		out = append(out, page...)
		if len(page) < 500 {
			return out
		}
		after = page[len(page)-1].ID
	}
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

// Latency summarises commit-to-delivery latencies.
type Latency struct {
	Samples  int
	P50, P99 time.Duration
	Max      time.Duration
	Mean     time.Duration
}

func (l Latency) String() string {
	return fmt.Sprintf("%d samples: p50 %v, p99 %v, max %v, mean %v", l.Samples, l.P50, l.P99, l.Max, l.Mean)
}

// LatencyTopic is the topic of the events MeasureLatency inserts.
const LatencyTopic = "projectiontest.Latency"

// MeasureLatency measures how long r takes to deliver a committed event to a subscription that is
// caught up and waiting: n times in a row, it inserts one event (a new originator each time) and times
// from the return of InsertEvents, when the commit is acknowledged, to the moment the subscription
// yields that event. A subscription may deliver before the writer's call returns; that counts as 0.
//
// The subscription starts after the recorder's current last notification, so r may hold events
// already; other writers' events delivered meanwhile are passed over.
func MeasureLatency(ctx context.Context, r es.ApplicationRecorder, n int) (Latency, error) {
	if n < 1 {
		return Latency{}, fmt.Errorf("projectiontest: measure latency: %d samples", n)
	}
	after, err := r.MaxNotificationID(ctx)
	if err != nil {
		return Latency{}, fmt.Errorf("projectiontest: measure latency: %w", err)
	}
	type delivery struct {
		id  int64
		at  time.Time
		err error
	}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	deliveries := make(chan delivery)
	go func() {
		defer close(deliveries)
		for nt, err := range r.Subscribe(subCtx, after, LatencyTopic) {
			d := delivery{id: nt.ID, at: time.Now(), err: err}
			select {
			case deliveries <- d:
			case <-subCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	samples := make([]time.Duration, 0, n)
	for i := range n {
		e := es.StoredEvent{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: LatencyTopic, State: fmt.Appendf(nil, "sample %d", i)}
		ids, err := r.InsertEvents(ctx, []es.StoredEvent{e})
		committed := time.Now()
		if err != nil {
			return Latency{}, fmt.Errorf("projectiontest: measure latency: insert: %w", err)
		}
		if len(ids) != 1 {
			return Latency{}, fmt.Errorf("projectiontest: measure latency: InsertEvents returned %d IDs for 1 event", len(ids))
		}
		for {
			d, ok := <-deliveries
			if !ok {
				return Latency{}, fmt.Errorf("projectiontest: measure latency: subscription ended before notification %d: %w", ids[0], context.Cause(ctx))
			}
			if d.err != nil {
				return Latency{}, fmt.Errorf("projectiontest: measure latency: subscription: %w", d.err)
			}
			if d.id < ids[0] {
				continue
			}
			if d.id > ids[0] {
				return Latency{}, fmt.Errorf("projectiontest: measure latency: notification %d delivered, skipping %d", d.id, ids[0])
			}
			samples = append(samples, max(0, d.at.Sub(committed)))
			break
		}
	}
	return summarise(samples), nil
}

func summarise(samples []time.Duration) Latency {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	pct := func(p float64) time.Duration {
		i := int(p*float64(len(samples))+0.999999) - 1
		return samples[min(max(i, 0), len(samples)-1)]
	}
	return Latency{
		Samples: len(samples),
		P50:     pct(0.50),
		P99:     pct(0.99),
		Max:     samples[len(samples)-1],
		Mean:    sum / time.Duration(len(samples)),
	}
}

// BenchmarkLatency runs MeasureLatency with b.N samples and reports the percentiles as the metrics
// p50-ns, p99-ns and max-ns (ns/op is the whole round trip: insert, commit and delivery).
func BenchmarkLatency(b *testing.B, r es.ApplicationRecorder) {
	b.Helper()
	b.ResetTimer()
	l, err := MeasureLatency(b.Context(), r, b.N)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(l.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l.P99.Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(l.Max.Nanoseconds()), "max-ns")
}

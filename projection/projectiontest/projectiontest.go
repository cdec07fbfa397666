// Package projectiontest is the conformance suite of the projection package's SQL tracker contract
// ([TestSQLTracker]): a SQL recorder's tracked transactions are atomic with the projection's writes.
// It also measures the latency from commit to delivery ([MeasureLatency], [BenchmarkLatency]).
//
// Like recordertest, it asserts nothing about speed: its waits fail only after a generous timeout.
package projectiontest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// waitTimeout bounds every wait. Reaching it is a failure, never a measurement.
const waitTimeout = 60 * time.Second

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

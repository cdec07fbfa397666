package benchkit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
)

// LatencyTopic is the topic of the events MeasureLatency inserts.
const LatencyTopic = "bench.Latency"

// LatencyRun is one measurement of commit-to-delivery latency.
type LatencyRun struct {
	Writer es.ApplicationRecorder // inserts the events
	// Subscriber is the recorder whose subscription delivers them: Writer itself when nil, or another
	// recorder on the same store, as in another process.
	Subscriber es.ApplicationRecorder
	Samples    int
	// Pause is the most a write waits, at random, before it is made, so that writes arrive at any
	// point of a subscriber's poll cycle rather than in step with it (0: no pause).
	Pause time.Duration
	// Probe, when set, is timed right after each delivery with the new notification's ID: a baseline
	// such as a raw read of the row.
	Probe func(ctx context.Context, id int64) error
}

type delivery struct {
	id  int64
	at  time.Time
	err error
}

// MeasureLatency measures how long a subscription that is caught up and waiting takes to deliver a
// committed event: run.Samples times, it inserts one event (a new originator each time) and times from
// the return of InsertEvents, when the commit is acknowledged, to the moment the subscription yields
// that event. A delivery before InsertEvents returns counts as 0. It returns the latencies and, when
// run.Probe is set, the probe's times.
//
// The subscription starts after the subscriber's last notification, so the store may hold events
// already; other writers' events delivered meanwhile are passed over. A sample not delivered within
// 10 s is an error.
func MeasureLatency(ctx context.Context, run LatencyRun) (latencies, probes []time.Duration, err error) {
	if run.Samples < 1 {
		return nil, nil, fmt.Errorf("benchkit: measure latency: %d samples", run.Samples)
	}
	sub := run.Subscriber
	if sub == nil {
		sub = run.Writer
	}
	after, err := sub.MaxNotificationID(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("benchkit: measure latency: %w", err)
	}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	deliveries := make(chan delivery, 16)
	go func() {
		defer close(deliveries)
		for n, err := range sub.Subscribe(subCtx, after, LatencyTopic) {
			select {
			case deliveries <- delivery{id: n.ID, at: time.Now(), err: err}:
			case <-subCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for i := range run.Samples {
		if run.Pause > 0 {
			select {
			case <-time.After(rand.N(run.Pause)):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
		id, lat, err := deliver(ctx, run.Writer, deliveries, i)
		if err != nil {
			return nil, nil, fmt.Errorf("benchkit: measure latency: %w", err)
		}
		latencies = append(latencies, lat)
		if run.Probe != nil {
			start := time.Now()
			if err := run.Probe(ctx, id); err != nil {
				return nil, nil, fmt.Errorf("benchkit: measure latency: probe: %w", err)
			}
			probes = append(probes, time.Since(start))
		}
	}
	return latencies, probes, nil
}

// deliver inserts the i-th event through w and waits for its delivery; it returns the event's
// notification ID and the time from the commit to the delivery.
func deliver(ctx context.Context, w es.ApplicationRecorder, deliveries <-chan delivery, i int) (int64, time.Duration, error) {
	e := es.StoredEvent{OriginatorID: NewID(), OriginatorVersion: 1, Topic: LatencyTopic, State: fmt.Appendf(nil, "sample %d", i)}
	ids, err := w.InsertEvents(ctx, []es.StoredEvent{e})
	committed := time.Now()
	if err != nil {
		return 0, 0, fmt.Errorf("insert: %w", err)
	}
	if len(ids) != 1 {
		return 0, 0, fmt.Errorf("InsertEvents returned %d IDs for 1 event", len(ids))
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case d, ok := <-deliveries:
			switch {
			case !ok:
				return 0, 0, fmt.Errorf("subscription ended before notification %d: %w", ids[0], context.Cause(ctx))
			case d.err != nil:
				return 0, 0, fmt.Errorf("subscription: %w", d.err)
			case d.id > ids[0]:
				return 0, 0, fmt.Errorf("notification %d delivered, skipping %d", d.id, ids[0])
			case d.id == ids[0]:
				return ids[0], max(0, d.at.Sub(committed)), nil
			}
		case <-timeout.C:
			return 0, 0, fmt.Errorf("notification %d not delivered within 10 s", ids[0])
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}

// Latency summarises latencies.
type Latency struct {
	Samples  int
	P50, P99 time.Duration
	Max      time.Duration
	Mean     time.Duration
}

// Summarise returns the percentiles (nearest rank), maximum and mean of d.
func Summarise(d []time.Duration) Latency {
	l := Latency{Samples: len(d), P50: Percentile(d, 0.50), P99: Percentile(d, 0.99), Max: Percentile(d, 1)}
	for _, x := range d {
		l.Mean += x
	}
	if len(d) > 0 {
		l.Mean /= time.Duration(len(d))
	}
	return l
}

// String formats l for a log line.
func (l Latency) String() string {
	return fmt.Sprintf("%d samples: p50 %v, p99 %v, max %v, mean %v", l.Samples, l.P50, l.P99, l.Max, l.Mean)
}

// BenchmarkLatency measures b.N latencies of r delivering to itself and reports the percentiles as
// the metrics p50-ns, p99-ns and max-ns (ns/op is the whole round trip: insert, commit and delivery).
func BenchmarkLatency(b *testing.B, r es.ApplicationRecorder) {
	b.Helper()
	b.ResetTimer()
	lat, _, err := MeasureLatency(b.Context(), LatencyRun{Writer: r, Samples: b.N})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	l := Summarise(lat)
	b.ReportMetric(float64(l.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l.P99.Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(l.Max.Nanoseconds()), "max-ns")
}

// LatencyFunc measures latencies, and the times of a baseline (nil when it has none), once.
type LatencyFunc func(ctx context.Context) (latencies, baseline []time.Duration, err error)

// Measure is MeasureLatency of run, as a LatencyFunc.
func (run LatencyRun) Measure(ctx context.Context) (latencies, probes []time.Duration, err error) {
	return MeasureLatency(ctx, run)
}

// LatencyCase is one case of LatencyRounds.
type LatencyCase struct {
	Name    string
	Measure LatencyFunc
}

// LatencySeries is what LatencyRounds measured of one case: per round, the p50 and p99 of its
// latencies and the p50 of its baseline's times; and all its latencies.
type LatencySeries struct {
	P50, P99, Base50 Series
	All              []time.Duration
}

// LatencyRounds measures each case once per round, for rounds rounds, the case that goes first
// rotating from one round to the next so that none always follows the same one. It reports the end of
// each round to progress, when set.
func LatencyRounds(ctx context.Context, rounds int, progress func(format string, args ...any), cases ...LatencyCase) ([]LatencySeries, error) {
	out := make([]LatencySeries, len(cases))
	for r := range rounds {
		for j := range cases {
			i := (r + j) % len(cases)
			lat, base, err := cases[i].Measure(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cases[i].Name, err)
			}
			s := &out[i]
			s.P50 = append(s.P50, Percentile(lat, 0.50).Seconds())
			s.P99 = append(s.P99, Percentile(lat, 0.99).Seconds())
			s.Base50 = append(s.Base50, Percentile(base, 0.50).Seconds())
			s.All = append(s.All, lat...)
		}
		if progress != nil {
			progress("  latency: round %d of %d done", r+1, rounds)
		}
	}
	return out, nil
}

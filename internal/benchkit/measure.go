package benchkit

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"
	"time"
)

// Sample is what one operation did in one round: calls made, units of work done (events,
// notifications, loads) and the wall time they took.
type Sample struct {
	Calls   int
	Units   int64
	Elapsed time.Duration
}

func (s *Sample) add(o Sample) {
	s.Calls += o.Calls
	s.Units += o.Units
	s.Elapsed += o.Elapsed
}

// Rate is units per second.
func (s Sample) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Units) / s.Elapsed.Seconds()
}

// PerCall is seconds per call.
func (s Sample) PerCall() float64 {
	if s.Calls == 0 {
		return 0
	}
	return s.Elapsed.Seconds() / float64(s.Calls)
}

// Op is one measured operation. Call does one call's work (one save, one load, one walk of the log)
// and returns the units it did; Chunk, when set, replaces the loop over Call for one chunk of at
// least d (Writers.Chunk runs goroutines of its own).
type Op struct {
	Name  string
	Call  func(ctx context.Context) (units int, err error)
	Chunk func(ctx context.Context, d time.Duration) (Sample, error)
}

// Plan says how long and how often the operations of one interleaved measurement run.
type Plan struct {
	Rounds   int           // one Sample per operation and round: medians and spreads are over rounds
	Chunks   int           // turns of every operation within a round
	Chunk    time.Duration // the least time of one chunk of one operation
	MinCalls int           // the fewest calls in one chunk
}

func (o Op) run(ctx context.Context, d time.Duration, minCalls int) (Sample, error) {
	var s Sample
	var err error
	if o.Chunk != nil {
		s, err = o.Chunk(ctx, d)
	} else {
		start := time.Now()
		for err == nil && (s.Calls < minCalls || time.Since(start) < d) {
			var n int
			if err = ctx.Err(); err == nil {
				n, err = o.Call(ctx)
				s.Calls++
				s.Units += int64(n)
			}
		}
		s.Elapsed = time.Since(start)
	}
	if err != nil {
		return s, fmt.Errorf("%s: %w", o.Name, err)
	}
	return s, nil
}

// Interleave measures ops in turns, and returns per op one Sample per round. Every round runs each op
// for p.Chunks chunks, alternating between them chunk by chunk, with the op that starts and the
// direction rotating so that none is favoured by going first. A load that comes and goes on the
// machine then falls on all of them alike, and the ratio of two ops within a round is a fair
// comparison even when the absolute figures wander. A garbage collection runs before each chunk,
// outside the timing, so that the garbage an op leaves is not charged to the op after it; each op
// still pays for the collections its own allocations cause. A short warm-up of every op comes first
// and is discarded.
func Interleave(ctx context.Context, p Plan, ops ...Op) ([][]Sample, error) {
	for _, o := range ops {
		if _, err := o.run(ctx, p.Chunk/4, 1); err != nil {
			return nil, err
		}
	}
	out := make([][]Sample, len(ops))
	for i := range out {
		out[i] = make([]Sample, p.Rounds)
	}
	order := make([]int, len(ops))
	for r := range p.Rounds {
		for c := range p.Chunks {
			turn := r*p.Chunks + c
			for j := range order {
				order[j] = (turn + j) % len(ops)
			}
			if turn%2 == 1 {
				slices.Reverse(order)
			}
			for _, i := range order {
				runtime.GC()
				s, err := ops[i].run(ctx, p.Chunk, p.MinCalls)
				if err != nil {
					return nil, err
				}
				out[i][r].add(s)
			}
		}
	}
	return out, nil
}

// Series is one value per round.
type Series []float64

// Median is the median value; NaN for no values.
func (s Series) Median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := slices.Sorted(slices.Values(s))
	return (c[(len(c)-1)/2] + c[len(c)/2]) / 2
}

// Min is the least value; NaN for no values.
func (s Series) Min() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Min(s)
}

// Max is the greatest value; NaN for no values.
func (s Series) Max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Max(s)
}

// Rates returns the rate (units per second) of each round.
func Rates(samples []Sample) Series { return each(samples, Sample.Rate) }

// Times returns the seconds per call of each round.
func Times(samples []Sample) Series { return each(samples, Sample.PerCall) }

func each(samples []Sample, f func(Sample) float64) Series {
	out := make(Series, len(samples))
	for i, s := range samples {
		out[i] = f(s)
	}
	return out
}

// Ratio returns a[i]/b[i] for each round.
func Ratio(a, b Series) Series {
	out := make(Series, len(a))
	for i := range a {
		out[i] = a[i] / b[i]
	}
	return out
}

// Speedup returns, for times per call, how many times faster a is than b in each round: b/a.
func Speedup(a, b Series) Series { return Ratio(b, a) }

// Percentile returns the p-th percentile (0 < p <= 1) of d by the nearest-rank method; 0 for no values.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	c := slices.Sorted(slices.Values(d))
	i := int(math.Ceil(p*float64(len(c)))) - 1
	return c[min(max(i, 0), len(c)-1)]
}

// Run runs op once per iteration of b.Loop and reports its units per second as the metric unit+"/s"
// (events/s, notifications/s …) and its CPU time per iteration as cpu-ns/op (see ReportCPU).
func Run(b *testing.B, op Op, unit string) {
	b.Helper()
	ctx, cpu, units := b.Context(), CPUTime(), 0
	for b.Loop() {
		n, err := op.Call(ctx)
		if err != nil {
			b.Fatalf("%s: %v", op.Name, err)
		}
		units += n
	}
	ReportCPU(b, cpu)
	b.ReportMetric(float64(units)/b.Elapsed().Seconds(), unit+"/s")
}

// Paired runs a recorder's and a baseline's op alternately, once each per iteration, the one that
// goes first alternating too, and reports both times and their ratio as the metrics recorder-ns/op,
// raw-ns/op and x-raw-speed (raw time ÷ recorder time: above 1 the recorder is faster). Alternating
// makes both see the same load, so the ratio holds on a busy machine where the absolute figures do not.
func Paired(b *testing.B, recorder, raw Op) {
	b.Helper()
	ctx := b.Context()
	var t [2]time.Duration
	ops := [2]Op{recorder, raw}
	n := 0
	for b.Loop() {
		for k := range 2 {
			i := (n + k) % 2
			start := time.Now()
			if _, err := ops[i].Call(ctx); err != nil {
				b.Fatalf("%s: %v", ops[i].Name, err)
			}
			t[i] += time.Since(start)
		}
		n++
	}
	b.ReportMetric(float64(t[0].Nanoseconds())/float64(n), "recorder-ns/op")
	b.ReportMetric(float64(t[1].Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(t[1])/float64(t[0]), "x-raw-speed")
}

package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sample is what one operation did during one round: calls made, units of work (events, notifications,
// round trips) and the wall time they took.
type sample struct {
	calls   int
	units   int64
	elapsed time.Duration
}

func (s *sample) add(o sample) {
	s.calls += o.calls
	s.units += o.units
	s.elapsed += o.elapsed
}

// rate is units per second.
func (s sample) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.units) / s.elapsed.Seconds()
}

// perCall is seconds per call.
func (s sample) perCall() float64 {
	if s.calls == 0 {
		return 0
	}
	return s.elapsed.Seconds() / float64(s.calls)
}

// op is one measured operation. call does one unit of the operation's work (one save, one load, one
// page walk) and returns how many units it processed; chunk, when set, replaces the loop over call (the
// concurrent writers run their own goroutines).
type op struct {
	name  string
	call  func(ctx context.Context) (units int, err error)
	chunk func(ctx context.Context, d time.Duration) (sample, error)
}

// plan says how long and how often the operations of one interleaved measurement run.
type plan struct {
	rounds   int           // results are reported per round: median and spread over rounds
	chunks   int           // alternations of the operations within a round
	chunk    time.Duration // minimum time of one chunk of one operation
	minCalls int           // minimum calls per chunk
}

func (o op) runChunk(ctx context.Context, d time.Duration, minCalls int) (sample, error) {
	if o.chunk != nil {
		s, err := o.chunk(ctx, d)
		if err != nil {
			return s, fmt.Errorf("%s: %w", o.name, err)
		}
		return s, nil
	}
	var s sample
	start := time.Now()
	for s.calls < minCalls || time.Since(start) < d {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		n, err := o.call(ctx)
		if err != nil {
			return s, fmt.Errorf("%s: %w", o.name, err)
		}
		s.calls++
		s.units += int64(n)
	}
	s.elapsed = time.Since(start)
	return s, nil
}

// interleave measures ops in turns: every round runs each op for p.chunks chunks, alternating between
// them chunk by chunk (with a garbage collection before each chunk), with the starting op and the direction rotating so that none is favoured by
// going first. A load that comes and goes on the machine then falls on all of them alike, and the
// ratio of two ops within a round is a fair comparison even when the absolute figures wander. It
// returns, per op, one sample per round. A short warm-up of every op comes first and is discarded.
func interleave(ctx context.Context, p plan, ops ...op) ([][]sample, error) {
	k := len(ops)
	for _, o := range ops {
		if _, err := o.runChunk(ctx, p.chunk/4, 1); err != nil {
			return nil, err
		}
	}
	out := make([][]sample, k)
	for i := range out {
		out[i] = make([]sample, p.rounds)
	}
	order := make([]int, k)
	for r := range p.rounds {
		for c := range p.chunks {
			turn := r*p.chunks + c
			for j := range order {
				order[j] = (turn + j) % k
			}
			if turn%2 == 1 {
				slices.Reverse(order)
			}
			for _, i := range order {
				// A collection between chunks, outside the timing: the garbage an op leaves is not
				// charged to whichever op runs next. Each op still pays for the collections its own
				// allocations cause during its chunk.
				runtime.GC()
				s, err := ops[i].runChunk(ctx, p.chunk, p.minCalls)
				if err != nil {
					return nil, err
				}
				out[i][r].add(s)
			}
		}
	}
	return out, nil
}

// concurrent returns a chunk function that runs writers goroutines, each calling save in a loop until d
// has passed, and reports the saves made (each saving unitsPerSave units) and the time until the last
// goroutine finished.
func concurrent(writers, unitsPerSave int, save func(ctx context.Context, writer int) error) func(context.Context, time.Duration) (sample, error) {
	return func(ctx context.Context, d time.Duration) (sample, error) {
		var calls atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		start := time.Now()
		deadline := start.Add(d)
		for w := range writers {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					if err := save(ctx, w); err != nil {
						errs <- err
						return
					}
					calls.Add(1)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(errs)
		if err := <-errs; err != nil {
			return sample{}, err
		}
		n := calls.Load()
		return sample{calls: int(n), units: n * int64(unitsPerSave), elapsed: elapsed}, nil
	}
}

// series is one value per round.
type series []float64

func (s series) sorted() []float64 {
	c := slices.Clone([]float64(s))
	slices.Sort(c)
	return c
}

func (s series) median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := s.sorted()
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

func (s series) min() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Min(s)
}

func (s series) max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Max(s)
}

// rates returns the rate of each round.
func rates(samples []sample) series {
	out := make(series, len(samples))
	for i, s := range samples {
		out[i] = s.rate()
	}
	return out
}

// times returns the seconds per call of each round.
func times(samples []sample) series {
	out := make(series, len(samples))
	for i, s := range samples {
		out[i] = s.perCall()
	}
	return out
}

// ratio returns a[i]/b[i] for each round.
func ratio(a, b series) series {
	out := make(series, len(a))
	for i := range a {
		out[i] = a[i] / b[i]
	}
	return out
}

// speedup returns, per round, how many times faster a is than b given seconds per call: b/a.
func speedup(a, b series) series { return ratio(b, a) }

// percentile returns the p-th percentile (0 < p <= 1) of durations by the nearest-rank method.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	c := slices.Clone(d)
	slices.Sort(c)
	i := int(math.Ceil(p*float64(len(c)))) - 1
	return c[min(max(i, 0), len(c)-1)]
}

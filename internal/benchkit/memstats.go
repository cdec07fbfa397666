package benchkit

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// CountAllocs runs f n times, after a collection, and returns the heap allocations and bytes per call,
// counted by the runtime for the whole process: the work of background goroutines (such as the SQLite
// writer) counts too.
func CountAllocs(n int, f func() error) (allocs, bytes float64, err error) {
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for range n {
		if err := f(); err != nil {
			return 0, 0, err
		}
	}
	runtime.ReadMemStats(&b)
	return float64(b.Mallocs-a.Mallocs) / float64(n), float64(b.TotalAlloc-a.TotalAlloc) / float64(n), nil
}

// PeakHeap runs f once and returns the peak of the heap's object bytes above what they were before
// (after a collection), sampled every 100 µs while f runs. Garbage not yet collected counts: it is
// memory the process holds.
func PeakHeap(f func() error) (float64, error) {
	read := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	peak := base
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(100 * time.Microsecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				peak = max(peak, read())
			}
		}
	}()
	err := f()
	close(stop)
	<-done
	peak = max(peak, read())
	return float64(peak - base), err
}

// ReportCPU reports the CPU time per operation since start (a CPUTime) as the metric cpu-ns/op.
// Unlike ns/op it does not grow when other processes take the machine's cores, so it compares a
// recorder and its raw loop fairly on a busy machine; wall time is what counts where syncs dominate.
func ReportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(CPUTime()-start)/float64(b.N), "cpu-ns/op")
}

// Footprint measures fig and its baseline base in turn, rounds times each, the one that goes first
// alternating every other round. Before each measurement prepare runs (uncounted); then it takes,
// when peak, the peak heap of one call (PeakHeap), else the heap allocations and bytes per call of
// calls calls (CountAllocs). It returns per op the series of peaks or allocations, and of bytes
// (zeros for peaks).
func Footprint(ctx context.Context, rounds, calls int, peak bool, prepare func(), fig, base Op) (figure, baseline [2]Series, err error) {
	for r := range rounds * 2 {
		op, dst := fig, &figure
		if r%4 == 1 || r%4 == 2 {
			op, dst = base, &baseline
		}
		prepare()
		call := func() error { _, err := op.Call(ctx); return err }
		var a, b float64
		if peak {
			a, err = PeakHeap(call)
		} else {
			a, b, err = CountAllocs(calls, call)
		}
		if err != nil {
			return figure, baseline, fmt.Errorf("%s: %w", op.Name, err)
		}
		dst[0], dst[1] = append(dst[0], a), append(dst[1], b)
	}
	return figure, baseline, nil
}

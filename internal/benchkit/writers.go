package benchkit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// SaveFunc saves one event of version v of originator id, for writer w.
type SaveFunc func(ctx context.Context, w int, id uuid.UUID, v int64) error

// Writers is a set of concurrent writers, each saving one event per call to an aggregate of its own.
// Each writer's aggregate and next version are kept from one Run to the next.
type Writers struct {
	save SaveFunc
	ids  []uuid.UUID
	next []int64
}

// NewWriters returns n writers that save with save.
func NewWriters(n int, save SaveFunc) *Writers {
	ws := &Writers{save: save, ids: make([]uuid.UUID, n), next: make([]int64, n)}
	for w := range ws.ids {
		ws.ids[w], ws.next[w] = NewID(), 1
	}
	return ws
}

// Run runs every writer in a goroutine of its own until they have made saves saves in all (when
// saves > 0) or until d has passed (when d > 0), and returns the saves made (one unit each) and the
// time until the last writer finished. The first error stops every writer, and so does the end of ctx.
func (ws *Writers) Run(ctx context.Context, saves int, d time.Duration) (Sample, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var taken, done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range ws.ids {
		wg.Go(func() {
			for ctx.Err() == nil && (saves <= 0 || taken.Add(1) <= int64(saves)) && (d <= 0 || time.Now().Before(deadline)) {
				if err := ws.save(ctx, w, ws.ids[w], ws.next[w]); err != nil {
					cancel(err)
					return
				}
				ws.next[w]++
				done.Add(1)
			}
		})
	}
	wg.Wait()
	s := Sample{Calls: int(done.Load()), Units: done.Load(), Elapsed: time.Since(start)}
	return s, context.Cause(ctx)
}

// Chunk runs the writers for d: an Op's Chunk.
func (ws *Writers) Chunk(ctx context.Context, d time.Duration) (Sample, error) {
	return ws.Run(ctx, 0, d)
}

// WritersOp runs n Writers that save with save, for a chunk of time per call: its units are events.
func WritersOp(name string, n int, save SaveFunc) Op {
	return Op{Name: name, Chunk: NewWriters(n, save).Chunk}
}

// RunWriters runs ws for b.N saves in all and reports their rate as the metric events/s and the CPU
// time per save as cpu-ns/op.
func RunWriters(b *testing.B, ws *Writers) {
	b.Helper()
	b.ResetTimer()
	cpu := CPUTime()
	s, err := ws.Run(b.Context(), b.N, 0)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	ReportCPU(b, cpu)
	b.ReportMetric(s.Rate(), "events/s")
}

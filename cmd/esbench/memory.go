package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
)

// countAllocs runs f n times and returns the heap allocations and bytes per call, counted by the
// runtime for the whole process (so the SQLite writer goroutine's work is included).
func countAllocs(n int, f func(i int) error) (allocs, bytes float64, err error) {
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for i := range n {
		if err := f(i); err != nil {
			return 0, 0, err
		}
	}
	runtime.ReadMemStats(&b)
	return float64(b.Mallocs-a.Mallocs) / float64(n), float64(b.TotalAlloc-a.TotalAlloc) / float64(n), nil
}

// peakHeap runs f once and returns the peak of the heap's object bytes above what they were before
// (after a collection), sampled every 100 µs while f runs. Garbage not yet collected counts: it is
// memory the process holds.
func peakHeap(f func() error) (float64, error) {
	const name = "/memory/classes/heap/objects:bytes"
	read := func() uint64 {
		s := []metrics.Sample{{Name: name}}
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

// memPath is a path measured against its baseline; prepare runs outside the count before each batch of
// calls (it makes the aggregates with pending events that Save will record).
type memPath struct {
	name, base string
	n          int
	prepare    func(ctx context.Context, n int) error
	fig, raw   func(ctx context.Context, i int) error
}

func runMemory(ctx context.Context, e *env, s *section, tg *targets) error {
	s.intro = "Heap allocations and bytes allocated per call (counted by the runtime for the whole process, so background " +
		"goroutines such as the SQLite writer count too) on the save path (`Repository.Save` of aggregates with pending " +
		"events: mapper, event store, recorder) and the load path (`Repository.Get` without snapshots), and the peak heap " +
		"while one large load or save runs. The baselines are the hand-written equivalents of sections 1 and 4: " +
		"`json.Marshal` of each event and the raw insert; the raw SELECT, `json.Unmarshal` and `Apply`. SQLite runs at " +
		"synchronous NORMAL here (allocations do not depend on it)."
	small, large, save1, save100, load := 1000, 10000, 200, 20, 10
	bigSave := 1000
	if e.cfg.quick {
		small, large, save1, save100, load, bigSave = 50, 200, 5, 2, 2, 100
	}
	stores, err := newLoadStores(ctx, e)
	if err != nil {
		return err
	}
	at := table{header: []string{"Path", "Allocs/call (median)", "Bytes/call (median)", "Baseline", "Baseline allocs/call", "Baseline bytes/call", "Allocs ÷ baseline", "Bytes ÷ baseline"}}
	pt := table{header: []string{"Path", "Peak heap (median)", "Spread (min – max)", "Baseline", "Baseline peak (median)", "Peak ÷ baseline"}}
	defer func() { s.tables = append(s.tables, at, pt) }()

	for _, ls := range stores {
		e.logf("  memory: %s: building aggregates", ls.name)
		smallID, smallRaw, err := ls.buildAccount(ctx, small)
		if err != nil {
			return err
		}
		largeID, largeRaw, err := ls.buildAccount(ctx, large)
		if err != nil {
			return err
		}
		// Aggregates with pending events, made before each counted batch.
		var accs []*Account
		var rawEvents [][]any
		prepare := func(events int) func(ctx context.Context, n int) error {
			return func(ctx context.Context, n int) error {
				accs, rawEvents = accs[:0], rawEvents[:0]
				for range n {
					a := &Account{}
					var datas []any
					for j := range events {
						d := deposit(j)
						aggregate.Trigger(a, d)
						datas = append(datas, d)
					}
					accs = append(accs, a)
					rawEvents = append(rawEvents, datas)
				}
				return nil
			}
		}
		rawSave := func(ctx context.Context, i int) error {
			id := newID()
			events := make([]es.StoredEvent, len(rawEvents[i]))
			for j, d := range rawEvents[i] {
				b, err := json.Marshal(d)
				if err != nil {
					return err
				}
				events[j] = es.StoredEvent{OriginatorID: id, OriginatorVersion: int64(j + 1), Topic: topicDeposited, State: b}
			}
			return ls.rawAppend(ctx, events)
		}
		save := func(ctx context.Context, i int) error { _, err := ls.noSnaps.Save(ctx, accs[i]); return err }
		getter := func(id uuid.UUID, n int) func(ctx context.Context, i int) error {
			return func(ctx context.Context, i int) error {
				a, err := ls.noSnaps.Get(ctx, id)
				if err == nil && a.Version != int64(n) {
					err = fmt.Errorf("loaded version %d, want %d", a.Version, n)
				}
				return err
			}
		}
		rawGetter := func(id uuid.UUID, n int) func(ctx context.Context, i int) error {
			return func(ctx context.Context, i int) error {
				a, err := rawLoad(ctx, ls.rawEvents, id)
				if err == nil && a.Version != int64(n) {
					err = fmt.Errorf("loaded version %d, want %d", a.Version, n)
				}
				return err
			}
		}
		noPrep := func(context.Context, int) error { return nil }
		paths := []memPath{
			{fmt.Sprintf("%s: Save, 1 event", ls.name), "json.Marshal + raw insert", save1, prepare(1), save, rawSave},
			{fmt.Sprintf("%s: Save, 100 events", ls.name), "json.Marshal + raw insert", save100, prepare(100), save, rawSave},
			{fmt.Sprintf("%s: Get, %s events", ls.name, commas(int64(small))), ls.baseLabel, load, noPrep, getter(smallID, small), rawGetter(smallRaw, small)},
		}
		e.logf("  memory: %s: allocations", ls.name)
		for _, p := range paths {
			var fa, fb, ba, bb series
			for r := range e.cfg.runs {
				for k := range 2 {
					fig := (r+k)%2 == 0
					if err := p.prepare(ctx, p.n); err != nil {
						return err
					}
					f := p.raw
					if fig {
						f = p.fig
					}
					a, b, err := countAllocs(p.n, func(i int) error { return f(ctx, i) })
					if err != nil {
						return fmt.Errorf("%s: %w", p.name, err)
					}
					if fig {
						fa, fb = append(fa, a), append(fb, b)
					} else {
						ba, bb = append(ba, a), append(bb, b)
					}
				}
			}
			at.add(p.name, sig3(fa.median()), fmtBytes(fb.median()), p.base, sig3(ba.median()), fmtBytes(bb.median()),
				fmtRatio(ratio(fa, ba).median()), fmtRatio(ratio(fb, bb).median()))
		}

		e.logf("  memory: %s: peak heap", ls.name)
		peaks := []memPath{
			{fmt.Sprintf("%s: Get, %s events, no snapshots", ls.name, commas(int64(large))), ls.baseLabel, 1, noPrep, getter(largeID, large), rawGetter(largeRaw, large)},
			{fmt.Sprintf("%s: Save, %s events in one save", ls.name, commas(int64(bigSave))), "json.Marshal + raw insert", 1, prepare(bigSave), save, rawSave},
		}
		for _, p := range peaks {
			var fig, base series
			for r := range e.cfg.runs {
				for k := range 2 {
					isFig := (r+k)%2 == 0
					if err := p.prepare(ctx, 1); err != nil {
						return err
					}
					f := p.raw
					if isFig {
						f = p.fig
					}
					v, err := peakHeap(func() error { return f(ctx, 0) })
					if err != nil {
						return fmt.Errorf("%s: %w", p.name, err)
					}
					if isFig {
						fig = append(fig, v)
					} else {
						base = append(base, v)
					}
				}
			}
			pt.add(p.name, fmtBytes(fig.median()), spread(fig, fmtBytes), p.base, fmtBytes(base.median()), ratioCell(ratio(fig, base)))
		}
	}
	s.notes = append(s.notes, "Ratios here are figure ÷ baseline: above 1× the path allocates (or holds) more than the "+
		"hand-written code. Peak heap is sampled every 100 µs from runtime/metrics (heap object bytes, including garbage "+
		"not yet collected) after a collection, so it depends on the collector's pacing (GOGC=100) as a real process "+
		"does. No target is set for these figures.")
	return nil
}

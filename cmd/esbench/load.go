package main

import (
	"context"
	"fmt"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/memory"
)

// snapshotEvery is the snapshot interval of the load scenarios.
const snapshotEvery = 100

// loadStore is one store of accounts with the label of its raw twin's load.
type loadStore struct {
	name, baseLabel string
	*benchkit.LoadStore
}

func newLoadStores(ctx context.Context, e *env) ([]loadStore, error) {
	memLog := benchkit.NewMemLog()
	mem, err := benchkit.NewLoadStore(memory.NewProcessRecorder(), memory.NewAggregateRecorder(), snapshotEvery, memLog.Append, memLog.SelectEvents)
	if err != nil {
		return nil, err
	}
	// Loads do not depend on the synchronous setting; NORMAL makes building the aggregates quicker.
	const sy = sqlite.SynchronousNormal
	o := e.opener(ctx)
	rec, db := o.sqlite("load", sy)
	snaps := o.sqliteSnapshots(db, sy)
	rawDB := o.sqliteDB(e.sqlitePath("load-raw"), sy)
	w, rd := o.sqliteWriter(rawDB), o.sqliteReader(rawDB)
	if o.err != nil {
		return nil, o.err
	}
	lite, err := benchkit.NewLoadStore(rec, snaps, snapshotEvery, w.Append, rd.SelectEvents)
	return []loadStore{{"memory", "map + slice, json.Unmarshal, Apply", mem}, {"SQLite", "raw SELECT, json.Unmarshal, Apply", lite}}, err
}

func runLoad(ctx context.Context, e *env, s *section) error {
	sizes := pick(e.cfg, []int{10, 100, 1000, 10000}, []int{10, 100, 200})
	s.intro = fmt.Sprintf("`Repository.Get` of an account aggregate of n events, built by saves of 10 events; the figure is the "+
		"time of one load. With snapshots (every %d events, plain mapper) the load reads the latest snapshot and the events "+
		"after it; its baseline is the load without snapshots, which replays every event. The baseline of the load without "+
		"snapshots is a hand-written load of the same events stored as plain JSON: one raw SELECT through the same driver "+
		"(for memory: a map and a slice), `json.Unmarshal` into the event struct and `Apply`, with none of the mapper's "+
		"header, checksum, envelope or the repository's checks. The account's state has a fixed size, so its snapshot costs the "+
		"same at every version.", snapshotEvery)
	stores, err := newLoadStores(ctx, e)
	if err != nil {
		return err
	}
	lo, hi := commas(int64(sizes[len(sizes)-2])), commas(int64(sizes[len(sizes)-1]))
	t := s.table("", cmpHeader...)
	flat := s.table(fmt.Sprintf("Snapshot-bounded load, %s against %s events (time ratio, lower is flatter; target ≤ %.1f):", hi, lo, flatTarget),
		"Store", lo+" events (median)", hi+" events (median)", "Time ratio (median, range)", "Target", "Result")
	for _, ls := range stores {
		e.logf("  load: %s: building aggregates of %v events", ls.name, sizes)
		var ops []benchkit.Op
		for _, n := range sizes {
			id, rawID, err := ls.Build(ctx, n)
			if err != nil {
				return fmt.Errorf("%s: build an aggregate of %d events: %w", ls.name, n, err)
			}
			name := fmt.Sprintf("%s, %d events", ls.name, n)
			ops = append(ops, benchkit.LoadOp(name+", snapshots", ls.WithSnapshots.Get, id, n),
				benchkit.LoadOp(name+", no snapshots", ls.NoSnapshots.Get, id, n), benchkit.LoadOp(name+", raw", ls.RawGet, rawID, n))
		}
		e.logf("  load: %s: measuring", ls.name)
		p := e.cfg.plan()
		p.Chunk /= 2
		p.MinCalls = 1
		res, err := benchkit.Interleave(ctx, p, ops...)
		if err != nil {
			return err
		}
		var snap []benchkit.Series
		for i, n := range sizes {
			snap = append(snap, benchkit.Times(res[3*i]))
			none, raw := benchkit.Times(res[3*i+1]), benchkit.Times(res[3*i+2])
			t.cmp(fmt.Sprintf("%s, %s events, snapshots every %d", ls.name, commas(int64(n)), snapshotEvery), "same, no snapshots", snap[i], none, fmtSeconds, benchkit.Speedup(snap[i], none), nil)
			t.cmp(fmt.Sprintf("%s, %s events, no snapshots", ls.name, commas(int64(n))), ls.baseLabel, none, raw, fmtSeconds, benchkit.Speedup(none, raw), nil)
		}
		a, b := snap[len(sizes)-2], snap[len(sizes)-1]
		x := s.target(target{what: fmt.Sprintf("%s, snapshot-bounded load, %s vs %s events (time ratio)", ls.name, hi, lo), got: benchkit.Ratio(b, a), want: flatTarget, atMost: true})
		flat.add(ls.name, fmtSeconds(a.Median()), fmtSeconds(b.Median()), ratioCell(x.got), x.required(), x.verdict())
	}
	s.notes = append(s.notes, "Ratios in the first table are speed-ups (baseline time ÷ figure time): above 1× the figure is faster. "+
		"Each aggregate's last 99 events were saved without taking a snapshot, so a snapshot-bounded load replays at "+
		"least 99 events after the newest snapshot: the worst case for an interval of 100.")
	return nil
}

func runMemory(ctx context.Context, e *env, s *section) error {
	s.intro = "Heap allocations and bytes allocated per call (counted by the runtime for the whole process, so background " +
		"goroutines such as the SQLite writer count too) on the save path (`Repository.Save` of aggregates with pending " +
		"events: mapper, event store, recorder) and the load path (`Repository.Get` without snapshots), and the peak heap " +
		"while one large load or save runs. The baselines are the hand-written equivalents of sections 1 and 4: " +
		"`json.Marshal` of each event and the raw insert; the raw SELECT, `json.Unmarshal` and `Apply`. SQLite runs at " +
		"synchronous NORMAL here (allocations do not depend on it)."
	n := pick(e.cfg, []int{1000, 10000, 200, 20, 10, 1000}, []int{50, 200, 5, 2, 2, 100})
	small, large, save1, save100, loads, bigSave := n[0], n[1], n[2], n[3], n[4], n[5]
	stores, err := newLoadStores(ctx, e)
	if err != nil {
		return err
	}
	at := s.table("", "Path", "Allocs/call (median)", "Bytes/call (median)", "Baseline", "Baseline allocs/call", "Baseline bytes/call", "Allocs ÷ baseline", "Bytes ÷ baseline")
	pt := s.table("", "Path", "Peak heap (median)", "Spread (min – max)", "Baseline", "Baseline peak (median)", "Peak ÷ baseline")
	for _, ls := range stores {
		e.logf("  memory: %s", ls.name)
		smallID, smallRaw, err := ls.Build(ctx, small)
		if err != nil {
			return err
		}
		largeID, largeRaw, err := ls.Build(ctx, large)
		if err != nil {
			return err
		}
		// Before each measurement of saves, the accounts with pending deposits that it saves, and the
		// deposits for the baseline.
		var accs []*benchkit.Account
		var deposits [][]any
		next := 0
		prepare := func(events, n int) {
			accs, deposits, next = accs[:0], deposits[:0], 0
			for range n * min(events, 1) {
				a, ds := &benchkit.Account{}, make([]any, events)
				for j := range ds {
					ds[j] = benchkit.Deposit(j)
					aggregate.Trigger(a, ds[j])
				}
				accs, deposits = append(accs, a), append(deposits, ds)
			}
		}
		save := benchkit.Op{Name: "Save", Call: func(ctx context.Context) (int, error) {
			next++
			return 1, ls.NoSnapshots.Save(ctx, accs[next-1])
		}}
		rawSave := benchkit.Op{Name: "raw save", Call: func(ctx context.Context) (int, error) {
			next++
			return 1, ls.RawSave(ctx, benchkit.NewID(), 0, deposits[next-1])
		}}
		const saveBase = "json.Marshal + raw insert"
		for _, p := range []struct {
			name, base    string
			calls, events int  // calls per measurement; events per save (0: a load)
			peak          bool // the peak heap of one call, else allocations per call
			fig, raw      benchkit.Op
		}{
			{ls.name + ": Save, 1 event", saveBase, save1, 1, false, save, rawSave},
			{ls.name + ": Save, 100 events", saveBase, save100, 100, false, save, rawSave},
			{fmt.Sprintf("%s: Get, %s events", ls.name, commas(int64(small))), ls.baseLabel, loads, 0, false,
				benchkit.LoadOp("Get", ls.NoSnapshots.Get, smallID, small), benchkit.LoadOp("raw load", ls.RawGet, smallRaw, small)},
			{fmt.Sprintf("%s: Get, %s events, no snapshots", ls.name, commas(int64(large))), ls.baseLabel, 1, 0, true,
				benchkit.LoadOp("Get", ls.NoSnapshots.Get, largeID, large), benchkit.LoadOp("raw load", ls.RawGet, largeRaw, large)},
			{fmt.Sprintf("%s: Save, %s events in one save", ls.name, commas(int64(bigSave))), saveBase, 1, bigSave, true, save, rawSave},
		} {
			// The figure and the baseline in turn, the one that goes first alternating.
			var fig, base [2]benchkit.Series
			for r := range e.cfg.runs * 2 {
				op, dst := p.fig, &fig
				if r%4 == 1 || r%4 == 2 {
					op, dst = p.raw, &base
				}
				prepare(p.events, p.calls)
				call := func() error { _, err := op.Call(ctx); return err }
				var a, b float64
				if p.peak {
					a, err = benchkit.PeakHeap(call)
				} else {
					a, b, err = benchkit.CountAllocs(p.calls, call)
				}
				if err != nil {
					return fmt.Errorf("%s: %s: %w", p.name, op.Name, err)
				}
				dst[0], dst[1] = append(dst[0], a), append(dst[1], b)
			}
			if p.peak {
				pt.add(p.name, fmtBytes(fig[0].Median()), spread(fig[0], fmtBytes), p.base, fmtBytes(base[0].Median()), ratioCell(benchkit.Ratio(fig[0], base[0])))
			} else {
				at.add(p.name, sig3(fig[0].Median()), fmtBytes(fig[1].Median()), p.base, sig3(base[0].Median()), fmtBytes(base[1].Median()),
					fmtRatio(benchkit.Ratio(fig[0], base[0]).Median()), fmtRatio(benchkit.Ratio(fig[1], base[1]).Median()))
			}
		}
	}
	s.notes = append(s.notes, "Ratios here are figure ÷ baseline: above 1× the path allocates (or holds) more than the "+
		"hand-written code. Peak heap is sampled every 100 µs from runtime/metrics (heap object bytes, including garbage "+
		"not yet collected) after a collection, so it depends on the collector's pacing (GOGC=100) as a real process "+
		"does. No target is set for these figures.")
	return nil
}

package main

import (
	"context"
	"fmt"

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
	lo, hi := commas(int64(sizes[len(sizes)-2])), commas(int64(sizes[len(sizes)-1]))
	s.Vars = map[string]any{"SnapshotEvery": snapshotEvery, "Lo": lo, "Hi": hi, "FlatTarget": flatTarget, "CodecTarget": codecTarget}
	stores, err := newLoadStores(ctx, e)
	if err != nil {
		return err
	}
	t := s.table("", cmpHeader...)
	flat := s.table("load flat", "Store", lo+" events (median)", hi+" events (median)", "Time ratio (median, range)", "Target", "Result")
	for _, ls := range stores {
		e.logf("  load: %s: building aggregates of %v events", ls.name, sizes)
		var ops []benchkit.Op
		for _, n := range sizes {
			o, err := ls.LoadOps(ctx, ls.name, n)
			if err != nil {
				return err
			}
			ops = append(ops, o...)
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
			r := res[benchkit.LoadKinds*i:]
			snap = append(snap, benchkit.Times(r[benchkit.LoadSnapshots]))
			none, raw, std := benchkit.Times(r[benchkit.LoadNoSnapshots]), benchkit.Times(r[benchkit.LoadRaw]), benchkit.Times(r[benchkit.LoadStdJSON])
			label := fmt.Sprintf("%s, %s events, ", ls.name, commas(int64(n)))
			t.cmp(label+fmt.Sprintf("snapshots every %d", snapshotEvery), "same, no snapshots", snap[i], none, fmtSeconds, benchkit.Speedup(snap[i], none), nil)
			t.cmp(label+"no snapshots", ls.baseLabel, none, raw, fmtSeconds, benchkit.Speedup(none, raw), nil)
			var x *target
			if n == 1000 {
				x = s.target(target{what: label + "no snapshots, vs the StdJSON codec", got: benchkit.Speedup(none, std), want: codecTarget})
			}
			t.cmp(label+"no snapshots", "same, StdJSON codec (encoding/json)", none, std, fmtSeconds, benchkit.Speedup(none, std), x)
		}
		a, b := snap[len(sizes)-2], snap[len(sizes)-1]
		x := s.target(target{what: fmt.Sprintf("%s, snapshot-bounded load, %s vs %s events (time ratio)", ls.name, hi, lo), got: benchkit.Ratio(b, a), want: flatTarget, atMost: true})
		flat.add(ls.name, fmtSeconds(a.Median()), fmtSeconds(b.Median()), ratioCell(x.got), x.required(), x.verdict())
	}
	return nil
}

// runHooks measures the save and load paths with a tracer that does nothing beside none and, but in
// -quick mode, with the OpenTelemetry module's tracer beside none (see benchkit.MeasureHooks).
func runHooks(ctx context.Context, e *env, s *section) error {
	s.Vars = map[string]any{"Load": benchkit.HookLoad, "OTel": !e.cfg.quick}
	o := e.opener(ctx)
	db := o.sqliteDB(e.sqlitePath("hooks"), sqlite.SynchronousNormal)
	if o.err != nil {
		return o.err
	}
	costs, err := benchkit.MeasureHooks(ctx, e.cfg.plan(), db, !e.cfg.quick)
	t := s.table("", cmpHeader...)
	for _, c := range costs {
		t.cmp(c.Case, c.Baseline, c.Figure, c.Base, fmtSeconds, benchkit.Speedup(c.Figure, c.Base), nil)
	}
	return err
}

func runMemory(ctx context.Context, e *env, s *section) error {
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
		saves := ls.Saves()
		save, rawSave := saves.Save(), saves.Raw()
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
			prepare := func() { saves.Prepare(p.events, p.calls) }
			fig, base, err := benchkit.Footprint(ctx, e.cfg.runs, p.calls, p.peak, prepare, p.fig, p.raw)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			if p.peak {
				pt.add(p.name, fmtBytes(fig[0].Median()), spread(fig[0], fmtBytes), p.base, fmtBytes(base[0].Median()), ratioCell(benchkit.Ratio(fig[0], base[0])))
			} else {
				at.add(p.name, sig3(fig[0].Median()), fmtBytes(fig[1].Median()), p.base, sig3(base[0].Median()), fmtBytes(base[1].Median()),
					fmtRatio(benchkit.Ratio(fig[0], base[0]).Median()), fmtRatio(benchkit.Ratio(fig[1], base[1]).Median()))
			}
		}
	}
	return nil
}

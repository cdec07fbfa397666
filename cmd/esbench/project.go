package main

import (
	"context"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// catchUpStore is a store of the projection scenarios: an upstream log with a read model beside it,
// and (when asked for) the store of a process application.
type catchUpStore struct {
	name string
	*benchkit.CatchUp
	follower es.ProcessRecorder
}

// catchUpStores opens, with o, the stores of the projection scenarios, each with a log of events
// deposits: on SQLite at synchronous FULL and on PostgreSQL with the default (xid) ordering.
func catchUpStores(o *opener, s *section, events int, followers bool) []catchUpStore {
	const full, xid = sqlite.SynchronousFull, postgres.OrderingXID
	rec, db := o.sqlite(s.Name, full)
	stores := []catchUpStore{{name: "SQLite FULL", CatchUp: benchkit.NewCatchUp(rec, db, "")}}
	if followers {
		stores[0].follower, _ = o.sqlite(s.Name+"-follower", full)
	}
	if !s.skipped(o.e) {
		r, name := o.postgres(xid)
		stores = append(stores, catchUpStore{name: "PostgreSQL", CatchUp: benchkit.NewCatchUp(r, o.e.pg, name)})
		if followers {
			stores[1].follower, _ = o.postgres(xid)
		}
	}
	for _, st := range stores {
		o.do(func() error { return st.Fill(o.ctx, events) })
	}
	return stores
}

// runCatchUp measures, store by store, projections (process applications in the process scenario)
// catching up with a log from its start, beside the hand-written loop and one event per transaction.
func runCatchUp(ctx context.Context, e *env, s *section) error {
	process := s.Name == "process"
	n, first := pick(e.cfg, 10_000, 500), pick(e.cfg, 1_000, 100) // events in the log; processed one per transaction
	s.Vars = map[string]any{"Events": n, "Save": benchkit.CatchUpSave, "Page": benchkit.CatchUpPage, "First": first,
		"Batch": projection.DefaultBatchSize, "LoopTarget": loopTarget, "BatchTarget": batchTarget}
	o := e.opener(ctx)
	stores := catchUpStores(o, s, n, process)
	if o.err != nil {
		return o.err
	}
	t := s.table("", cmpHeader...)
	for _, st := range stores {
		e.logf("  %s: %s", s.Name, st.name)
		label, ops := st.name+" projection runner", []benchkit.Op{st.RunnerOp("runner", n), st.LoopOp("loop"), st.PerEventOp("runner-1", nil, first)}
		if f := st.follower; process {
			label, ops = st.name+" process application", []benchkit.Op{st.ProcessOp("process", f, n), st.ProcessLoopOp("loop", f), st.PerEventOp("process-1", f, first)}
		}
		res, err := benchkit.Interleave(ctx, benchkit.Plan{Rounds: e.cfg.runs, Chunks: 1, MinCalls: 1}, ops...)
		if err != nil {
			return err
		}
		fig, loop, single := benchkit.Rates(res[0]), benchkit.Rates(res[1]), benchkit.Rates(res[2])
		x := s.target(target{what: label + " vs hand-written loop", got: benchkit.Ratio(fig, loop), want: loopTarget})
		t.cmp(label, "hand-written loop, pages of 1,000", fig, loop, evPerSec, x.got, x)
		y := s.target(target{what: label + " vs one event per transaction", got: benchkit.Ratio(fig, single), want: batchTarget})
		t.cmp(label, "same, one event per transaction", fig, single, evPerSec, y.got, y)
	}
	return nil
}

func runLive(ctx context.Context, e *env, s *section) error {
	samples := pick(e.cfg, 100, 5)
	s.Vars = map[string]any{"Samples": samples, "Batch": projection.DefaultBatchSize}
	// The batched runners first, then those of one event per transaction; each on a store of its own,
	// so that neither runner's transactions delay the other's.
	o := e.opener(ctx)
	var cases []benchkit.LatencyCase
	for _, size := range []int{projection.DefaultBatchSize, 1} {
		for _, st := range catchUpStores(o, s, 0, false) {
			l := open(o, true, func() (*benchkit.Live, error) {
				return st.Live(ctx, s.Name, samples, projection.WithBatch(size, projection.DefaultBatchTime))
			})
			cases = append(cases, benchkit.LatencyCase{Name: st.name, Measure: l.Measure})
		}
	}
	if o.err != nil {
		return o.err
	}
	res, err := benchkit.LatencyRounds(ctx, e.cfg.runs, e.logf, cases...)
	if err != nil {
		return err
	}
	t := s.table("", latencyHeader("one per transaction", "Target (p50)")...)
	for i, b := range res[:len(res)/2] {
		single := res[i+len(res)/2]
		x := s.target(target{what: "p50 applied, " + cases[i].Name + ", batched runner vs one event per transaction",
			got: b.P50, want: single.P50.Max(), atMost: true, format: fmtSeconds})
		t.latency(cases[i].Name+", batched runner", b, single.P50, x)
		t.latency(cases[i].Name+", one event per transaction", single, nil, nil)
	}
	return nil
}

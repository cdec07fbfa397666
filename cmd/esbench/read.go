package main

import (
	"context"
	"time"

	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

// logPage is the page size of the notification log scenario.
const logPage = 1000

func runLog(ctx context.Context, e *env, s *section) error {
	total := pick(e.cfg, 100_000, 2_000)
	state := benchkit.SampleState()
	s.Vars = map[string]any{"Total": total, "StateBytes": len(state), "Page": logPage, "PostgreSQL": false}
	t := s.table("", cmpHeader...)
	p := e.cfg.plan()
	p.MinCalls = 1
	p.Chunks = max(p.Chunks/2, 1) // one call (a walk of the whole log) takes longer than a chunk
	walk := func(name string, next benchkit.PageFunc) benchkit.Op {
		return benchkit.WalkOp(name, next, logPage, total)
	}
	row := func(label, baseLabel string, fig, base []benchkit.Sample, want float64) {
		f, b := benchkit.Rates(fig), benchkit.Rates(base)
		x := s.target(target{what: label + " vs raw SELECT", got: benchkit.Ratio(f, b), want: want})
		t.cmp(label, baseLabel, f, b, fmtRate("notifications/s"), x.got, x)
	}

	e.logf("  log: SQLite: writing %d events", total)
	o := e.opener(ctx)
	r, db := o.sqlite("log", sqlite.SynchronousNormal)
	o.do(func() error { return benchkit.FillLog(ctx, r, total, state) })
	rd := o.sqliteReader(db)
	e.logf("  log: SQLite: measuring")
	res, err := o.interleave(p, walk("SQLite recorder", benchkit.RecorderPages(r)), walk("SQLite raw", rd.SelectPage))
	if err != nil {
		return err
	}
	row("SQLite recorder, pages of 1,000", "raw SELECT … LIMIT, same pages", res[0], res[1], rawTarget)

	if s.skipped(e) {
		return nil
	}
	var ops []benchkit.Op
	for _, ord := range orderings {
		e.logf("  log: PostgreSQL %v: writing %d events", ord, total)
		r, name := o.postgres(ord)
		o.do(func() error { return benchkit.FillLog(ctx, r, total, state) })
		o.do(func() error {
			// Statistics for the planner, as autovacuum would gather them on a table this size sooner or later.
			_, err := e.pg.ExecContext(ctx, "ANALYZE "+name+".events")
			return err
		})
		rd := o.pgReader(name) // nil after an error, which o.interleave returns before any op runs
		ops = append(ops, walk("PostgreSQL "+ord.String()+" recorder", benchkit.RecorderPages(r)), walk("PostgreSQL raw on the "+ord.String()+" schema", rd.SelectPage))
	}
	e.logf("  log: PostgreSQL: measuring")
	if res, err = o.interleave(p, ops...); err != nil {
		return err
	}
	for i, o := range orderings {
		want := rawTarget
		if o == postgres.OrderingXID {
			want = postgresTarget
		}
		row("PostgreSQL "+o.String()+" recorder, pages of 1,000", "raw SELECT … LIMIT on the same table", res[2*i], res[2*i+1], want)
	}
	s.Vars["PostgreSQL"] = true
	return nil
}

func runLatency(ctx context.Context, e *env, s *section) error {
	same, other := pick(e.cfg, 100, 5), pick(e.cfg, 20, 2) // samples per run with the same recorder, with another
	const pollPause = 100 * time.Millisecond               // both SQL recorders' default poll interval
	s.Vars = map[string]any{"Bound": fmtSeconds(latencyBound.Seconds()), "Same": same, "Other": other, "OtherPG": other * 2}
	const full = sqlite.SynchronousFull
	o := e.opener(ctx)
	path := e.sqlitePath("latency")
	db := o.sqliteDB(path, full)
	w := o.sqliteRecorder(db, full)
	// Another process: its own pool on the same file, its own recorder.
	sub := o.sqliteRecorder(o.sqliteDB(path, full), full)
	rd := o.sqliteReader(db)
	cases := []benchkit.LatencyCase{
		{Name: "SQLite FULL, same recorder", Measure: benchkit.LatencyRun{Writer: w, Samples: same, Probe: rd.PointRead}.Measure},
		{Name: "SQLite FULL, another recorder (poll)", Measure: benchkit.LatencyRun{Writer: w, Subscriber: sub, Samples: other, Pause: pollPause, Probe: rd.PointRead}.Measure},
	}
	if !s.skipped(e) {
		for _, ord := range orderings {
			r, name := o.postgres(ord)
			sub, rd := o.pgRecorder(name, ord), o.pgReader(name)
			cases = append(cases,
				benchkit.LatencyCase{Name: "PostgreSQL " + ord.String() + ", same recorder", Measure: benchkit.LatencyRun{Writer: r, Samples: same, Probe: rd.PointRead}.Measure},
				benchkit.LatencyCase{Name: "PostgreSQL " + ord.String() + ", another recorder (LISTEN/NOTIFY)",
					Measure: benchkit.LatencyRun{Writer: r, Subscriber: sub, Samples: other * 2, Pause: pollPause, Probe: rd.PointRead}.Measure})
		}
	}
	if o.err != nil {
		return o.err
	}
	res, err := benchkit.LatencyRounds(ctx, e.cfg.runs, e.logf, cases...)
	if err != nil {
		return err
	}
	t := s.table("", latencyHeader("raw SELECT", "Bound (p99)")...)
	for i, c := range cases {
		x := s.target(target{what: "p99 delivery, " + c.Name, got: res[i].P99, want: latencyBound.Seconds(), atMost: true, format: fmtSeconds})
		t.latency(c.Name, res[i], res[i].Base50, x)
	}
	return nil
}

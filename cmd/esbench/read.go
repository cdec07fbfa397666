package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

// logPage is the page size of the notification log scenario.
const logPage = 1000

func runLog(ctx context.Context, e *env, s *section) error {
	total := pick(e.cfg, 100_000, 2_000)
	state := benchkit.SampleState()
	s.intro = fmt.Sprintf("One reader walks the whole notification log of %s events (written through the recorder in batches of "+
		"1,000, %d-byte states) in pages of %s with `SelectNotifications`; one walk is one call, the figure is "+
		"notifications per second. The baseline walks the same table through the same driver with a prepared "+
		"`SELECT notification_id, originator_id, originator_version, topic, state FROM events WHERE notification_id > ? "+
		"ORDER BY notification_id LIMIT ?`, scanning into the same Go types. The memory recorder has no driver and is "+
		"not measured here.", commas(int64(total)), len(state), commas(logPage))
	t := s.table("", cmpHeader...)
	p := e.cfg.plan()
	p.MinCalls = 1
	p.Chunks = max(p.Chunks/2, 1) // one call (a walk of the whole log) takes longer than a chunk
	walk := func(name string, next benchkit.PageFunc) benchkit.Op {
		return benchkit.WalkOp(name, next, logPage, total)
	}
	row := func(label, baseLabel string, fig, base []benchkit.Sample) {
		f, b := benchkit.Rates(fig), benchkit.Rates(base)
		x := s.target(target{what: label + " vs raw SELECT", got: benchkit.Ratio(f, b), want: rawTarget})
		t.cmp(label, baseLabel, f, b, fmtRate("notifications/s"), x.got, x)
	}

	e.logf("  log: SQLite: writing %d events", total)
	o := e.opener(ctx)
	r, db := o.sqlite("log", sqlite.SynchronousNormal)
	o.do(func() error { return benchkit.FillLog(ctx, r, total, state) })
	rd := o.sqliteReader(db)
	if o.err != nil {
		return o.err
	}
	e.logf("  log: SQLite: measuring")
	res, err := benchkit.Interleave(ctx, p, walk("SQLite recorder", benchkit.RecorderPages(r)), walk("SQLite raw", rd.SelectPage))
	if err != nil {
		return err
	}
	row("SQLite recorder, pages of 1,000", "raw SELECT … LIMIT, same pages", res[0], res[1])

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
		rd := o.pgReader(name)
		if o.err != nil {
			return o.err
		}
		ops = append(ops, walk("PostgreSQL "+ord.String()+" recorder", benchkit.RecorderPages(r)), walk("PostgreSQL raw on the "+ord.String()+" schema", rd.SelectPage))
	}
	e.logf("  log: PostgreSQL: measuring")
	if res, err = benchkit.Interleave(ctx, p, ops...); err != nil {
		return err
	}
	for i, o := range orderings {
		row("PostgreSQL "+o.String()+" recorder, pages of 1,000", "raw SELECT … LIMIT on the same table", res[2*i], res[2*i+1])
	}
	s.notes = append(s.notes, "With the xid ordering each page also asks which IDs are final (the `events_horizon` "+
		"function and a snapshot's xmin); the raw SELECT has no such filter, so it could read IDs that a concurrent "+
		"writer is about to precede (late fills). No writer runs during this measurement.")
	return nil
}

func runLatency(ctx context.Context, e *env, s *section) error {
	same, other := pick(e.cfg, 100, 5), pick(e.cfg, 20, 2) // samples per run with the same recorder, with another
	const pollPause = 100 * time.Millisecond               // both SQL recorders' default poll interval
	s.intro = fmt.Sprintf("Commit-to-delivery latency: one event is inserted at a time, and a subscription that is caught up and waiting "+
		"yields it; the time runs from the return of `InsertEvents` to the yield. The subscriber is either the writing "+
		"recorder itself (woken in process at commit) or another recorder on the same store, as in another process: on "+
		"SQLite it finds new events by polling (every 100 ms by default), on PostgreSQL through LISTEN/NOTIFY with polling as "+
		"the fallback; for these cases each write first waits a random 0–100 ms, so that writes arrive anywhere in a poll's "+
		"cycle, not in step with it. The baseline is one raw SELECT of the new row by ID through the same driver, timed right "+
		"after each delivery: the least any reader needs to see a committed event, if it knew when to look. The bound is a "+
		"delivery within about %s, judged on the p99 of each run.", fmtSeconds(latencyBound.Seconds()))
	type latencyCase struct {
		name string
		run  benchkit.LatencyRun
	}
	const full = sqlite.SynchronousFull
	o := e.opener(ctx)
	path := e.sqlitePath("latency")
	db := o.sqliteDB(path, full)
	w := o.sqliteRecorder(db, full)
	// Another process: its own pool on the same file, its own recorder.
	sub := o.sqliteRecorder(o.sqliteDB(path, full), full)
	rd := o.sqliteReader(db)
	cases := []latencyCase{
		{"SQLite FULL, same recorder", benchkit.LatencyRun{Writer: w, Samples: same, Probe: rd.PointRead}},
		{"SQLite FULL, another recorder (poll)", benchkit.LatencyRun{Writer: w, Subscriber: sub, Samples: other, Pause: pollPause, Probe: rd.PointRead}},
	}
	if !s.skipped(e) {
		for _, ord := range orderings {
			r, name := o.postgres(ord)
			sub, rd := o.pgRecorder(name, ord), o.pgReader(name)
			cases = append(cases,
				latencyCase{"PostgreSQL " + ord.String() + ", same recorder", benchkit.LatencyRun{Writer: r, Samples: same, Probe: rd.PointRead}},
				latencyCase{"PostgreSQL " + ord.String() + ", another recorder (LISTEN/NOTIFY)",
					benchkit.LatencyRun{Writer: r, Subscriber: sub, Samples: other * 2, Pause: pollPause, Probe: rd.PointRead}})
		}
	}
	if o.err != nil {
		return o.err
	}
	// Per case: the p50, p99 and p50 of the baseline of each run, and all latencies.
	n := len(cases)
	p50, p99, probe50, all := make([]benchkit.Series, n), make([]benchkit.Series, n), make([]benchkit.Series, n), make([][]time.Duration, n)
	for r := range e.cfg.runs {
		for j := range cases {
			i := (r + j) % len(cases) // rotate, so that no case always follows the same one
			lat, probe, err := benchkit.MeasureLatency(ctx, cases[i].run)
			if err != nil {
				return fmt.Errorf("%s: %w", cases[i].name, err)
			}
			p50[i] = append(p50[i], benchkit.Percentile(lat, 0.50).Seconds())
			p99[i] = append(p99[i], benchkit.Percentile(lat, 0.99).Seconds())
			probe50[i] = append(probe50[i], benchkit.Percentile(probe, 0.50).Seconds())
			all[i] = append(all[i], lat...)
		}
		e.logf("  latency: run %d of %d done", r+1, e.cfg.runs)
	}
	t := s.table("", "Case", "Samples", "p50 (median of runs)", "p50 spread", "p99 (median of runs)", "p99 spread",
		"p99 / max, all samples", "Baseline p50 (raw SELECT)", "Ratio p50 (baseline ÷ figure)", "Bound (p99)", "Result")
	for i, c := range cases {
		x := s.target(target{what: "p99 delivery, " + c.name, got: p99[i], want: latencyBound.Seconds(), atMost: true, format: fmtSeconds})
		t.add(c.name, fmt.Sprint(len(all[i])), fmtSeconds(p50[i].Median()), spread(p50[i], fmtSeconds),
			fmtSeconds(p99[i].Median()), spread(p99[i], fmtSeconds),
			fmtSeconds(benchkit.Percentile(all[i], 0.99).Seconds())+" / "+fmtSeconds(slices.Max(all[i]).Seconds()),
			fmtSeconds(probe50[i].Median()), ratioCell(benchkit.Ratio(probe50[i], p50[i])), x.required(), x.verdict())
	}
	s.notes = append(s.notes, fmt.Sprintf("Per run: %d samples with the same recorder, %d with another SQLite recorder, %d with "+
		"another PostgreSQL recorder. With few samples per run, a run's p99 is close to its maximum. A subscriber in another "+
		"process that has to poll waits up to one poll interval (100 ms by default, `WithPollInterval`) plus a read, so its "+
		"p99 sits at or just above the bound of about 100 ms by construction.", same, other, other*2))
	return nil
}

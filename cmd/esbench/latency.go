package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
)

// latencyBound is design rule 6: a subscription delivers a new event within about 100 ms.
const latencyBound = 100 * time.Millisecond

const latencyTopic = "bench.Latency"

// pollPause is the longest random pause before a write when the subscriber is another recorder: the
// default poll interval of both SQL recorders, so that writes fall anywhere in a poll's cycle.
const pollPause = 100 * time.Millisecond

// latencyCase is a writer and a subscriber (the same recorder, or another one on the same store, as in
// another process) and a raw reader of the store.
type latencyCase struct {
	name    string
	writer  es.ApplicationRecorder
	sub     es.ApplicationRecorder
	probe   func(ctx context.Context, id int64) error
	samples int           // per run
	pause   time.Duration // the most a write waits, at random, before it is made
}

// measureLatency is projectiontest.MeasureLatency's method with a baseline beside each sample: n
// times, it inserts one event (a new originator each time) and times from the return of InsertEvents,
// when the commit is acknowledged, to the moment the caught-up subscription yields that event (0 when
// it yields it before InsertEvents returns). Then it times one raw SELECT of that row through the same
// driver: the least any reader needs to see a committed event, if it knew when to look.
func measureLatency(ctx context.Context, c latencyCase, n int) (lat, probe []time.Duration, err error) {
	after, err := c.sub.MaxNotificationID(ctx)
	if err != nil {
		return nil, nil, err
	}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	type delivery struct {
		id  int64
		at  time.Time
		err error
	}
	deliveries := make(chan delivery, 16)
	go func() {
		defer close(deliveries)
		for nt, err := range c.sub.Subscribe(subCtx, after, latencyTopic) {
			d := delivery{id: nt.ID, at: time.Now(), err: err}
			select {
			case deliveries <- d:
			case <-subCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for i := range n {
		if c.pause > 0 {
			// Writes arrive at random moments, not in step with the subscriber's polls.
			select {
			case <-time.After(rand.N(c.pause)):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
		e := es.StoredEvent{OriginatorID: newID(), OriginatorVersion: 1, Topic: latencyTopic, State: fmt.Appendf(nil, "sample %d", i)}
		ids, err := c.writer.InsertEvents(ctx, []es.StoredEvent{e})
		committed := time.Now()
		if err != nil {
			return nil, nil, err
		}
		timeout := time.NewTimer(10 * time.Second)
	wait:
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					timeout.Stop()
					return nil, nil, fmt.Errorf("subscription ended before notification %d: %w", ids[0], context.Cause(ctx))
				}
				if d.err != nil {
					timeout.Stop()
					return nil, nil, fmt.Errorf("subscription: %w", d.err)
				}
				if d.id < ids[0] {
					continue
				}
				if d.id > ids[0] {
					timeout.Stop()
					return nil, nil, fmt.Errorf("notification %d delivered, skipping %d", d.id, ids[0])
				}
				lat = append(lat, max(0, d.at.Sub(committed)))
				break wait
			case <-timeout.C:
				return nil, nil, fmt.Errorf("notification %d not delivered within 10 s", ids[0])
			case <-ctx.Done():
				timeout.Stop()
				return nil, nil, ctx.Err()
			}
		}
		timeout.Stop()
		t0 := time.Now()
		if err := c.probe(ctx, ids[0]); err != nil {
			return nil, nil, fmt.Errorf("raw read: %w", err)
		}
		probe = append(probe, time.Since(t0))
	}
	return lat, probe, nil
}

func runLatency(ctx context.Context, e *env, s *section, tg *targets) error {
	same, other := 100, 20
	if e.cfg.quick {
		same, other = 5, 2
	}
	s.intro = "Commit-to-delivery latency: one event is inserted at a time, and a subscription that is caught up and waiting " +
		"yields it; the time runs from the return of `InsertEvents` to the yield. The subscriber is either the writing " +
		"recorder itself (woken in process at commit) or another recorder on the same store, as in another process: on " +
		"SQLite it finds new events by polling (every 100 ms by default), on PostgreSQL through LISTEN/NOTIFY with polling as " +
		"the fallback; for these cases each write waits a random 0–100 ms first, so that writes arrive at any point of a poll's cycle rather than in step with it. The baseline is one raw SELECT of the new row by ID through the same driver, timed right after each " +
		"delivery: the least any reader needs to see a committed event, if it knew when to look. The bound is design rule 6 " +
		"(delivery within about 100 ms), judged on the p99 of each run."
	var cases []latencyCase

	path := e.sqlitePath("latency")
	db, err := e.openSQLite(ctx, path, sqlite.SynchronousFull)
	if err != nil {
		return err
	}
	w, err := e.sqliteRecorderOn(ctx, db, sqlite.SynchronousFull)
	if err != nil {
		return err
	}
	// Another process: its own pool on the same file, its own recorder.
	db2, err := e.openSQLite(ctx, path, sqlite.SynchronousFull)
	if err != nil {
		return err
	}
	sub2, err := e.sqliteRecorderOn(ctx, db2, sqlite.SynchronousFull)
	if err != nil {
		return err
	}
	rd, err := newSQLiteReader(ctx, e, db)
	if err != nil {
		return err
	}
	cases = append(cases,
		latencyCase{"SQLite FULL, same recorder", w, w, rd.pointRead, same, 0},
		latencyCase{"SQLite FULL, another recorder (poll)", w, sub2, rd.pointRead, other, pollPause},
	)
	if e.pg != nil {
		for _, o := range []postgres.Ordering{postgres.OrderingXID, postgres.OrderingTableLock} {
			r, name, err := e.pgRecorder(ctx, o)
			if err != nil {
				return err
			}
			r2, err := e.pgRecorderOn(ctx, name, o)
			if err != nil {
				return err
			}
			rd, err := newPGRaw(e.pg, name).reader(ctx, e)
			if err != nil {
				return err
			}
			cases = append(cases,
				latencyCase{"PostgreSQL " + o.String() + ", same recorder", r, r, rd.pointRead, same, 0},
				latencyCase{"PostgreSQL " + o.String() + ", another recorder (LISTEN/NOTIFY)", r, r2, rd.pointRead, other * 2, pollPause},
			)
		}
	} else {
		s.notes = append(s.notes, "PostgreSQL: skipped ("+e.pgSkip+").")
	}

	type acc struct {
		p50, p99, probe50 series
		all, probes       []time.Duration
	}
	accs := make([]acc, len(cases))
	for r := range e.cfg.runs {
		for j := range cases {
			i := (r + j) % len(cases) // rotate, so no case always follows the same one
			c := cases[i]
			lat, probe, err := measureLatency(ctx, c, c.samples)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			a := &accs[i]
			a.p50 = append(a.p50, percentile(lat, 0.50).Seconds())
			a.p99 = append(a.p99, percentile(lat, 0.99).Seconds())
			a.probe50 = append(a.probe50, percentile(probe, 0.50).Seconds())
			a.all = append(a.all, lat...)
			a.probes = append(a.probes, probe...)
		}
		e.logf("  latency: run %d of %d done", r+1, e.cfg.runs)
	}
	t := table{header: []string{"Case", "Samples", "p50 (median of runs)", "p50 spread", "p99 (median of runs)", "p99 spread", "p99 / max, all samples", "Baseline p50 (raw SELECT)", "Ratio p50 (baseline ÷ figure)", "Bound (p99)", "Result"}}
	for i, c := range cases {
		a := accs[i]
		x := tg.add(target{
			section: sectionNumber(s.title),
			what:    "p99 delivery, " + c.name + " (design rule 6)",
			got:     a.p99, want: latencyBound.Seconds(), atMost: true, format: fmtSeconds,
		})
		t.add(c.name, fmt.Sprint(len(a.all)),
			fmtSeconds(a.p50.median()), spread(a.p50, fmtSeconds),
			fmtSeconds(a.p99.median()), spread(a.p99, fmtSeconds),
			fmtSeconds(percentile(a.all, 0.99).Seconds())+" / "+fmtSeconds(slices.Max(a.all).Seconds()),
			fmtSeconds(a.probe50.median()), ratioCell(ratio(a.probe50, a.p50)),
			x.required(), x.verdict())
	}
	s.tables = append(s.tables, t)
	s.notes = append(s.notes, fmt.Sprintf("Per run: %d samples with the same recorder, %d with another SQLite recorder, %d with "+
		"another PostgreSQL recorder. With few samples per run, a run's p99 is close to its maximum. A subscriber in another "+
		"process that has to poll waits up to one poll interval (100 ms by default, `WithPollInterval`) plus a read, so its "+
		"p99 sits at or just above the bound of about 100 ms by construction.", same, other, other*2))
	return nil
}

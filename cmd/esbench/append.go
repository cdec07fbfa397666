package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/memory"
)

var evPerSec = fmtRate("events/s")

// appender is one append path, a recorder's or a baseline's.
type appender struct {
	name   string
	append benchkit.AppendFunc
}

// appendGroup is a recorder or several and, last in paths, their baseline (whose name is its label in
// the report), on one kind of store.
type appendGroup struct {
	store       string
	paths       []appender
	target      bool // the raw-loop target applies
	shortChunks bool // the store keeps everything in memory: shorter chunks bound its heap
}

func appendGroups(ctx context.Context, e *env, s *section) ([]appendGroup, error) {
	o := e.opener(ctx)
	groups := []appendGroup{{
		store: "memory",
		paths: []appender{{"memory recorder", benchkit.Inserts(memory.NewProcessRecorder())},
			{"map + slice under a mutex", benchkit.NewMemLog().Append}},
		shortChunks: true,
	}}
	for _, sy := range []sqlite.Synchronous{sqlite.SynchronousFull, sqlite.SynchronousNormal} {
		r, _ := o.sqlite("append-"+sy.String(), sy)
		w := o.sqliteWriter(o.sqliteDB(e.sqlitePath("append-raw-"+sy.String()), sy))
		groups = append(groups, appendGroup{
			store: "SQLite " + sy.String(),
			paths: []appender{{"SQLite " + sy.String() + " recorder", benchkit.Inserts(r)},
				{"raw prepared INSERT, BEGIN IMMEDIATE … COMMIT", w.Append}},
			target: true,
		})
	}
	if s.skipped(e) {
		return groups, o.err
	}
	g := appendGroup{store: "PostgreSQL", target: true}
	for _, ord := range orderings {
		r, _ := o.postgres(ord)
		g.paths = append(g.paths, appender{"PostgreSQL " + ord.String() + " recorder", benchkit.Inserts(r)})
	}
	g.paths = append(g.paths, appender{"raw INSERT … RETURNING (batches: unnest arrays), autocommit", benchkit.NewPostgresWriter(e.pg, o.pgSchema()).Append})
	return append(groups, g), o.err
}

func runAppendOne(ctx context.Context, e *env, s *section) error {
	s.Vars = map[string]any{"StateBytes": len(benchkit.SampleState())}
	// Single-event appends on SQLite FULL and PostgreSQL are dominated by the sync at commit, whose
	// time varies most from one call to the next: longer chunks average more of them.
	return runAppends(ctx, e, s, []int{1}, 2)
}

func runAppendBatch(ctx context.Context, e *env, s *section) error {
	return runAppends(ctx, e, s, pick(e.cfg, []int{10, 100, 1000}, []int{10, 100}), 1)
}

// runAppends interleaves, store by store, the recorders and their baseline at every size and adds a
// row per recorder and size.
func runAppends(ctx context.Context, e *env, s *section, sizes []int, chunkScale time.Duration) error {
	groups, err := appendGroups(ctx, e, s)
	if err != nil {
		return err
	}
	state := benchkit.SampleState()
	t := s.table("", cmpHeader...)
	for i, g := range groups {
		groups[i] = appendGroup{} // a store measured is garbage: the memory recorder's heap would slow every collection after it
		e.logf("  %s: %s", s.Name, g.store)
		var ops []benchkit.Op
		for _, n := range sizes {
			for _, a := range g.paths {
				ops = append(ops, benchkit.AppendOp(fmt.Sprintf("%s, %d per save", a.name, n), a.append, n, state))
			}
		}
		p := e.cfg.plan()
		p.Chunk *= chunkScale
		if g.shortChunks {
			p.Chunk = max(p.Chunk/4, time.Millisecond)
		}
		res, err := benchkit.Interleave(ctx, p, ops...)
		if err != nil {
			return err
		}
		recorders, baseline := g.paths[:len(g.paths)-1], g.paths[len(g.paths)-1]
		for k, n := range sizes {
			res := res[k*len(g.paths):]
			base := benchkit.Rates(res[len(recorders)])
			for j, r := range recorders {
				fig := benchkit.Rates(res[j])
				ratio := benchkit.Ratio(fig, base)
				var tgt *target
				if g.target {
					want := rawTarget
					if g.store == "PostgreSQL" && n == 1 {
						want = postgresTarget
					}
					tgt = s.target(target{what: fmt.Sprintf("%s, %s per save, vs raw", r.name, plural(n, "event")), got: ratio, want: want})
				}
				t.cmp(fmt.Sprintf("%s, %s per save", r.name, commas(int64(n))), baseline.name, fig, base, evPerSec, ratio, tgt)
			}
		}
	}
	return nil
}

func runConcurrent(ctx context.Context, e *env, s *section) error {
	const writers = 16
	s.Vars = map[string]any{"GroupTarget": groupTarget}
	state := benchkit.SampleState()
	p := e.cfg.plan()
	p.Chunk *= 4
	p.MinCalls = 0
	t := s.table("", cmpHeader...)
	// op runs n writers, writer w saving through the w-th append function (the last one for all
	// writers after it).
	op := func(name string, n int, appends ...benchkit.AppendFunc) benchkit.Op {
		return benchkit.WritersOp(name, n, func(ctx context.Context, w int, id uuid.UUID, v int64) error {
			_, err := appends[min(w, len(appends)-1)](ctx, benchkit.StoredEvents(id, v, 1, state))
			return err
		})
	}

	e.logf("  concurrent: SQLite FULL")
	const full = sqlite.SynchronousFull
	o := e.opener(ctx)
	r1, _ := o.sqlite("concurrent-1", full)
	r16, _ := o.sqlite("concurrent-16", full)
	db := o.sqliteDB(e.sqlitePath("concurrent-raw"), full)
	raw := make([]benchkit.AppendFunc, writers)
	for i := range raw {
		raw[i] = o.sqliteWriter(db).Append
	}
	ceiling := o.sqliteWriter(o.sqliteDB(e.sqlitePath("concurrent-ceiling"), full)).Append
	res, err := o.interleave(p,
		op("SQLite FULL, 1 writer", 1, benchkit.Inserts(r1)),
		op("SQLite FULL, 16 writers", writers, benchkit.Inserts(r16)),
		op("SQLite FULL, 16 raw connections", writers, raw...),
		benchkit.GroupOp("SQLite FULL raw, 1 event per transaction", ceiling, 1, state),
		benchkit.GroupOp("SQLite FULL raw, 16 aggregates per transaction", ceiling, writers, state))
	if err != nil {
		return err
	}
	one, sixteen, raw16 := benchkit.Rates(res[0]), benchkit.Rates(res[1]), benchkit.Rates(res[2])
	rawOne, rawGroup := benchkit.Rates(res[3]), benchkit.Rates(res[4])
	x := s.target(target{what: "SQLite FULL, 16 writers vs 1 writer (recorder)", got: benchkit.Ratio(sixteen, one), want: groupTarget})
	t.cmp("SQLite FULL recorder, 16 writers", "same recorder, 1 writer", sixteen, one, evPerSec, x.got, x)
	t.cmp("SQLite FULL raw, 16 connections (no group commit)", "recorder, 1 writer", raw16, one, evPerSec, benchkit.Ratio(raw16, one), nil)
	t.cmp("SQLite FULL recorder, 16 writers", "raw, 16 connections", sixteen, raw16, evPerSec, benchkit.Ratio(sixteen, raw16), nil)
	t.cmp("SQLite FULL raw, one transaction of 16 aggregates' events (the ceiling)", "raw, one transaction of 1 event", rawGroup, rawOne, evPerSec, benchkit.Ratio(rawGroup, rawOne), nil)
	t.cmp("SQLite FULL recorder, 16 writers", "the ceiling (raw, 16 aggregates per transaction)", sixteen, rawGroup, evPerSec, benchkit.Ratio(sixteen, rawGroup), nil)

	if s.skipped(e) {
		return nil
	}
	e.logf("  concurrent: PostgreSQL")
	var ops []benchkit.Op
	for _, ord := range orderings {
		r, _ := o.postgres(ord)
		ops = append(ops, op("PostgreSQL "+ord.String()+", 16 writers", writers, benchkit.Inserts(r)))
	}
	ops = append(ops, op("PostgreSQL raw, 16 writers", writers, benchkit.NewPostgresWriter(e.pg, o.pgSchema()).Append))
	if res, err = o.interleave(p, ops...); err != nil {
		return err
	}
	xid, lock, rawPG := benchkit.Rates(res[0]), benchkit.Rates(res[1]), benchkit.Rates(res[2])
	y := s.target(target{what: "PostgreSQL 16 writers, xid ordering vs table lock", got: benchkit.Ratio(xid, lock), want: orderingTarget})
	t.cmp("PostgreSQL xid recorder, 16 writers", "table_lock recorder, 16 writers", xid, lock, evPerSec, y.got, y)
	t.cmp("PostgreSQL xid recorder, 16 writers", "raw INSERT, no ordering, 16 writers", xid, rawPG, evPerSec, benchkit.Ratio(xid, rawPG), nil)
	t.cmp("PostgreSQL table_lock recorder, 16 writers", "raw INSERT, no ordering, 16 writers", lock, rawPG, evPerSec, benchkit.Ratio(lock, rawPG), nil)
	return nil
}

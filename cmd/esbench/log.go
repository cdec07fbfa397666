package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/db/postgres"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
)

// logPage is the page size of the notification log scenario.
const logPage = 1000

// fill records total events through r in batches of 1,000 (100 aggregates of 10 events each).
func fill(ctx context.Context, r es.AggregateRecorder, total int, state []byte) error {
	for done := 0; done < total; {
		n := min(1000, total-done)
		batch := make([]es.StoredEvent, 0, n)
		var id uuid.UUID
		for i := range n {
			if i%10 == 0 {
				id = newID()
			}
			batch = append(batch, es.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i%10 + 1), Topic: topicDeposited, State: state})
		}
		if _, err := r.InsertEvents(ctx, batch); err != nil {
			return err
		}
		done += n
	}
	return nil
}

func walkOp(name string, total int, next func(ctx context.Context, after int64, limit int) ([]es.Notification, error)) op {
	return op{name: name, call: func(ctx context.Context) (int, error) {
		n, err := readLog(ctx, logPage, next)
		if err == nil && n != total {
			err = fmt.Errorf("read %d notifications, want %d", n, total)
		}
		return n, err
	}}
}

func recorderPages(r es.ApplicationRecorder) func(ctx context.Context, after int64, limit int) ([]es.Notification, error) {
	return func(ctx context.Context, after int64, limit int) ([]es.Notification, error) {
		return r.SelectNotifications(ctx, es.NotificationQuery{After: after, Limit: limit})
	}
}

func runLog(ctx context.Context, e *env, s *section, tg *targets) error {
	total := 100_000
	if e.cfg.quick {
		total = 2_000
	}
	state, err := sampleState()
	if err != nil {
		return err
	}
	s.intro = fmt.Sprintf("One reader walks the whole notification log of %s events (written through the recorder in batches of "+
		"1,000, %d-byte states) in pages of %s with `SelectNotifications`; one walk is one call, the figure is "+
		"notifications per second. The baseline walks the same table through the same driver with a prepared "+
		"`SELECT notification_id, originator_id, originator_version, topic, state FROM events WHERE notification_id > ? "+
		"ORDER BY notification_id LIMIT ?`, scanning into the same Go types. The memory recorder has no driver and is "+
		"not measured here.", commas(int64(total)), len(state), commas(logPage))
	t := table{header: cmpHeader}
	defer func() { s.tables = append(s.tables, t) }()
	p := e.cfg.plan()
	p.minCalls = 1
	p.chunks = max(p.chunks/2, 1) // one call (a walk of the whole log) takes longer than a chunk

	e.logf("  log: SQLite: writing %d events", total)
	r, db, err := e.sqliteRecorder(ctx, "log", sqlite.SynchronousNormal)
	if err != nil {
		return err
	}
	if err := fill(ctx, r, total, state); err != nil {
		return err
	}
	rd, err := newSQLiteReader(ctx, e, db)
	if err != nil {
		return err
	}
	e.logf("  log: SQLite: measuring")
	res, err := interleave(ctx, p,
		walkOp("SQLite recorder", total, recorderPages(r)),
		walkOp("SQLite raw", total, rd.selectPage),
	)
	if err != nil {
		return err
	}
	row := func(label, baseLabel string, fig, base []sample) {
		f, b := rates(fig), rates(base)
		x := tg.add(target{section: sectionNumber(s.title), what: label + " vs raw SELECT", got: ratio(f, b), want: appendTarget})
		addRow(&t, label, baseLabel, f, b, func(x float64) string { return fmtRate(x, "notifications/s") }, ratio(f, b), &x)
	}
	row("SQLite recorder, pages of 1,000", "raw SELECT … LIMIT, same pages", res[0], res[1])

	if e.pg == nil {
		s.notes = append(s.notes, "PostgreSQL: skipped ("+e.pgSkip+").")
		return nil
	}
	var ops []op
	var labels []string
	for _, o := range []postgres.Ordering{postgres.OrderingXID, postgres.OrderingTableLock} {
		e.logf("  log: PostgreSQL %v: writing %d events", o, total)
		t0 := time.Now()
		r, name, err := e.pgRecorder(ctx, o)
		if err != nil {
			return err
		}
		if err := fill(ctx, r, total, state); err != nil {
			return err
		}
		e.logf("  log: PostgreSQL %v: written in %.1fs", o, time.Since(t0).Seconds())
		// Statistics for the planner, as autovacuum would gather them on a table this size sooner or later.
		if _, err := e.pg.ExecContext(ctx, "ANALYZE "+name+".events"); err != nil {
			return err
		}
		rd, err := newPGRaw(e.pg, name).reader(ctx, e)
		if err != nil {
			return err
		}
		ops = append(ops, walkOp("PostgreSQL "+o.String()+" recorder", total, recorderPages(r)), walkOp("PostgreSQL raw on the "+o.String()+" schema", total, rd.selectPage))
		labels = append(labels, "PostgreSQL "+o.String()+" recorder, pages of 1,000")
	}
	e.logf("  log: PostgreSQL: measuring")
	res, err = interleave(ctx, p, ops...)
	if err != nil {
		return err
	}
	for i, l := range labels {
		row(l, "raw SELECT … LIMIT on the same table", res[2*i], res[2*i+1])
	}
	s.notes = append(s.notes, "With the xid ordering each page also asks which IDs are final (the `events_horizon` "+
		"function and a snapshot's xmin); the raw SELECT has no such filter, so it could read IDs that a concurrent "+
		"writer is about to precede (late fills). No writer runs during this measurement.")
	return nil
}

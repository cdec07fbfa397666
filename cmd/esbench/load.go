package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// snapshotEvery is the snapshot interval of the load scenarios.
const snapshotEvery = 100

// flatTarget bounds the time of a snapshot-bounded load of 10,000 events against one of 1,000.
const flatTarget = 1.2

type repo = repository.Repository[Account, *Account]

// loadStore is one store with its repositories and its raw twin holding the same events as plain JSON.
type loadStore struct {
	name      string
	withSnaps *repo
	noSnaps   *repo
	// rawAppend stores events (state: JSON of the event data) in the raw twin; rawEvents reads them.
	rawAppend func(ctx context.Context, events []es.StoredEvent) error
	rawEvents func(ctx context.Context, id uuid.UUID) ([]es.StoredEvent, error)
	baseLabel string
}

func newLoadStores(ctx context.Context, e *env) ([]*loadStore, error) {
	m, err := mapper.New(newRegistry())
	if err != nil {
		return nil, err
	}
	mk := func(rec es.AggregateRecorder, snaps es.AggregateRecorder) (*repo, *repo) {
		events := eventstore.New(m, rec)
		// The options are valid constants: New cannot fail.
		withSnaps, _ := repository.New[Account](events, repository.WithSnapshots(eventstore.New(m, snaps), snapshotEvery))
		noSnaps, _ := repository.New[Account](events)
		return withSnaps, noSnaps
	}

	mem := &loadStore{name: "memory", baseLabel: "map + slice, json.Unmarshal, Apply"}
	mem.withSnaps, mem.noSnaps = mk(memory.NewProcessRecorder(), memory.NewAggregateRecorder())
	rm := newRawMem()
	mem.rawAppend = func(ctx context.Context, events []es.StoredEvent) error {
		_, err := rm.append(events)
		return err
	}
	mem.rawEvents = func(ctx context.Context, id uuid.UUID) ([]es.StoredEvent, error) { return rm.events(id), nil }

	// Loads do not depend on the synchronous setting; NORMAL makes building the aggregates quicker.
	const sy = sqlite.SynchronousNormal
	db, err := e.sqliteDB(ctx, "load", sy)
	if err != nil {
		return nil, err
	}
	rec, err := e.sqliteRecorderOn(ctx, db, sy)
	if err != nil {
		return nil, err
	}
	snaps, err := sqlite.NewSnapshotRecorder(ctx, db, sqlite.WithSynchronous(sy))
	if err != nil {
		return nil, err
	}
	e.onCloseRecorder(func() { snaps.Close() })
	lite := &loadStore{name: "SQLite", baseLabel: "raw SELECT, json.Unmarshal, Apply"}
	lite.withSnaps, lite.noSnaps = mk(rec, snaps)
	rawDB, err := e.sqliteDB(ctx, "load-raw", sy)
	if err != nil {
		return nil, err
	}
	w, err := newSQLiteRawWriter(ctx, e, rawDB)
	if err != nil {
		return nil, err
	}
	rd, err := newSQLiteReader(ctx, e, rawDB)
	if err != nil {
		return nil, err
	}
	lite.rawAppend = func(ctx context.Context, events []es.StoredEvent) error {
		_, err := w.append(ctx, events)
		return err
	}
	lite.rawEvents = rd.selectEvents
	return []*loadStore{mem, lite}, nil
}

// buildAccount saves an account of n events, 10 events per save as a busy aggregate would, and the same
// events as JSON into the raw twin. All but the last 99 events go through the snapshotting repository,
// the last 99 through the one without snapshots: the worst case for snapshots, where a load replays at
// least 99 events after the newest one (when n > 99). It returns the aggregate
// IDs in the repository and in the raw twin.
func (ls *loadStore) buildAccount(ctx context.Context, n int) (uuid.UUID, uuid.UUID, error) {
	a := &Account{}
	aggregate.Trigger(a, AccountOpened{Owner: "Ada Lovelace", Currency: "EUR"})
	rawID := newID()
	var raw []es.StoredEvent
	pending := []any{AccountOpened{Owner: "Ada Lovelace", Currency: "EUR"}}
	flush := func() error {
		save := ls.withSnaps.Save
		if int(a.Version) > n-99 {
			save = ls.noSnaps.Save
		}
		if _, err := save(ctx, a); err != nil {
			return err
		}
		raw = raw[:0]
		for _, d := range pending {
			b, err := json.Marshal(d)
			if err != nil {
				return err
			}
			topic := topicDeposited
			if _, ok := d.(AccountOpened); ok {
				topic = topicOpened
			}
			raw = append(raw, es.StoredEvent{OriginatorID: rawID, OriginatorVersion: a.Version - int64(len(pending)) + int64(len(raw)) + 1, Topic: topic, State: b})
		}
		pending = pending[:0]
		return ls.rawAppend(ctx, raw)
	}
	for i := 2; i <= n; i++ {
		d := deposit(i)
		aggregate.Trigger(a, d)
		pending = append(pending, d)
		if i%10 == 0 {
			if err := flush(); err != nil {
				return uuid.Nil, uuid.Nil, err
			}
		}
	}
	if len(pending) > 0 {
		if err := flush(); err != nil {
			return uuid.Nil, uuid.Nil, err
		}
	}
	return a.ID, rawID, nil
}

// rawLoad is the hand-written load: read the rows, unmarshal each with encoding/json, apply.
func rawLoad(ctx context.Context, read func(ctx context.Context, id uuid.UUID) ([]es.StoredEvent, error), id uuid.UUID) (*Account, error) {
	rows, err := read(ctx, id)
	if err != nil {
		return nil, err
	}
	a := &Account{}
	for _, r := range rows {
		d, err := decodeRaw(r.Topic, r.State)
		if err != nil {
			return nil, err
		}
		a.ID, a.Version = r.OriginatorID, r.OriginatorVersion
		a.Apply(d)
	}
	return a, nil
}

func getOp(name string, n int, get func(ctx context.Context) (*Account, error)) op {
	return op{name: name, call: func(ctx context.Context) (int, error) {
		a, err := get(ctx)
		if err != nil {
			return 0, err
		}
		if a.Version != int64(n) {
			return 0, fmt.Errorf("loaded version %d, want %d", a.Version, n)
		}
		return 1, nil
	}}
}

func runLoad(ctx context.Context, e *env, s *section, tg *targets) error {
	sizes := []int{10, 100, 1000, 10000}
	if e.cfg.quick {
		sizes = []int{10, 100, 200}
	}
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
	t := table{header: cmpHeader}
	flat := table{
		caption: fmt.Sprintf("Snapshot-bounded load, %s against %s events (time ratio, lower is flatter; target ≤ %.1f):", commas(int64(sizes[len(sizes)-1])), commas(int64(sizes[len(sizes)-2])), flatTarget),
		header:  []string{"Store", commas(int64(sizes[len(sizes)-2])) + " events (median)", commas(int64(sizes[len(sizes)-1])) + " events (median)", "Time ratio (median, range)", "Target", "Result"},
	}
	defer func() { s.tables = append(s.tables, t, flat) }()
	for _, ls := range stores {
		e.logf("  load: %s: building aggregates of %v events", ls.name, sizes)
		var ops []op
		for _, n := range sizes {
			id, rawID, err := ls.buildAccount(ctx, n)
			if err != nil {
				return fmt.Errorf("%s: build an aggregate of %d events: %w", ls.name, n, err)
			}
			ops = append(ops,
				getOp(fmt.Sprintf("%s Get %d, snapshots", ls.name, n), n, func(ctx context.Context) (*Account, error) { return ls.withSnaps.Get(ctx, id) }),
				getOp(fmt.Sprintf("%s Get %d, no snapshots", ls.name, n), n, func(ctx context.Context) (*Account, error) { return ls.noSnaps.Get(ctx, id) }),
				getOp(fmt.Sprintf("%s raw load %d", ls.name, n), n, func(ctx context.Context) (*Account, error) { return rawLoad(ctx, ls.rawEvents, rawID) }),
			)
		}
		e.logf("  load: %s: measuring", ls.name)
		p := e.cfg.plan()
		p.chunk /= 2
		p.minCalls = 1
		res, err := interleave(ctx, p, ops...)
		if err != nil {
			return err
		}
		snapTimes := make([]series, len(sizes))
		for i, n := range sizes {
			snap, none, raw := times(res[3*i]), times(res[3*i+1]), times(res[3*i+2])
			snapTimes[i] = snap
			addRow(&t, fmt.Sprintf("%s, %s events, snapshots every %d", ls.name, commas(int64(n)), snapshotEvery), "same, no snapshots", snap, none, fmtSeconds, speedup(snap, none), nil)
			addRow(&t, fmt.Sprintf("%s, %s events, no snapshots", ls.name, commas(int64(n))), ls.baseLabel, none, raw, fmtSeconds, speedup(none, raw), nil)
		}
		hi, lo := snapTimes[len(sizes)-1], snapTimes[len(sizes)-2]
		x := tg.add(target{
			section: sectionNumber(s.title),
			what:    fmt.Sprintf("%s, snapshot-bounded load, %s vs %s events (time ratio)", ls.name, commas(int64(sizes[len(sizes)-1])), commas(int64(sizes[len(sizes)-2]))),
			got:     ratio(hi, lo), want: flatTarget, atMost: true,
		})
		flat.add(ls.name, fmtSeconds(lo.median()), fmtSeconds(hi.median()), ratioCell(ratio(hi, lo)), x.required(), x.verdict())
	}
	s.notes = append(s.notes,
		"Ratios in the first table are speed-ups (baseline time ÷ figure time): above 1× the figure is faster. "+
			"Each aggregate's last 99 events were saved without taking a snapshot, so a snapshot-bounded load replays at "+
			"least 99 events after the newest snapshot: the worst case for an interval of 100.")
	return nil
}

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

func runMapper(ctx context.Context, e *env, s *section) error {
	s.Vars = map[string]any{"Quality": mapper.DefaultCompressionQuality, "MinSize": mapper.DefaultCompressionMinSize, "MapperTarget": fmtSeconds(mapperTarget.Seconds())}
	events := []struct {
		name string
		data any
		json benchkit.Op
	}{
		{"MoneyDeposited", benchkit.Deposit(1), benchkit.JSONOp("json", benchkit.Deposit(1))},
		{"OrderPlaced", benchkit.Order(), benchkit.JSONOp("json", benchkit.Order())},
	}
	t := s.table("", "Event, setting", "Encode + decode (median)", "Spread (min – max)", "Stored bytes", "Baseline",
		"Baseline (median)", "Baseline bytes", "Ratio (baseline ÷ figure time)")
	for _, ev := range events {
		e.logf("  mapper: %s", ev.name)
		jsonBytes, err := json.Marshal(ev.data)
		if err != nil {
			return err
		}
		rt, sizes, err := benchkit.RoundTripOps(ev.data)
		if err != nil {
			return err
		}
		ops := append([]benchkit.Op{ev.json}, rt...)
		p := e.cfg.plan()
		p.Chunk = max(p.Chunk/2, time.Millisecond)
		res, err := benchkit.Interleave(ctx, p, ops...)
		if err != nil {
			return err
		}
		base := benchkit.Times(res[0])
		for i, st := range benchkit.MapperSettings() {
			fig := benchkit.Times(res[i+1])
			if ev.name == "MoneyDeposited" && st.Name == "aesgcm" {
				s.target(target{what: ev.name + ", AES-GCM, encode + decode", got: fig, want: mapperTarget.Seconds(), atMost: true, format: fmtSeconds})
			}
			t.add(ev.name+", "+st.Label, fmtSeconds(fig.Median()), spread(fig, fmtSeconds), commas(int64(sizes[i])),
				"json.Marshal + Unmarshal", fmtSeconds(base.Median()), commas(int64(len(jsonBytes))), ratioCell(benchkit.Speedup(fig, base)))
		}
	}
	return nil
}

func runKeys(ctx context.Context, e *env, s *section) error {
	n := pick(e.cfg, 100_000, 2_000)
	s.Vars = map[string]any{"KeyTarget": keyTarget, "Keys": commas(int64(n))}
	o := e.opener(ctx)
	at := benchkit.KeyPlaces{SQLite: [2]*sql.DB{o.sqliteDB(e.sqlitePath("keys"), sqlite.SynchronousFull), o.sqliteDB(e.sqlitePath("keys-rewrap"), sqlite.SynchronousFull)}}
	if !s.skipped(e) {
		at.Postgres, at.Schemas = e.pg, [2]string{o.pgSchema(), o.pgSchema()}
	}
	if o.err != nil {
		return o.err
	}
	p := e.cfg.plan()
	p.Chunk = max(p.Chunk/2, time.Millisecond)
	trips, rewraps, err := benchkit.MeasureKeys(ctx, p, n, at)
	if err != nil {
		return err
	}
	t := s.table("", cmpHeader...)
	base := benchkit.Times(trips[0].Samples)
	for i, m := range trips[1:] {
		fig := benchkit.Times(m.Samples)
		var tgt *target
		if i == 1 {
			tgt = s.target(target{what: "AES-GCM round trip, data keys from the cache vs a single key (time)", got: benchkit.Ratio(fig, base), want: keyTarget, atMost: true})
		}
		t.cmp(m.Name, trips[0].Name, fig, base, fmtSeconds, benchkit.Ratio(fig, base), tgt)
	}
	rt := s.table("keys rewrap", "Store", "Rewrap "+commas(int64(n))+" keys (median)", "Spread (min – max)", "Keys per second (median)")
	for _, m := range rewraps {
		rt.add(m.Name, fmtSeconds(benchkit.Times(m.Samples).Median()), spread(benchkit.Times(m.Samples), fmtSeconds), commas(int64(benchkit.Rates(m.Samples).Median())))
	}
	return nil
}

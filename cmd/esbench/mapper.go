package main

import (
	"context"
	"encoding/json"
	"time"

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

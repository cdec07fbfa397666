package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

func runMapper(ctx context.Context, e *env, s *section) error {
	s.intro = fmt.Sprintf("One `Encode` followed by one `Decode` of the same event, per mapper setting; the figure is the time "+
		"of that round trip, and the stored bytes are the length of the state a recorder would store. The baseline is "+
		"`json.Marshal` and `json.Unmarshal` of the same struct, the floor of any JSON mapping; its bytes are the JSON alone. "+
		"Brotli runs at `DefaultCompressionQuality` (%d), is tried only on payloads of at least `DefaultCompressionMinSize` "+
		"(%d) bytes, and its output is kept only where it is smaller, so the 200-byte event is stored plain; AES-GCM uses a "+
		"256-bit key and a fresh nonce per event. Two events: `MoneyDeposited` (about 200 bytes of JSON) and `OrderPlaced` "+
		"(about 2 KB).", mapper.DefaultCompressionQuality, mapper.DefaultCompressionMinSize)
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
		ops := []benchkit.Op{ev.json}
		var sizes []int
		settings := benchkit.MapperSettings()
		for _, st := range settings {
			m, err := mapper.New(benchkit.NewRegistry(), st.Options...)
			if err != nil {
				return err
			}
			a := aggregate.Event{OriginatorID: benchkit.NewID(), OriginatorVersion: 42, Timestamp: time.Now().UTC(), Data: ev.data}
			stored, err := m.Encode(a)
			if err != nil {
				return err
			}
			sizes = append(sizes, len(stored.State))
			ops = append(ops, benchkit.RoundTripOp(st.Label, m, a))
		}
		p := e.cfg.plan()
		p.Chunk = max(p.Chunk/2, time.Millisecond)
		res, err := benchkit.Interleave(ctx, p, ops...)
		if err != nil {
			return err
		}
		base := benchkit.Times(res[0])
		for i, st := range settings {
			fig := benchkit.Times(res[i+1])
			t.add(ev.name+", "+st.Label, fmtSeconds(fig.Median()), spread(fig, fmtSeconds), commas(int64(sizes[i])),
				"json.Marshal + Unmarshal", fmtSeconds(base.Median()), commas(int64(len(jsonBytes))), ratioCell(benchkit.Speedup(fig, base)))
		}
	}
	s.notes = append(s.notes, "The stored state carries a small header, the timestamp envelope and a CRC-32C (plain) or a "+
		"nonce and tag (AES-GCM, 28 bytes), which is why it is larger than the JSON alone unless brotli shrinks it. "+
		"Ratios below 1× are the mapper's cost over bare encoding/json; no target is set for it.")
	return nil
}

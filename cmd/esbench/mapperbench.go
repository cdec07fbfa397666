package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

func runMapper(ctx context.Context, e *env, s *section, tg *targets) error {
	s.intro = fmt.Sprintf("One `Encode` followed by one `Decode` of the same event, per mapper setting; the figure is the time "+
		"of that round trip, and the stored bytes are the length of the state a recorder would store. The baseline is "+
		"`json.Marshal` and `json.Unmarshal` of the same struct, the floor of any JSON mapping; its bytes are the JSON alone. "+
		"Brotli runs at `DefaultCompressionQuality` (%d), is tried only on payloads of at least `DefaultCompressionMinSize` "+
		"(%d) bytes, and its output is kept only where it is smaller, so the 200-byte event is stored plain; AES-GCM uses a "+
		"256-bit key and a fresh nonce per event. Two events: `MoneyDeposited` (about 200 bytes of JSON) and `OrderPlaced` "+
		"(about 2 KB).", mapper.DefaultCompressionQuality, mapper.DefaultCompressionMinSize)
	type evCase struct {
		name string
		data any
		into func() any
	}
	evs := []evCase{
		{"MoneyDeposited", deposit(1), func() any { return new(MoneyDeposited) }},
		{"OrderPlaced", order(), func() any { return new(OrderPlaced) }},
	}
	t := table{header: []string{"Event, setting", "Encode + decode (median)", "Spread (min – max)", "Stored bytes", "Baseline", "Baseline (median)", "Baseline bytes", "Ratio (baseline ÷ figure time)"}}
	defer func() { s.tables = append(s.tables, t) }()
	for _, ev := range evs {
		e.logf("  mapper: %s", ev.name)
		jsonBytes, err := json.Marshal(ev.data)
		if err != nil {
			return err
		}
		ops := []op{{name: "json", call: func(ctx context.Context) (int, error) {
			b, err := json.Marshal(ev.data)
			if err != nil {
				return 0, err
			}
			return 1, json.Unmarshal(b, ev.into())
		}}}
		sizes := []int{}
		settings := mapperSettings()
		for _, st := range settings {
			opts, err := st.opts()
			if err != nil {
				return err
			}
			m, err := mapper.New(newRegistry(), opts...)
			if err != nil {
				return err
			}
			a := aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 42, Timestamp: time.Now().UTC(), Data: ev.data}
			stored, err := m.Encode(a)
			if err != nil {
				return err
			}
			sizes = append(sizes, len(stored.State))
			ops = append(ops, op{name: st.name, call: func(ctx context.Context) (int, error) {
				se, err := m.Encode(a)
				if err != nil {
					return 0, err
				}
				_, err = m.Decode(se)
				return 1, err
			}})
		}
		p := e.cfg.plan()
		p.chunk = max(p.chunk/2, time.Millisecond)
		res, err := interleave(ctx, p, ops...)
		if err != nil {
			return err
		}
		base := times(res[0])
		for i, st := range settings {
			fig := times(res[i+1])
			t.add(ev.name+", "+st.name, fmtSeconds(fig.median()), spread(fig, fmtSeconds), commas(int64(sizes[i])),
				"json.Marshal + Unmarshal", fmtSeconds(base.median()), commas(int64(len(jsonBytes))), ratioCell(speedup(fig, base)))
		}
	}
	s.notes = append(s.notes, "The stored state carries a small header, the timestamp envelope and a CRC-32C (plain) or a "+
		"nonce and tag (AES-GCM, 28 bytes), which is why it is larger than the JSON alone unless brotli shrinks it. "+
		"Ratios below 1× are the mapper's cost over bare encoding/json; no target is set for it.")
	return nil
}

package main

import (
	"testing"
	"time"

	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
)

// BenchmarkHooks runs every case with no tracer and with the OpenTelemetry tracer:
// go test -run '^$' -bench . -benchmem ./internal/hookbench (in the otel folder).
func BenchmarkHooks(b *testing.B) {
	tracings, cases, done, err := setUp(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(done)
	for _, c := range cases {
		for i, tr := range tracings {
			b.Run(c.Name+"/"+tr.Name, func(b *testing.B) {
				b.ReportAllocs()
				benchkit.Run(b, c.Ops[i], "calls")
			})
		}
	}
}

// TestMeasure measures with a tiny plan: every case, with the tracer beside none.
func TestMeasure(t *testing.T) {
	costs, err := measure(t.Context(), benchkit.Plan{Rounds: 2, Chunks: 1, Chunk: time.Millisecond, MinCalls: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(costs) != 4 {
		t.Fatalf("%d costs, want 4 (save and load, memory and SQLite): %+v", len(costs), costs)
	}
	for _, c := range costs {
		if len(c.Figure) != 2 || len(c.Base) != 2 || c.Figure.Median() <= 0 || c.Base.Median() <= 0 {
			t.Errorf("%s: figure %v, base %v; want 2 positive times each", c.Case, c.Figure, c.Base)
		}
	}
}

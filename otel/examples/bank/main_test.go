package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/examples/bank/demo"
)

// With -trace the example's output holds its spans and metrics, after the example's own lines; without
// it, none.
func TestTraceExportsToStdout(t *testing.T) {
	for _, traced := range []bool{false, true} {
		var out bytes.Buffer
		cfg := demo.Config{DB: filepath.Join(t.TempDir(), "bank.db")}
		if err := run(t.Context(), &out, cfg, traced); err != nil {
			t.Fatalf("traced %v: %v\n%s", traced, err, &out)
		}
		for _, want := range []string{`"Name":"eventsourcing.repository.save"`, `"Name":"eventsourcing.projection.batch"`,
			`"Name":"eventsourcing.recorder.append.events"`, `"Name":"eventsourcing.projection.lag.events"`} {
			if got := strings.Contains(out.String(), want); got != traced {
				t.Errorf("traced %v: the output has %s: %v", traced, want, got)
			}
		}
		if !strings.Contains(out.String(), "forget bob") {
			t.Errorf("traced %v: the example's own output is missing:\n%s", traced, &out)
		}
	}
}

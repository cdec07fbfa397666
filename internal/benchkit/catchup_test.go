package benchkit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/projection"
)

// TestCatchUp checks that every catch-up operation does the whole work, and the same work: each
// projection adds every deposit to the read model once, each process application records one event per
// deposit with the tracking of the last one, and a live runner applies what is recorded.
func TestCatchUp(t *testing.T) {
	ctx := t.Context()
	rec, db := openRecorder(t)
	const events = 250 // two and a half saves, three pages of the loop
	c := benchkit.NewCatchUp(rec, db, "")
	check(t, c.Fill(ctx, events))
	if c.Events() != events {
		t.Fatalf("a log of %d events", c.Events())
	}
	var want int64 // the sum of the log's deposits
	for i := range events {
		want += benchkit.Deposit(i).Amount
	}
	// The read model: the sum of the balances, and of the deposits counted per account.
	readModel := func() (total, deposits int64) {
		t.Helper()
		check(t, db.QueryRowContext(ctx, "SELECT sum(balance), sum(deposits) FROM bench_balances").Scan(&total, &deposits))
		return total, deposits
	}
	one := projection.WithBatch(1, time.Second)
	for i, op := range []benchkit.Op{c.RunnerOp("runner", events), c.LoopOp("loop"), c.RunnerOp("runner-1", events, one)} {
		if n, err := op.Call(ctx); err != nil || n != events {
			t.Fatalf("%s: %d events, %v", op.Name, n, err)
		}
		if total, deposits := readModel(); total != int64(i+1)*want || deposits != int64(i+1)*events {
			t.Fatalf("after %s: balances %d of %d deposits, want %d of %d", op.Name, total, deposits, int64(i+1)*want, (i+1)*events)
		}
	}
	if n, err := c.RunnerOp("runner", 10).Call(ctx); err != nil || n != 10 {
		t.Fatalf("the first 10 events: %d, %v", n, err)
	}
	if _, err := c.RunnerOp("runner", events+1).Call(ctx); err == nil {
		t.Error("a catch-up beyond the log: no error")
	}

	follower, _ := openRecorder(t)
	recorded := 0
	for _, op := range []benchkit.Op{c.ProcessOp("process", follower, events), c.ProcessLoopOp("loop", follower), c.ProcessOp("process-1", follower, events, one)} {
		if n, err := op.Call(ctx); err != nil || n != events {
			t.Fatalf("%s: %d events, %v", op.Name, n, err)
		}
		recorded += events
		if max, err := follower.MaxNotificationID(ctx); err != nil || max != int64(recorded) {
			t.Fatalf("after %s: the follower's log ends at %d, want %d (%v)", op.Name, max, recorded, err)
		}
	}
	marks, err := follower.TrackingMarks(ctx)
	check(t, err)
	if len(marks) != 3 {
		t.Fatalf("tracking marks %+v", marks)
	}
	for _, m := range marks {
		if m.Upstream != c.App.Name || m.NotificationID != events {
			t.Errorf("tracking mark %+v, want %d of %s", m, events, c.App.Name)
		}
	}

	l, err := c.Live(ctx, "live", 5)
	check(t, err)
	lat, base, err := l.Measure(ctx)
	if err != nil || len(lat) != 5 || base != nil {
		t.Fatalf("Measure: %v, %v, %v", lat, base, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Events() != events+5 {
		t.Errorf("the log holds %d events after 5 live samples", c.Events())
	}
	if _, _, err := l.Measure(ctx); err == nil {
		t.Error("Measure after Close: no error")
	}
}

func TestLatencyRounds(t *testing.T) {
	var order []string
	measure := func(name string, d time.Duration) benchkit.LatencyCase {
		return benchkit.LatencyCase{Name: name, Measure: func(context.Context) ([]time.Duration, []time.Duration, error) {
			order = append(order, name)
			return []time.Duration{d, 2 * d, 3 * d}, []time.Duration{d / 2}, nil
		}}
	}
	var rounds []string
	res, err := benchkit.LatencyRounds(t.Context(), 3, func(format string, args ...any) { rounds = append(rounds, format) },
		measure("a", time.Millisecond), measure("b", time.Second))
	check(t, err)
	if strings.Join(order, "") != "abbaab" || len(rounds) != 3 {
		t.Errorf("order %v, %d rounds reported", order, len(rounds))
	}
	if b := res[1]; len(b.P50) != 3 || b.P50[0] != 2 || b.P99[0] != 3 || b.Base50[0] != 0.5 || len(b.All) != 9 {
		t.Errorf("b: %+v", b)
	}
	boom := errors.New("boom")
	_, err = benchkit.LatencyRounds(t.Context(), 1, nil, benchkit.LatencyCase{Name: "failing",
		Measure: func(context.Context) ([]time.Duration, []time.Duration, error) { return nil, nil, boom }})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing") {
		t.Errorf("a failing case: %v", err)
	}
}

// TestFootprint checks that Footprint measures the figure and the baseline alike, after prepare.
func TestFootprint(t *testing.T) {
	var prepared, calls [2]int
	op := func(i int) benchkit.Op {
		return benchkit.Op{Name: "op", Call: func(context.Context) (int, error) { calls[i]++; return 1, nil }}
	}
	prepare := func() { prepared[0]++ }
	fig, base, err := benchkit.Footprint(t.Context(), 3, 4, false, prepare, op(0), op(1))
	check(t, err)
	if len(fig[0]) != 3 || len(base[1]) != 3 || calls != [2]int{12, 12} || prepared[0] != 6 {
		t.Errorf("fig %v, base %v, calls %v, prepared %d", fig, base, calls, prepared[0])
	}
	boom := errors.New("boom")
	failing := benchkit.Op{Name: "failing", Call: func(context.Context) (int, error) { return 0, boom }}
	if _, _, err := benchkit.Footprint(t.Context(), 1, 1, true, func() {}, op(0), failing); !errors.Is(err, boom) {
		t.Errorf("a failing baseline: %v", err)
	}
}

// TestSaves checks that the prepared saves save accounts of the events asked for, through the
// repository and raw.
func TestSaves(t *testing.T) {
	ctx := t.Context()
	raw := benchkit.NewMemLog()
	events := memory.NewProcessRecorder()
	ls, err := benchkit.NewLoadStore(events, memory.NewAggregateRecorder(), 100, raw.Append, raw.SelectEvents)
	check(t, err)
	saves := ls.Saves()
	saves.Prepare(3, 2)
	for _, op := range []benchkit.Op{saves.Save(), saves.Save()} {
		if _, err := op.Call(ctx); err != nil {
			t.Fatal(err)
		}
	}
	saves.Prepare(3, 2)
	for _, op := range []benchkit.Op{saves.Raw(), saves.Raw()} {
		if _, err := op.Call(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := events.MaxNotificationID(ctx); err != nil || n != 6 {
		t.Errorf("the repository saved %d events (%v), want 6", n, err)
	}
	if ids, err := raw.Append(ctx, []es.StoredEvent{{OriginatorID: benchkit.NewID(), OriginatorVersion: 1}}); err != nil || ids[0] != 7 {
		t.Errorf("the raw saves saved %v events (%v), want 6", ids, err)
	}
}

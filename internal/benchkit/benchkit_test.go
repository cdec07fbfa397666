package benchkit_test

import (
	"context"
	"database/sql"
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/internal/sqlitetest"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
)

// TestOnlyBenchmarksImportIt checks that no library code imports benchkit: only cmd/esbench, test files,
// the drivertest module (test code of its own module) and the otel module's benchmark program may.
func TestOnlyBenchmarksImportIt(t *testing.T) {
	const path = "github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, name)
		if strings.HasPrefix(rel, filepath.Join("cmd", "esbench")+string(filepath.Separator)) ||
			strings.HasPrefix(rel, "drivertest"+string(filepath.Separator)) ||
			strings.HasPrefix(rel, filepath.Join("otel", "internal", "hookbench")+string(filepath.Separator)) {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == path {
				t.Errorf("%s imports %s", name, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMeasureLatencyOnMemory(t *testing.T) {
	r := memory.NewProcessRecorder()
	// Events already recorded, and another topic, are passed over.
	if _, err := r.InsertEvents(t.Context(), benchkit.StoredEvents(benchkit.NewID(), 1, 3, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	var probed []int64
	lat, probes, err := benchkit.MeasureLatency(t.Context(), benchkit.LatencyRun{
		Writer: r, Samples: 50, Pause: time.Millisecond,
		Probe: func(ctx context.Context, id int64) error { probed = append(probed, id); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 50 || len(probes) != 50 || len(probed) != 50 || probed[0] != 4 || probed[49] != 53 {
		t.Fatalf("%d latencies, %d probe times, probed IDs %v", len(lat), len(probes), probed)
	}
	l := benchkit.Summarise(lat)
	if l.Samples != 50 || l.P50 > l.P99 || l.P99 > l.Max {
		t.Fatalf("latency %v", l)
	}
	t.Logf("memory recorder, commit to delivery: %v", l)

	if _, _, err := benchkit.MeasureLatency(t.Context(), benchkit.LatencyRun{Writer: r}); err == nil {
		t.Error("no samples: no error")
	}
	boom := errors.New("boom")
	_, _, err = benchkit.MeasureLatency(t.Context(), benchkit.LatencyRun{Writer: r, Samples: 2,
		Probe: func(context.Context, int64) error { return boom }})
	if !errors.Is(err, boom) {
		t.Errorf("a failing probe: %v", err)
	}
}

func TestInterleave(t *testing.T) {
	var calls [2]atomic.Int64
	op := func(i int) benchkit.Op {
		return benchkit.Op{Name: "op" + strconv.Itoa(i), Call: func(context.Context) (int, error) {
			calls[i].Add(1)
			return 10, nil
		}}
	}
	res, err := benchkit.Interleave(t.Context(), benchkit.Plan{Rounds: 3, Chunks: 2, MinCalls: 5}, op(0), op(1))
	if err != nil {
		t.Fatal(err)
	}
	for i, samples := range res {
		if len(samples) != 3 {
			t.Fatalf("op %d: %d samples", i, len(samples))
		}
		for _, s := range samples {
			if s.Calls != 10 || s.Units != 100 {
				t.Errorf("op %d: a round of %d calls and %d units, want 10 and 100", i, s.Calls, s.Units)
			}
		}
	}
	boom := errors.New("boom")
	_, err = benchkit.Interleave(t.Context(), benchkit.Plan{Rounds: 1, Chunks: 1}, benchkit.Op{Name: "failing",
		Call: func(context.Context) (int, error) { return 0, boom }})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing") {
		t.Errorf("a failing op: %v", err)
	}
}

func TestSeries(t *testing.T) {
	s := benchkit.Series{4, 1, 3, 2}
	if s.Median() != 2.5 || s.Min() != 1 || s.Max() != 4 || (benchkit.Series{3, 1, 2}).Median() != 2 {
		t.Errorf("median %v, min %v, max %v", s.Median(), s.Min(), s.Max())
	}
	if r := benchkit.Speedup(benchkit.Series{1, 2}, benchkit.Series{2, 8}); r[0] != 2 || r[1] != 4 {
		t.Errorf("speed-up %v", r)
	}
	d := []time.Duration{5, 1, 4, 2, 3}
	if benchkit.Percentile(d, 0.5) != 3 || benchkit.Percentile(d, 0.99) != 5 || benchkit.Percentile(nil, 0.5) != 0 {
		t.Error("percentiles")
	}
}

// TestWriters checks that the writers make the saves asked for, each writer's versions continuing
// from one run to the next (the recorder refuses a version twice), and that an error stops them.
func TestWriters(t *testing.T) {
	r := memory.NewProcessRecorder()
	state := benchkit.SampleState()
	ws := benchkit.NewWriters(4, func(ctx context.Context, _ int, id uuid.UUID, v int64) error {
		_, err := r.InsertEvents(ctx, benchkit.StoredEvents(id, v, 1, state))
		return err
	})
	for range 2 {
		s, err := ws.Run(t.Context(), 100, 0)
		if err != nil || s.Calls != 100 || s.Units != 100 {
			t.Fatalf("Run: %+v, %v", s, err)
		}
	}
	if s, err := ws.Chunk(t.Context(), time.Millisecond); err != nil || s.Calls == 0 {
		t.Fatalf("Chunk: %+v, %v", s, err)
	}
	if n, _ := r.MaxNotificationID(t.Context()); n < 200 {
		t.Fatalf("%d events recorded", n)
	}
	boom := errors.New("boom")
	failing := benchkit.NewWriters(4, func(ctx context.Context, w int, _ uuid.UUID, v int64) error {
		if w == 2 && v == 3 {
			return boom
		}
		return nil
	})
	if _, err := failing.Run(t.Context(), 0, time.Minute); !errors.Is(err, boom) {
		t.Errorf("a failing writer: %v", err)
	}
}

func TestMemLog(t *testing.T) {
	ctx := t.Context()
	m := benchkit.NewMemLog()
	id := benchkit.NewID()
	if ids, err := m.Append(ctx, benchkit.StoredEvents(id, 1, 2, []byte("a"))); err != nil || ids[1] != 2 {
		t.Fatal(ids, err)
	}
	if _, err := m.Append(ctx, benchkit.StoredEvents(id, 2, 2, []byte("b"))); err == nil {
		t.Fatal("a version twice: no error")
	}
	got, _ := m.SelectEvents(ctx, id)
	if len(got) != 2 || string(got[1].State) != "a" {
		t.Fatalf("events %v", got)
	}
}

// TestSQLiteBaselines checks that the raw writer and reader work on the recorders' table: the
// recorder reads what the writer wrote, and the reader reads what the recorder wrote.
func TestSQLiteBaselines(t *testing.T) {
	ctx := t.Context()
	r, db := openRecorder(t)
	w, err := benchkit.NewSQLiteWriter(ctx, db)
	check(t, err)
	rd, err := benchkit.NewSQLiteReader(ctx, db)
	check(t, err)
	state := benchkit.SampleState()
	raw := benchkit.LogBatch(25, state)
	if ids, err := w.Append(ctx, raw); err != nil || len(ids) != 25 || ids[24] != 25 {
		t.Fatalf("Append: %v, %v", ids, err)
	}
	if _, err := w.Append(ctx, raw[:1]); err == nil {
		t.Fatal("a version twice: no error")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := r.SelectEvents(ctx, raw[20].OriginatorID, es.EventQuery{}); err != nil || len(got) != 5 {
		t.Fatalf("the recorder reads %d events of the raw writer's last originator: %v", len(got), err)
	}
	id := benchkit.NewID()
	if _, err := r.InsertEvents(ctx, benchkit.StoredEvents(id, 1, 3, state)); err != nil {
		t.Fatal(err)
	}
	if got, err := rd.SelectEvents(ctx, id); err != nil || len(got) != 3 || got[2].OriginatorVersion != 3 {
		t.Fatalf("SelectEvents: %v, %v", got, err)
	}
	page, err := rd.SelectPage(ctx, 24, 10)
	if err != nil || len(page) != 4 || page[1].OriginatorID != id || page[1].ID != 26 {
		t.Fatalf("SelectPage: %v, %v", page, err)
	}
	if err := rd.PointRead(ctx, 28); err != nil {
		t.Fatal(err)
	}
	if err := rd.PointRead(ctx, 29); err == nil {
		t.Fatal("PointRead of a missing ID: no error")
	}
	for name, next := range map[string]benchkit.PageFunc{"raw": rd.SelectPage, "recorder": benchkit.RecorderPages(r)} {
		if n, err := benchkit.ReadLog(ctx, 7, next); err != nil || n != 28 {
			t.Errorf("ReadLog %s: %d, %v", name, n, err)
		}
	}
	if err := rd.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLoadStore checks that an account built through the repositories loads as the hand-written
// load of its raw twin does, with and without snapshots.
func TestLoadStore(t *testing.T) {
	ctx := t.Context()
	raw := benchkit.NewMemLog()
	ls, err := benchkit.NewLoadStore(memory.NewProcessRecorder(), memory.NewAggregateRecorder(), 100, raw.Append, raw.SelectEvents)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 15, 250} {
		id, rawID, err := ls.Build(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ls.RawGet(ctx, rawID)
		if err != nil || want.Version != int64(n) {
			t.Fatalf("%d events: raw load %+v, %v", n, want, err)
		}
		for _, r := range []*benchkit.Repository{ls.WithSnapshots, ls.NoSnapshots} {
			got, err := r.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != want.Version || got.Balance != want.Balance || got.Deposits != want.Deposits ||
				got.Owner != want.Owner || got.LastReference != want.LastReference {
				t.Errorf("%d events: loaded %+v, raw load %+v", n, got, want)
			}
		}
	}
	for _, e := range []es.StoredEvent{{Topic: "unknown", State: []byte("{}")}, {Topic: benchkit.TopicDeposited, State: []byte(`"x"`)}} {
		e.OriginatorID, e.OriginatorVersion = benchkit.NewID(), 1
		if _, err := raw.Append(ctx, []es.StoredEvent{e}); err != nil {
			t.Fatal(err)
		}
		if _, err := ls.RawGet(ctx, e.OriginatorID); err == nil {
			t.Errorf("the raw load of %s %s: no error", e.Topic, e.State)
		}
	}
}

func TestMapperSettings(t *testing.T) {
	for _, s := range benchkit.MapperSettings() {
		m, err := mapper.New(benchkit.NewRegistry(), s.Options...)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		stored, err := m.Encode(aggregate.Event{OriginatorID: benchkit.NewID(), OriginatorVersion: 1, Timestamp: time.Now(), Data: benchkit.Order()})
		if err == nil {
			_, err = m.Decode(stored)
		}
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
	if len(benchkit.SampleState()) == 0 {
		t.Error("no sample state")
	}
}

func TestCountAllocsAndPeakHeap(t *testing.T) {
	var keep [][]byte
	allocs, bytes, err := benchkit.CountAllocs(10, func() error { keep = append(keep, make([]byte, 1<<10)); return nil })
	if err != nil || allocs < 1 || bytes < 1<<10 {
		t.Errorf("CountAllocs: %v allocs, %v bytes, %v", allocs, bytes, err)
	}
	peak, err := benchkit.PeakHeap(func() error { keep = append(keep, make([]byte, 8<<20)); return nil })
	if err != nil || peak < 8<<20 {
		t.Errorf("PeakHeap: %v, %v", peak, err)
	}
	_ = keep
}

// openRecorder returns a SQLite process recorder on a fresh, migrated file, and its database.
func openRecorder(t *testing.T) (*sqlite.ProcessRecorder, *sql.DB) {
	t.Helper()
	ctx := t.Context()
	db := sqlitetest.OpenMigrated(t, filepath.Join(t.TempDir(), "bench.db"))
	r, err := sqlite.NewProcessRecorder(ctx, db)
	check(t, err)
	t.Cleanup(func() { r.Close() })
	return r, db
}

// check fails t on err.
func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

package benchkit

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// The measured operations, each written once for both harnesses: cmd/esbench interleaves them
// (Interleave), the Go benchmarks loop over them (Run, Paired).

// AppendFunc appends events: a recorder's InsertEvents (see Inserts) or a baseline's Append.
type AppendFunc func(ctx context.Context, events []es.StoredEvent) ([]int64, error)

// Inserts is r's InsertEvents as an AppendFunc.
func Inserts(r es.AggregateRecorder) AppendFunc {
	return func(ctx context.Context, events []es.StoredEvent) ([]int64, error) {
		return r.InsertEvents(ctx, events)
	}
}

// AppendOp appends, per call, n deposits of a new originator (as a new aggregate's first save does),
// each with state; its units are events.
func AppendOp(name string, f AppendFunc, n int, state []byte) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		_, err := f(ctx, StoredEvents(NewID(), 1, n, state))
		return n, err
	}}
}

// WritersOp runs n Writers that save with save, for a chunk of time per call: its units are events.
func WritersOp(name string, n int, save SaveFunc) Op {
	return Op{Name: name, Chunk: NewWriters(n, save).Chunk}
}

// WalkOp walks, per call, the whole notification log in pages of page with next, and fails unless
// it reads total notifications; its units are notifications.
func WalkOp(name string, next PageFunc, page, total int) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		n, err := ReadLog(ctx, page, next)
		if err == nil && n != total {
			err = fmt.Errorf("read %d notifications, want %d", n, total)
		}
		return n, err
	}}
}

// LoadOp loads, per call, the account id of n events with get, and fails unless it has version n; its
// unit is the load.
func LoadOp(name string, get func(context.Context, uuid.UUID) (*Account, error), id uuid.UUID, n int) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		a, err := get(ctx, id)
		if err == nil && a.Version != int64(n) {
			err = fmt.Errorf("loaded version %d, want %d", a.Version, n)
		}
		return 1, err
	}}
}

// RoundTripOp encodes e with m and decodes the result, per call.
func RoundTripOp(name string, m *mapper.Mapper, e aggregate.Event) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		stored, err := m.Encode(e)
		if err == nil {
			_, err = m.Decode(stored)
		}
		return 1, err
	}}
}

// JSONOp marshals data with encoding/json and unmarshals the result into a new T, per call: the floor
// of any JSON mapping.
func JSONOp[T any](name string, data T) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		b, err := json.Marshal(data)
		if err == nil {
			err = json.Unmarshal(b, new(T))
		}
		return 1, err
	}}
}

// Run runs op once per iteration of b.Loop and reports its units per second as the metric unit+"/s"
// (events/s, notifications/s …) and its CPU time per iteration as cpu-ns/op (see ReportCPU).
func Run(b *testing.B, op Op, unit string) {
	b.Helper()
	ctx, cpu, units := b.Context(), CPUTime(), 0
	for b.Loop() {
		n, err := op.Call(ctx)
		if err != nil {
			b.Fatalf("%s: %v", op.Name, err)
		}
		units += n
	}
	ReportCPU(b, cpu)
	b.ReportMetric(float64(units)/b.Elapsed().Seconds(), unit+"/s")
}

// Paired runs a recorder's and a baseline's op alternately, once each per iteration, the one that
// goes first alternating too, and reports both times and their ratio as the metrics recorder-ns/op,
// raw-ns/op and x-raw-speed (raw time ÷ recorder time: above 1 the recorder is faster). Alternating
// makes both see the same load, so the ratio holds on a busy machine where the absolute figures do not.
func Paired(b *testing.B, recorder, raw Op) {
	b.Helper()
	ctx := b.Context()
	var t [2]time.Duration
	ops := [2]Op{recorder, raw}
	n := 0
	for b.Loop() {
		for k := range 2 {
			i := (n + k) % 2
			start := time.Now()
			if _, err := ops[i].Call(ctx); err != nil {
				b.Fatalf("%s: %v", ops[i].Name, err)
			}
			t[i] += time.Since(start)
		}
		n++
	}
	b.ReportMetric(float64(t[0].Nanoseconds())/float64(n), "recorder-ns/op")
	b.ReportMetric(float64(t[1].Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(t[1])/float64(t[0]), "x-raw-speed")
}

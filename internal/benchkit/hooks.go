package benchkit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/observe"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// The cost of the tracing hooks (package observe): the same save and load through repositories,
// event stores and recorders that are given a tracer or none. cmd/esbench measures a tracer that does
// nothing against none in its own process, and runs the OpenTelemetry module's program
// (otel/internal/hookbench), which measures its tracer against none with the same cases, for the rest
// (see OTelHookCosts).

// NopTracer is a tracer whose hooks do nothing: installed, it costs what the module's calls of the
// hooks cost.
type NopTracer struct{}

var _ observe.Tracer = NopTracer{}

func (NopTracer) LoadStart(ctx context.Context, _ observe.Load) context.Context         { return ctx }
func (NopTracer) LoadEnd(context.Context, observe.Load)                                 {}
func (NopTracer) SaveStart(ctx context.Context, _ observe.Save) context.Context         { return ctx }
func (NopTracer) SaveEnd(context.Context, observe.Save)                                 {}
func (NopTracer) SnapshotStart(ctx context.Context, _ observe.Snapshot) context.Context { return ctx }
func (NopTracer) SnapshotEnd(context.Context, observe.Snapshot)                         {}
func (NopTracer) PutStart(ctx context.Context, _ observe.Put) context.Context           { return ctx }
func (NopTracer) PutEnd(context.Context, observe.Put)                                   {}
func (NopTracer) GetStart(ctx context.Context, _ observe.Get) context.Context           { return ctx }
func (NopTracer) GetEnd(context.Context, observe.Get)                                   {}
func (NopTracer) AppendStart(ctx context.Context, _ observe.Append) context.Context     { return ctx }
func (NopTracer) AppendEnd(context.Context, observe.Append)                             {}
func (NopTracer) SelectStart(ctx context.Context, _ observe.Select) context.Context     { return ctx }
func (NopTracer) SelectEnd(context.Context, observe.Select)                             {}
func (NopTracer) GroupCommit(context.Context, observe.GroupCommit)                      {}
func (NopTracer) BatchStart(ctx context.Context, _ observe.Batch) context.Context       { return ctx }
func (NopTracer) BatchEnd(context.Context, observe.Batch)                               {}
func (NopTracer) Delivered(context.Context, observe.Delivery)                           {}

// Tracing is a tracer to measure, by name; nil is no tracer.
type Tracing struct {
	Name   string
	Tracer observe.Tracer
}

// HookCase is one path (a save or a load, on one store), as an op per tracing.
type HookCase struct {
	Name string
	Ops  []Op // in the order of the tracings
}

// HookLoad is how many events the account of the load cases has (saved 10 at a time).
const HookLoad = 100

// HookCases returns the cases of tracings: Repository.Save of a new account with one deposit, and
// Repository.Get of an account of HookLoad events (plain mapper, no snapshots), on the memory
// recorder and on the SQLite database db (migrated), through a repository, an event store and a
// recorder that are all given the tracing's tracer. The memory recorder takes no tracer; its cases
// measure the repository's and event store's hooks. close closes the recorders opened on db.
func HookCases(ctx context.Context, db *sql.DB, tracings ...Tracing) (cases []HookCase, close func(), err error) {
	var closers []func() error
	close = func() {
		for _, c := range closers {
			c()
		}
	}
	mem := memory.NewProcessRecorder()
	stores := []struct {
		name string
		open func(observe.RecorderTracer) (es.AggregateRecorder, error)
	}{
		{"memory", func(observe.RecorderTracer) (es.AggregateRecorder, error) { return mem, nil }},
		{"SQLite NORMAL", func(t observe.RecorderTracer) (es.AggregateRecorder, error) {
			r, err := sqlite.NewProcessRecorder(ctx, db, sqlite.WithSynchronous(sqlite.SynchronousNormal), sqlite.WithTracer(t))
			if err == nil {
				closers = append(closers, r.Close)
			}
			return r, err
		}},
	}
	m, err := mapper.New(NewRegistry())
	if err != nil {
		return nil, close, err
	}
	for _, s := range stores {
		save, load := HookCase{Name: s.name + ", Save of 1 event"}, HookCase{Name: fmt.Sprintf("%s, Get of %d events", s.name, HookLoad)}
		var id uuid.UUID
		for i, tr := range tracings {
			rec, err := s.open(tr.Tracer)
			if err != nil {
				return nil, close, err
			}
			repo, err := repository.New[Account](eventstore.New(m, rec, eventstore.WithTracer(tr.Tracer)), repository.WithTracer(tr.Tracer))
			if err != nil {
				return nil, close, err
			}
			if i == 0 {
				if id, err = buildAccount(ctx, repo, HookLoad); err != nil {
					return nil, close, err
				}
			}
			save.Ops = append(save.Ops, Op{Name: tr.Name, Call: func(ctx context.Context) (int, error) {
				a := &Account{}
				aggregate.Trigger(a, Deposit(1))
				_, err := repo.Save(ctx, a)
				return 1, err
			}})
			load.Ops = append(load.Ops, LoadOp(tr.Name, repo.Get, id, HookLoad))
		}
		cases = append(cases, save, load)
	}
	return cases, close, nil
}

// buildAccount saves an account of n events, 10 per save, and returns its ID.
func buildAccount(ctx context.Context, repo *Repository, n int) (uuid.UUID, error) {
	a := &Account{}
	for v := 1; v <= n; v++ {
		aggregate.Trigger(a, Deposit(v))
		if v%10 == 0 || v == n {
			if _, err := repo.Save(ctx, a); err != nil {
				return uuid.Nil, err
			}
		}
	}
	return a.ID, nil
}

// HookCost is the time per call of a path with a tracer beside the same without one, per round.
type HookCost struct {
	Case     string `json:"case"`     // the path, and the tracer
	Baseline string `json:"baseline"` // the same without a tracer
	Figure   Series `json:"figure"`   // seconds per call
	Base     Series `json:"base"`
}

// HookCosts measures each case, its ops (those of tracings, of which the first is no tracer)
// interleaved, and returns, per case and tracing after the first, its times beside the first's.
func HookCosts(ctx context.Context, p Plan, tracings []Tracing, cases []HookCase) ([]HookCost, error) {
	var out []HookCost
	for _, c := range cases {
		res, err := Interleave(ctx, p, c.Ops...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		for i := 1; i < len(tracings); i++ {
			out = append(out, HookCost{Case: c.Name + ", " + tracings[i].Name, Baseline: "same, " + tracings[0].Name,
				Figure: Times(res[i]), Base: Times(res[0])})
		}
	}
	return out, nil
}

// MeasureHooks measures the cases of a tracer that does nothing (NopTracer) beside no tracer, on db (see
// HookCases), by plan p; and, with otel, the OpenTelemetry module's tracer beside none (OTelHookCosts).
// It returns what it measured before an error too.
func MeasureHooks(ctx context.Context, p Plan, db *sql.DB, otel bool) ([]HookCost, error) {
	tracings := []Tracing{{Name: "no tracer"}, {Name: "a tracer that does nothing", Tracer: NopTracer{}}}
	cases, closeCases, err := HookCases(ctx, db, tracings...)
	defer closeCases()
	if err != nil {
		return nil, err
	}
	costs, err := HookCosts(ctx, p, tracings, cases)
	if err != nil || !otel {
		return costs, err
	}
	more, err := OTelHookCosts(ctx, p)
	return append(costs, more...), err
}

// OTelHookCosts runs the OpenTelemetry module's hook benchmark (go run ./internal/hookbench in the
// otel folder of the module the working directory is in), which measures HookCosts with its tracer
// beside none by plan p, and returns what it measured. The module is one of its own, so that the
// library's go.mod never names OpenTelemetry: a program of this module cannot link it.
func OTelHookCosts(ctx context.Context, p Plan) ([]HookCost, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("find the module: go env GOMOD: %w", err)
	}
	plan, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./internal/hookbench", "-plan", string(plan))
	cmd.Dir = filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "otel")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go run ./internal/hookbench in %s: %w: %s", cmd.Dir, err, strings.TrimSpace(stderr.String()))
	}
	var costs []HookCost
	if err := json.Unmarshal(out, &costs); err != nil {
		return nil, fmt.Errorf("the output of otel/internal/hookbench: %w", err)
	}
	if len(costs) == 0 {
		return nil, errors.New("otel/internal/hookbench measured nothing")
	}
	return costs, nil
}

package benchkit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// Repository is the repository of the benchmarks' Account.
type Repository = repository.Repository[Account, *Account]

// LoadStore is one store of accounts for the benchmarks of loads and saves: a repository that takes
// snapshots and one that does not, on the same events (plain mapper), the latter also with the
// StdJSON codec (encoding/json, what every mapper used before codecs could be chosen), and a raw twin
// that holds the same events as plain JSON, for the hand-written baselines.
type LoadStore struct {
	WithSnapshots, NoSnapshots, StdJSON *Repository
	rawAppend                           AppendFunc
	rawEvents                           ReadFunc
}

// NewLoadStore returns a LoadStore on events, taking a snapshot into snapshots every snapshotEvery
// events; rawAppend and rawEvents write and read the raw twin.
func NewLoadStore(events, snapshots es.AggregateRecorder, snapshotEvery int, rawAppend AppendFunc, rawEvents ReadFunc) (*LoadStore, error) {
	m, err := mapper.New(NewRegistry())
	if err != nil {
		return nil, err
	}
	s := &LoadStore{rawAppend: rawAppend, rawEvents: rawEvents}
	if s.WithSnapshots, err = repository.New[Account](eventstore.New(m, events), repository.WithSnapshots(eventstore.New(m, snapshots), snapshotEvery)); err != nil {
		return nil, err
	}
	if s.NoSnapshots, err = repository.New[Account](eventstore.New(m, events)); err != nil {
		return nil, err
	}
	std, err := mapper.New(NewRegistry(), mapper.WithCodec(mapper.StdJSON{}))
	if err != nil {
		return nil, err
	}
	s.StdJSON, err = repository.New[Account](eventstore.New(std, events))
	return s, err
}

// Build saves an account of n events, 10 events per save as a busy aggregate's are, and the same
// events as JSON into the raw twin, also 10 per save. All but the last 99 events go through
// WithSnapshots, the last 99 through NoSnapshots: the worst case for snapshots, where a
// snapshot-bounded load replays at least 99 events after the newest snapshot (when n > 99). It returns
// the account's ID in the repositories and in the raw twin.
func (s *LoadStore) Build(ctx context.Context, n int) (id, rawID uuid.UUID, err error) {
	a := &Account{}
	var data []any
	for v := 1; v <= n && err == nil; v++ {
		var d any = Deposit(v)
		if v == 1 {
			d = AccountOpened{Owner: "Ada Lovelace", Currency: "EUR"}
		}
		aggregate.Trigger(a, d)
		data = append(data, d)
		if v%10 != 0 && v != n {
			continue
		}
		save := s.WithSnapshots.Save
		if v > n-99 {
			save = s.NoSnapshots.Save
		}
		_, err = save(ctx, a)
	}
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	rawID = NewID()
	for from := 0; from < n && err == nil; from += 10 {
		err = s.RawSave(ctx, rawID, int64(from), data[from:min(from+10, n)])
	}
	return a.ID, rawID, err
}

// The loads LoadOps returns, at these indexes.
const (
	LoadSnapshots   = iota // WithSnapshots.Get
	LoadNoSnapshots        // NoSnapshots.Get
	LoadRaw                // RawGet, of the raw twin
	LoadStdJSON            // StdJSON.Get
	LoadKinds              // how many
)

// LoadOps builds an account of n events (Build) and returns the loads of it, named after name and n,
// at the indexes LoadSnapshots, LoadNoSnapshots, LoadRaw and LoadStdJSON.
func (s *LoadStore) LoadOps(ctx context.Context, name string, n int) ([]Op, error) {
	id, rawID, err := s.Build(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("%s: build an aggregate of %d events: %w", name, n, err)
	}
	name = fmt.Sprintf("%s, %d events", name, n)
	return []Op{LoadOp(name+", snapshots", s.WithSnapshots.Get, id, n), LoadOp(name+", no snapshots", s.NoSnapshots.Get, id, n),
		LoadOp(name+", raw", s.RawGet, rawID, n), LoadOp(name+", StdJSON codec", s.StdJSON.Get, id, n)}, nil
}

// RawSave is the hand-written save into the raw twin: json.Marshal of each event's data, and the raw
// append of versions after+1, after+2 … of originator id.
func (s *LoadStore) RawSave(ctx context.Context, id uuid.UUID, after int64, data []any) error {
	events := make([]es.StoredEvent, len(data))
	for i, d := range data {
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		topic := TopicDeposited
		if _, ok := d.(AccountOpened); ok {
			topic = TopicOpened
		}
		events[i] = es.StoredEvent{OriginatorID: id, OriginatorVersion: after + int64(i) + 1, Topic: topic, State: b}
	}
	_, err := s.rawAppend(ctx, events)
	return err
}

// RawGet is the hand-written load of account id from the raw twin: the raw read, encoding/json into
// the struct the topic names, and Apply.
func (s *LoadStore) RawGet(ctx context.Context, id uuid.UUID) (*Account, error) {
	events, err := s.rawEvents(ctx, id)
	if err != nil {
		return nil, err
	}
	a := &Account{}
	for _, e := range events {
		switch e.Topic {
		case TopicOpened:
			var d AccountOpened
			err = json.Unmarshal(e.State, &d)
			a.Apply(d)
		case TopicDeposited:
			var d MoneyDeposited
			err = json.Unmarshal(e.State, &d)
			a.Apply(d)
		default:
			err = fmt.Errorf("unknown topic %q", e.Topic)
		}
		if err != nil {
			return nil, err
		}
		a.ID, a.Version = e.OriginatorID, e.OriginatorVersion
	}
	return a, nil
}

// Saves are the accounts a save measurement of a LoadStore saves, one per call: Prepare makes them
// before each measurement, so that making them is not measured.
type Saves struct {
	s        *LoadStore
	accounts []*Account
	deposits [][]any // the accounts' deposits, for the raw save
	next     int
}

// Saves returns the save measurements of s, with nothing prepared.
func (s *LoadStore) Saves() *Saves { return &Saves{s: s} }

// Prepare makes n new accounts with events pending deposits each (none when events is 0) for the next
// n calls of the Save and Raw ops.
func (v *Saves) Prepare(events, n int) {
	v.accounts, v.deposits, v.next = v.accounts[:0], v.deposits[:0], 0
	for range n * min(events, 1) {
		a, ds := &Account{}, make([]any, events)
		for j := range ds {
			ds[j] = Deposit(j)
			aggregate.Trigger(a, ds[j])
		}
		v.accounts, v.deposits = append(v.accounts, a), append(v.deposits, ds)
	}
}

// Save saves, per call, the next prepared account through NoSnapshots.
func (v *Saves) Save() Op {
	return Op{Name: "Save", Call: func(ctx context.Context) (int, error) {
		v.next++
		_, err := v.s.NoSnapshots.Save(ctx, v.accounts[v.next-1])
		return 1, err
	}}
}

// Raw saves, per call, the next prepared account's deposits through RawSave, as a new originator.
func (v *Saves) Raw() Op {
	return Op{Name: "raw save", Call: func(ctx context.Context) (int, error) {
		v.next++
		return 1, v.s.RawSave(ctx, NewID(), 0, v.deposits[v.next-1])
	}}
}

// Package benchkit holds what the benchmarks share: the benchmark domain (a bank account whose state
// has a fixed size, and a small and a large event), the raw baselines that do a recorder's work by
// hand through the same driver, projections and process applications catching up with a log beside
// the hand-written loops that do their work (CatchUp), and the measurements (interleaved and paired
// runs, concurrent writers, commit-to-delivery and commit-to-applied latency, allocations, peak heap
// and CPU time).
//
// cmd/esbench builds the report on it and the packages' Go benchmarks use it; library code never
// imports it (TestOnlyBenchmarksImportIt checks).
package benchkit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// AccountOpened opens an Account.
type AccountOpened struct {
	Owner    string `json:"owner"`
	Currency string `json:"currency"`
}

// MoneyDeposited is a typical small event: about 200 bytes of JSON.
type MoneyDeposited struct {
	AccountID    uuid.UUID `json:"account_id"`
	Amount       int64     `json:"amount"`
	Currency     string    `json:"currency"`
	Reference    string    `json:"reference"`
	Counterparty string    `json:"counterparty"`
	BookedAt     time.Time `json:"booked_at"`
}

// OrderPlaced is a large event, about 2 KB of JSON, that compresses well.
type OrderPlaced struct {
	OrderID  uuid.UUID   `json:"order_id"`
	Customer string      `json:"customer"`
	Address  string      `json:"address"`
	Lines    []OrderLine `json:"lines"`
	Note     string      `json:"note"`
}

// OrderLine is one line of an OrderPlaced.
type OrderLine struct {
	SKU         string `json:"sku"`
	Description string `json:"description"`
	Quantity    int    `json:"quantity"`
	UnitPrice   int64  `json:"unit_price"`
}

// Account is the benchmarks' aggregate. Its state has a fixed size however many events it has seen,
// as most aggregates' state does, so that a snapshot costs the same at any version.
type Account struct {
	aggregate.Base
	Owner         string `json:"owner"`
	Currency      string `json:"currency"`
	Balance       int64  `json:"balance"`
	Deposits      int64  `json:"deposits"`
	LastReference string `json:"last_reference"`
}

// Apply applies AccountOpened and MoneyDeposited.
func (a *Account) Apply(e any) {
	switch e := e.(type) {
	case AccountOpened:
		a.Owner, a.Currency = e.Owner, e.Currency
	case MoneyDeposited:
		a.Balance += e.Amount
		a.Deposits++
		a.LastReference = e.Reference
	}
}

// The topics NewRegistry registers.
const (
	TopicOpened    = "bench.AccountOpened"
	TopicDeposited = "bench.MoneyDeposited"
	TopicOrder     = "bench.OrderPlaced"
	TopicAccount   = "bench.Account"
)

// NewRegistry registers the domain's events and the Account (for snapshots).
func NewRegistry() *mapper.Registry {
	r := mapper.NewRegistry()
	mapper.Register[AccountOpened](r, TopicOpened)
	mapper.Register[MoneyDeposited](r, TopicDeposited)
	mapper.Register[OrderPlaced](r, TopicOrder)
	mapper.Register[Account](r, TopicAccount)
	return r
}

// Key is a fixed AES-256 key (the bytes 0 to 31, base64): the benchmarks measure cost, not secrecy.
const Key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// MapperSetting is one configuration of the mapper.
type MapperSetting struct {
	Name    string // short, for Go benchmark names: plain, brotli, aesgcm, brotli+aesgcm
	Label   string // for the report
	Options []mapper.Option
}

// MapperSettings returns the settings: plain, brotli at the default quality, AES-GCM with Key, both,
// and AES-GCM with the StdJSON codec (encoding/json; the others have the default codec). It panics
// only if Key, a constant, is refused.
func MapperSettings() []MapperSetting {
	c, err := cipher.NewFromBase64(Key)
	if err != nil {
		panic(fmt.Sprintf("benchkit: the fixed key is refused: %v", err))
	}
	brotli := mapper.WithCompression(mapper.DefaultCompressionQuality)
	q := fmt.Sprintf("brotli q%d", mapper.DefaultCompressionQuality)
	return []MapperSetting{
		{"plain", "plain (JSON + CRC)", nil},
		{"brotli", q, []mapper.Option{brotli}},
		{"aesgcm", "AES-GCM", []mapper.Option{mapper.WithCipher(c)}},
		{"brotli+aesgcm", q + " + AES-GCM", []mapper.Option{brotli, mapper.WithCipher(c)}},
		{"aesgcm+stdjson", "AES-GCM, StdJSON codec", []mapper.Option{mapper.WithCipher(c), mapper.WithCodec(mapper.StdJSON{})}},
	}
}

// RoundTripOp encodes e with m and decodes the result, per call.
func RoundTripOp(name string, m *mapper.Mapper, e aggregate.Event) Op {
	return Op{Name: name, Call: func(ctx context.Context) (int, error) {
		stored, err := m.EncodeContext(ctx, e)
		if err == nil {
			_, err = m.DecodeContext(ctx, stored)
		}
		return 1, err
	}}
}

// RoundTripOps returns, for each setting of MapperSettings, the RoundTripOp of an event of data,
// named by the setting's label, and the length of the state it stores.
func RoundTripOps(data any) ([]Op, []int, error) {
	var ops []Op
	var sizes []int
	for _, st := range MapperSettings() {
		m, err := mapper.New(NewRegistry(), st.Options...)
		if err != nil {
			return nil, nil, err
		}
		e := aggregate.Event{OriginatorID: NewID(), OriginatorVersion: 42, Timestamp: time.Now().UTC(), Data: data}
		stored, err := m.Encode(e)
		if err != nil {
			return nil, nil, err
		}
		ops, sizes = append(ops, RoundTripOp(st.Label, m, e)), append(sizes, len(stored.State))
	}
	return ops, sizes, nil
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

// Deposit returns the i-th deposit: the same size for every i below 10,000.
func Deposit(i int) MoneyDeposited {
	return MoneyDeposited{
		AccountID:    uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e"),
		Amount:       1234567 + int64(i),
		Currency:     "EUR",
		Reference:    fmt.Sprintf("Invoice 2026-%04d: consulting services, March", i%10000),
		Counterparty: "ACME Corporation Ltd., Berlin",
		BookedAt:     time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC),
	}
}

// Order returns an order of 14 lines.
func Order() OrderPlaced {
	o := OrderPlaced{
		OrderID:  uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
		Customer: "Grace Hopper",
		Address:  "1 Harbour Street, Arlington, VA 22201, USA",
		Note:     strings.Repeat("Leave at the front desk. ", 4),
	}
	for i := range 14 {
		o.Lines = append(o.Lines, OrderLine{
			SKU:         fmt.Sprintf("SKU-%05d", 1000+i*37),
			Description: fmt.Sprintf("Stainless steel widget, size %d, brushed finish, pack of %d", i%5+1, (i%3+1)*10),
			Quantity:    i%4 + 1,
			UnitPrice:   int64(1999 + i*150),
		})
	}
	return o
}

// AppMapper returns the mapper of a typical application: brotli and AES-GCM with Key. It panics only if
// the mapper refuses these fixed settings, which would be a bug.
func AppMapper() *mapper.Mapper {
	m, err := mapper.New(NewRegistry(), MapperSettings()[3].Options...)
	if err != nil {
		panic(fmt.Sprintf("benchkit: the application mapper: %v", err))
	}
	return m
}

// SampleState returns the stored state of a typical event as an application stores it: a Deposit
// through AppMapper. The benchmarks of recorders alone store it. It panics only if the mapper cannot
// encode the fixed event, which would be a bug.
func SampleState() []byte {
	se, err := AppMapper().Encode(aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 1, Timestamp: time.Now(), Data: Deposit(1)})
	if err != nil {
		panic(fmt.Sprintf("benchkit: encode the sample event: %v", err))
	}
	return se.State
}

// NewID returns a new aggregate ID, as package aggregate gives new aggregates (time-ordered, so that
// successive originators land next to each other in the events table's index, as in an application).
func NewID() uuid.UUID { return aggregate.NewID() }

// StoredEvents returns n deposits of originator id, versions from..from+n-1, each with state.
func StoredEvents(id uuid.UUID, from int64, n int, state []byte) []es.StoredEvent {
	out := make([]es.StoredEvent, n)
	for i := range out {
		out[i] = es.StoredEvent{OriginatorID: id, OriginatorVersion: from + int64(i), Topic: TopicDeposited, State: state}
	}
	return out
}

// LogBatch returns n deposits of new originators, ten versions each, as a busy application's log
// holds them.
func LogBatch(n int, state []byte) []es.StoredEvent {
	out := make([]es.StoredEvent, 0, n)
	for i := 0; i < n; i += 10 {
		out = append(out, StoredEvents(NewID(), 1, min(10, n-i), state)...)
	}
	return out
}

// FillLog records total deposits through r in batches of 1,000 events of 100 originators (see
// LogBatch).
func FillLog(ctx context.Context, r es.AggregateRecorder, total int, state []byte) error {
	for done := 0; done < total; done += 1000 {
		if _, err := r.InsertEvents(ctx, LogBatch(min(1000, total-done), state)); err != nil {
			return err
		}
	}
	return nil
}

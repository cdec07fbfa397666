package main

import (
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

// The domain of the report: a bank account whose state has a fixed size, however many events it has
// seen, as most aggregates' do, so that a snapshot costs the same at any version.

type AccountOpened struct {
	Owner    string `json:"owner"`
	Currency string `json:"currency"`
}

// MoneyDeposited is about 200 bytes of JSON, a typical small event.
type MoneyDeposited struct {
	AccountID    uuid.UUID `json:"account_id"`
	Amount       int64     `json:"amount"`
	Currency     string    `json:"currency"`
	Reference    string    `json:"reference"`
	Counterparty string    `json:"counterparty"`
	BookedAt     time.Time `json:"booked_at"`
}

// OrderPlaced is about 2 KB of JSON, a large event, for the mapper's compression.
type OrderPlaced struct {
	OrderID  uuid.UUID   `json:"order_id"`
	Customer string      `json:"customer"`
	Address  string      `json:"address"`
	Lines    []OrderLine `json:"lines"`
	Note     string      `json:"note"`
}

type OrderLine struct {
	SKU         string `json:"sku"`
	Description string `json:"description"`
	Quantity    int    `json:"quantity"`
	UnitPrice   int64  `json:"unit_price"`
}

type Account struct {
	aggregate.Base
	Owner         string `json:"owner"`
	Currency      string `json:"currency"`
	Balance       int64  `json:"balance"`
	Deposits      int64  `json:"deposits"`
	LastReference string `json:"last_reference"`
}

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

const (
	topicOpened    = "bench.AccountOpened"
	topicDeposited = "bench.MoneyDeposited"
	topicOrder     = "bench.OrderPlaced"
	topicAccount   = "bench.Account"
)

func newRegistry() *mapper.Registry {
	r := mapper.NewRegistry()
	mapper.Register[AccountOpened](r, topicOpened)
	mapper.Register[MoneyDeposited](r, topicDeposited)
	mapper.Register[OrderPlaced](r, topicOrder)
	mapper.Register[Account](r, topicAccount)
	return r
}

// benchKey is a fixed AES-256 key: the report measures cost, not secrecy.
const benchKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

type mapperSetting struct {
	name string
	opts func() ([]mapper.Option, error)
}

func mapperSettings() []mapperSetting {
	aes := func() (mapper.Option, error) {
		c, err := cipher.NewFromBase64(benchKey)
		if err != nil {
			return nil, err
		}
		return mapper.WithCipher(c), nil
	}
	brotli := fmt.Sprintf("brotli q%d", mapper.DefaultCompressionQuality)
	return []mapperSetting{
		{"plain (JSON + CRC)", func() ([]mapper.Option, error) { return nil, nil }},
		{brotli, func() ([]mapper.Option, error) {
			return []mapper.Option{mapper.WithCompression(mapper.DefaultCompressionQuality)}, nil
		}},
		{"AES-GCM", func() ([]mapper.Option, error) {
			o, err := aes()
			return []mapper.Option{o}, err
		}},
		{brotli + " + AES-GCM", func() ([]mapper.Option, error) {
			o, err := aes()
			return []mapper.Option{mapper.WithCompression(mapper.DefaultCompressionQuality), o}, err
		}},
	}
}

func deposit(i int) MoneyDeposited {
	return MoneyDeposited{
		AccountID:    uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e"),
		Amount:       1234567 + int64(i),
		Currency:     "EUR",
		Reference:    fmt.Sprintf("Invoice 2026-%04d: consulting services, March", i%10000),
		Counterparty: "ACME Corporation Ltd., Berlin",
		BookedAt:     time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC),
	}
}

func order() OrderPlaced {
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

// sampleState returns the stored state of a typical event as an application stores it (MoneyDeposited
// through the mapper with brotli and AES-GCM), for the scenarios that measure recorders alone.
func sampleState() ([]byte, error) {
	s := mapperSettings()[3]
	opts, err := s.opts()
	if err != nil {
		return nil, err
	}
	m, err := mapper.New(newRegistry(), opts...)
	if err != nil {
		return nil, err
	}
	se, err := m.Encode(aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 1, Timestamp: time.Now(), Data: deposit(1)})
	if err != nil {
		return nil, err
	}
	return se.State, nil
}

// storedEvents returns n stored events of one new originator, versions from..from+n-1.
func storedEvents(id uuid.UUID, from int64, n int, state []byte) []es.StoredEvent {
	out := make([]es.StoredEvent, n)
	for i := range out {
		out[i] = es.StoredEvent{OriginatorID: id, OriginatorVersion: from + int64(i), Topic: topicDeposited, State: state}
	}
	return out
}

func newID() uuid.UUID { return aggregate.NewID() }

// decodeRaw is the hand-written decoding of the raw baselines: the topic picks the struct, encoding/json
// fills it.
func decodeRaw(topic string, data []byte) (any, error) {
	switch topic {
	case topicOpened:
		var e AccountOpened
		err := json.Unmarshal(data, &e)
		return e, err
	case topicDeposited:
		var e MoneyDeposited
		err := json.Unmarshal(data, &e)
		return e, err
	}
	return nil, fmt.Errorf("unknown topic %q", topic)
}

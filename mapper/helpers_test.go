package mapper_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// MoneyDeposited is a typical small event: about 200 bytes of JSON.
type MoneyDeposited struct {
	AccountID    uuid.UUID `json:"account_id"`
	Amount       int64     `json:"amount"`
	Currency     string    `json:"currency"`
	Reference    string    `json:"reference"`
	Counterparty string    `json:"counterparty"`
	BookedAt     time.Time `json:"booked_at"`
}

// OrderPlaced is a larger event: about 2 KB of JSON, which compresses well.
type OrderPlaced struct {
	OrderID  uuid.UUID   `json:"order_id"`
	Customer string      `json:"customer"`
	Address  string      `json:"address"`
	Lines    []OrderLine `json:"lines"`
	Note     string      `json:"note,omitempty"`
}

type OrderLine struct {
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
	Currency  string `json:"currency"`
}

// Base and AccountState stand for a snapshot: aggregate state with an embedded base.
type Base struct {
	ID         uuid.UUID
	Version    int64
	CreatedOn  time.Time
	ModifiedOn time.Time
}

type AccountState struct {
	Base
	Owner   string
	Balance int64
	Closed  bool
	Limits  map[string]int64
	Tags    []string
}

const (
	topicDeposited = "bank.MoneyDeposited"
	topicOrder     = "shop.OrderPlaced"
	topicAccount   = "bank.Account.snapshot"
	testKey        = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes 0..31
)

var (
	testID   = uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	testTime = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
)

// Explosive panics in MarshalJSON or UnmarshalJSON, as its Fuse says: a bug in an application's event
// type that the mapper must turn into an error.
type Explosive struct{ Fuse string }

func (e Explosive) MarshalJSON() ([]byte, error) {
	if e.Fuse == "marshal" {
		panic("marshal boom")
	}
	return json.Marshal(map[string]string{"fuse": e.Fuse})
}

func (e *Explosive) UnmarshalJSON(b []byte) error {
	var v map[string]string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v["fuse"] == "unmarshal" {
		panic("unmarshal boom")
	}
	e.Fuse = v["fuse"]
	return nil
}

func newRegistry() *mapper.Registry {
	r := mapper.NewRegistry()
	mapper.Register[MoneyDeposited](r, topicDeposited, mapper.Alias("bank.Deposited"))
	mapper.Register[OrderPlaced](r, topicOrder)
	mapper.Register[AccountState](r, topicAccount)
	return r
}

func mustCipher(t testing.TB, key string) *cipher.AESGCM {
	t.Helper()
	c, err := cipher.NewFromBase64(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// setting is one configuration of the mapper.
type setting struct {
	name string
	opts func(testing.TB) []mapper.Option
}

func settings() []setting {
	return []setting{
		{"plain", func(testing.TB) []mapper.Option { return nil }},
		{"brotli", func(testing.TB) []mapper.Option {
			return []mapper.Option{mapper.WithCompression(mapper.DefaultCompressionQuality)}
		}},
		{"aesgcm", func(t testing.TB) []mapper.Option {
			return []mapper.Option{mapper.WithCipher(mustCipher(t, testKey))}
		}},
		{"brotli+aesgcm", func(t testing.TB) []mapper.Option {
			return []mapper.Option{
				mapper.WithCompression(mapper.DefaultCompressionQuality),
				mapper.WithCipher(mustCipher(t, testKey)),
			}
		}},
	}
}

func deposit() MoneyDeposited {
	return MoneyDeposited{
		AccountID:    uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e"),
		Amount:       1234567,
		Currency:     "EUR",
		Reference:    "Invoice 2026-0042: consulting services, March",
		Counterparty: "ACME Corporation Ltd., Berlin",
		BookedAt:     time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC),
	}
}

func order() OrderPlaced {
	o := OrderPlaced{
		OrderID:  uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
		Customer: "Grace Hopper",
		Address:  "1 Harbour Street, Arlington, VA 22201, USA",
		Note:     "Leave at the door <please> & ring twice",
	}
	for i := range 14 {
		o.Lines = append(o.Lines, OrderLine{
			SKU:       fmt.Sprintf("SKU-%06d", 1000+i*37),
			Name:      fmt.Sprintf("Widget model %c, stainless steel, %d mm", 'A'+i, 10+i*5),
			Quantity:  1 + i%4,
			UnitPrice: int64(999 + i*250),
			Currency:  "USD",
		})
	}
	return o
}

func account() AccountState {
	return AccountState{
		Base: Base{
			ID:         testID,
			Version:    42,
			CreatedOn:  time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
			ModifiedOn: testTime,
		},
		Owner:   "Ada Lovelace",
		Balance: -17,
		Limits:  map[string]int64{"daily": 1000, "monthly": 10000},
		Tags:    []string{"vip"},
	}
}

func event(data any) aggregate.Event {
	return aggregate.Event{OriginatorID: testID, OriginatorVersion: 7, Timestamp: testTime, Data: data}
}

// mustNameEvent checks that err is a *mapper.DecodeError naming the stored event, in its fields and in
// its message.
func mustNameEvent(t *testing.T, err error, topic string, id uuid.UUID, version int64) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	de, ok := err.(*mapper.DecodeError)
	if !ok {
		t.Fatalf("error %T (%v) is not a *mapper.DecodeError", err, err)
	}
	if de.Topic != topic || de.OriginatorID != id || de.OriginatorVersion != version {
		t.Errorf("DecodeError names %q %s v%d, want %q %s v%d",
			de.Topic, de.OriginatorID, de.OriginatorVersion, topic, id, version)
	}
	msg := err.Error()
	for _, want := range []string{fmt.Sprintf("%q", topic), id.String(), fmt.Sprintf("version %d", version)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %s", msg, want)
		}
	}
	if de.Err == nil {
		t.Error("DecodeError without a cause")
	}
}

// newMapper returns mapper.New's Mapper, failing the test on an error.
func newMapper(t testing.TB, r *mapper.Registry, opts ...mapper.Option) *mapper.Mapper {
	t.Helper()
	m, err := mapper.New(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

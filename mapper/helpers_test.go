package mapper_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// The events of the tests are the benchmark domain's: MoneyDeposited is a typical small event, and
// OrderPlaced a large one that compresses well.
type (
	MoneyDeposited = benchkit.MoneyDeposited
	OrderPlaced    = benchkit.OrderPlaced
)

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

// setting is one configuration of the mapper: plain, brotli, aesgcm or brotli+aesgcm.
type setting struct {
	name string
	opts func(testing.TB) []mapper.Option
}

func settings() []setting {
	var out []setting
	for _, s := range benchkit.MapperSettings() {
		out = append(out, setting{s.Name, func(testing.TB) []mapper.Option { return s.Options }})
	}
	return out
}

func deposit() MoneyDeposited { return benchkit.Deposit(42) }

func order() OrderPlaced { return benchkit.Order() }

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

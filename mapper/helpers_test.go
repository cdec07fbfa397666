package mapper_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
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

// CustomerNoted is about a customer whose data spans several aggregates: it names the customer as its
// subject, so that forgetting the customer forgets it.
type CustomerNoted struct {
	Customer string `json:"customer"`
	Note     string `json:"note"`
}

func (e CustomerNoted) DataSubject() string { return e.Customer }

const (
	topicNoted     = "crm.CustomerNoted"
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
	mapper.Register[CustomerNoted](r, topicNoted)
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

// setting is one configuration of the mapper: benchkit's four (plain, brotli, aesgcm, brotli+aesgcm),
// and a key ring and data keys, each without and with brotli.
type setting struct {
	name string
	opts func(testing.TB) []mapper.Option
	// keys is what the setting encrypts with: 0 nothing, 1 one key (format 1), 2 a key ring, 3 data
	// keys. A setting reads what settings of its level or below (except 0) wrote.
	keys int
}

// reads reports whether a mapper of setting s decodes what a mapper of setting w encoded.
func (s setting) reads(w setting) bool { return w.keys == 0 || s.keys >= w.keys }

func settings() []setting {
	var out []setting
	for _, s := range benchkit.MapperSettings() {
		level := 0
		if strings.Contains(s.Name, "aesgcm") {
			level = 1
		}
		out = append(out, setting{s.Name, func(testing.TB) []mapper.Option { return s.Options }, level})
	}
	compress := mapper.WithCompression(mapper.DefaultCompressionQuality)
	return append(out,
		setting{"keyring", func(t testing.TB) []mapper.Option { return []mapper.Option{mapper.WithKeyRing(testRing(t))} }, 2},
		setting{"brotli+keyring", func(t testing.TB) []mapper.Option {
			return []mapper.Option{compress, mapper.WithKeyRing(testRing(t))}
		}, 2},
		setting{"datakeys", func(t testing.TB) []mapper.Option { return []mapper.Option{mapper.WithDataKeys(testKeys(t))} }, 3},
		setting{"brotli+datakeys", func(t testing.TB) []mapper.Option {
			return []mapper.Option{compress, mapper.WithDataKeys(testKeys(t))}
		}, 3},
	)
}

const testKey2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=" // 32 bytes 32..63

// testRing returns a new key ring of testKey (ID "old") and testKey2 (ID "k2", current), so that it
// reads what WithCipher(testKey) wrote.
func testRing(t testing.TB) *cipher.KeyRing {
	t.Helper()
	r, err := cipher.ParseKeyRing("old:" + testKey + ",k2:" + testKey2)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// dataKeyStores holds the key store of each test (or subtest, or benchmark) that uses data keys: the
// mappers of one test, each with Keys of its own, share it as the processes of an application share
// their database; another test, or the same test run again (-count), starts from an empty store,
// since a test may forget subjects that a later one encodes.
var dataKeyStores sync.Map // testing.TB → *datakey.MemoryStore

func dataKeyStore(t testing.TB) *datakey.MemoryStore {
	s, loaded := dataKeyStores.LoadOrStore(t, datakey.NewMemoryStore())
	if !loaded {
		t.Cleanup(func() { dataKeyStores.Delete(t) })
	}
	return s.(*datakey.MemoryStore)
}

// testKeys returns new Keys over testRing and the store of t.
func testKeys(t testing.TB, opts ...datakey.Option) *datakey.Keys {
	t.Helper()
	k, err := datakey.New(testRing(t), dataKeyStore(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return k
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

// roundTrip encodes e with m and decodes the result, and returns the first error.
func roundTrip(m *mapper.Mapper, e aggregate.Event) error {
	s, err := m.Encode(e)
	if err == nil {
		_, err = m.Decode(s)
	}
	return err
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

package mapper_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

func TestRoundTrip(t *testing.T) {
	payloads := []struct {
		name  string
		topic string
		data  any
	}{
		{"small event", topicDeposited, deposit()},
		{"large event", topicOrder, order()},
		{"snapshot", topicAccount, account()},
		{"zero values", topicAccount, AccountState{}},
	}
	timestamps := []time.Time{
		testTime,
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),                        // no fraction
		time.Date(2026, 1, 1, 0, 0, 0, 100, time.UTC),                      // trailing zeros
		time.Date(2026, 6, 1, 12, 0, 0, 1, time.FixedZone("CEST", 2*3600)), // not UTC
		time.Now(), // local, monotonic
		{},         // zero
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), // last
	}
	for _, s := range settings() {
		m := newMapper(t, newRegistry(), s.opts(t)...)
		for _, p := range payloads {
			for _, ts := range timestamps {
				t.Run(s.name+"/"+p.name, func(t *testing.T) {
					in := aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 1 << 40, Timestamp: ts, Data: p.data}
					stored, err := m.Encode(in)
					if err != nil {
						t.Fatal(err)
					}
					if stored.Topic != p.topic || stored.OriginatorID != in.OriginatorID || stored.OriginatorVersion != in.OriginatorVersion {
						t.Errorf("stored %q %s v%d, want %q %s v%d", stored.Topic, stored.OriginatorID,
							stored.OriginatorVersion, p.topic, in.OriginatorID, in.OriginatorVersion)
					}
					out, err := m.Decode(stored)
					if err != nil {
						t.Fatal(err)
					}
					if out.OriginatorID != in.OriginatorID || out.OriginatorVersion != in.OriginatorVersion {
						t.Errorf("decoded %s v%d", out.OriginatorID, out.OriginatorVersion)
					}
					// Exact to the nanosecond, in UTC, and comparable with ==.
					if out.Timestamp != ts.UTC() || out.Timestamp.Location() != time.UTC {
						t.Errorf("timestamp %v (%v), want %v", out.Timestamp, out.Timestamp.Location(), ts.UTC())
					}
					if reflect.TypeOf(out.Data) != reflect.TypeOf(p.data) {
						t.Fatalf("Data is a %T, want a %T value", out.Data, p.data)
					}
					if !reflect.DeepEqual(out.Data, p.data) {
						t.Errorf("Data = %+v\nwant   %+v", out.Data, p.data)
					}
				})
			}
		}
	}
}

// Pointers are refused: decoding gives values, and an aggregate's Apply must see the same type live and
// replayed.
func TestEncodeRefusesPointers(t *testing.T) {
	m := newMapper(t, newRegistry())
	d := deposit()
	_, err := m.Encode(event(&d))
	if !errors.Is(err, aggregate.ErrInvalidEvent) || !strings.Contains(err.Error(), "MoneyDeposited is a pointer") {
		t.Fatalf("encoding a pointer: got %v, want an error wrapping aggregate.ErrInvalidEvent", err)
	}
	if _, err := m.Encode(event((*MoneyDeposited)(nil))); !errors.Is(err, aggregate.ErrInvalidEvent) {
		t.Fatalf("encoding a nil pointer: got %v", err)
	}
}

// The originator topic is stored in the envelope of the events that have one, and read back.
func TestOriginatorTopicRoundTrip(t *testing.T) {
	for _, s := range settings() {
		m := newMapper(t, newRegistry(), s.opts(t)...)
		for _, name := range []string{"bank.Account", `odd "topic" \ with ünïcode <&>`} {
			in := event(deposit())
			in.OriginatorTopic = name
			out, err := m.Decode(mustEncode(t, m, in))
			if err != nil {
				t.Fatal(err)
			}
			if out.OriginatorTopic != name || out.Data != in.Data {
				t.Errorf("%s: decoded topic %q data %+v, want %q", s.name, out.OriginatorTopic, out.Data, name)
			}
		}
		out, err := m.Decode(mustEncode(t, m, event(deposit())))
		if err != nil || out.OriginatorTopic != "" {
			t.Errorf("%s: an event without an originator topic decoded with %q, %v", s.name, out.OriginatorTopic, err)
		}
	}
}

// A Mapper's registry answers which type a topic, current or alias, names.
func TestRegistryType(t *testing.T) {
	m := newMapper(t, newRegistry())
	for _, topic := range []string{topicDeposited, "bank.Deposited"} {
		if typ, ok := m.Registry().Type(topic); !ok || typ != reflect.TypeFor[MoneyDeposited]() {
			t.Errorf("Type(%q) = %v, %v", topic, typ, ok)
		}
	}
	if typ, ok := m.Registry().Type("nope"); ok || typ != nil {
		t.Errorf("Type of an unknown topic = %v, %v", typ, ok)
	}
}

// Panics in the event's JSON methods come back as errors naming the event.
func TestPanicsInJSONMethodsAreErrors(t *testing.T) {
	r := newRegistry()
	mapper.Register[Explosive](r, "test.Explosive")
	m := newMapper(t, r)
	_, err := m.Encode(event(Explosive{Fuse: "marshal"}))
	if err == nil || !strings.Contains(err.Error(), "panic: marshal boom") || !strings.Contains(err.Error(), "mapper_test.Explosive") {
		t.Fatalf("encode: got %v", err)
	}
	stored := mustEncode(t, m, event(Explosive{Fuse: "unmarshal"}))
	_, err = m.Decode(stored)
	var de *mapper.DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "panic: unmarshal boom") {
		t.Fatalf("decode: got %v", err)
	}
}

// The header tells what was done: compression only where it pays, checksum or encryption always.
func TestHeader(t *testing.T) {
	const (
		compressed  = 0x01
		encrypted   = 0x02
		checksummed = 0x04
	)
	tests := []struct {
		setting string
		data    any
		flags   byte
	}{
		{"plain", deposit(), checksummed},
		{"plain", order(), checksummed},
		{"brotli", order(), compressed | checksummed},
		{"aesgcm", deposit(), encrypted},
		{"brotli+aesgcm", order(), compressed | encrypted},
	}
	for _, tt := range tests {
		m := mustMapper(t, tt.setting)
		stored, err := m.Encode(event(tt.data))
		if err != nil {
			t.Fatal(err)
		}
		if stored.State[0] != 1 || stored.State[1] != tt.flags || stored.State[2] != 1 {
			t.Errorf("%s %T: header % x, want 01 %02x 01", tt.setting, tt.data, stored.State[:3], tt.flags)
		}
		if tt.flags&encrypted != 0 && bytes.Contains(stored.State, []byte("Widget")) {
			t.Errorf("%s: plaintext visible in the stored state", tt.setting)
		}
	}
	// A large event compresses to a fraction; a small one may or may not, but never grows.
	plain, _ := mustMapper(t, "plain").Encode(event(order()))
	small, _ := mustMapper(t, "brotli").Encode(event(order()))
	if len(small.State)*2 > len(plain.State) {
		t.Errorf("brotli: %d bytes, plain %d", len(small.State), len(plain.State))
	}
	plainSmall, _ := mustMapper(t, "plain").Encode(event(deposit()))
	zSmall, _ := mustMapper(t, "brotli").Encode(event(deposit()))
	if len(zSmall.State) > len(plainSmall.State) {
		t.Errorf("brotli made a small event larger: %d > %d bytes", len(zSmall.State), len(plainSmall.State))
	}
	// A tiny event does not shrink: it is stored plain, exactly as without compression.
	r := mapper.NewRegistry()
	type Ping struct{ N int }
	mapper.Register[Ping](r, "ping")
	a, _ := newMapper(t, r).Encode(event(Ping{N: 1}))
	b, _ := newMapper(t, r, mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithCompressionMinSize(0)).Encode(event(Ping{N: 1}))
	if b.State[1]&compressed != 0 || !bytes.Equal(a.State, b.State) {
		t.Errorf("tiny payload stored compressed (flags %02x, %d vs %d bytes)", b.State[1], len(b.State), len(a.State))
	}
}

// Below the minimum size compression is not even tried: a 200-byte event, which brotli shrinks a
// little for several times the cost, is stored plain unless the minimum is lowered.
func TestCompressionMinSize(t *testing.T) {
	const compressed = 0x01
	def, err := mustMapper(t, "brotli").Encode(event(deposit()))
	if err != nil {
		t.Fatal(err)
	}
	if def.State[1]&compressed != 0 {
		t.Errorf("a %d-byte event was compressed below DefaultCompressionMinSize", len(def.State))
	}
	all, err := mustMapper(t, "brotli", mapper.WithCompressionMinSize(0)).Encode(event(deposit()))
	if err != nil {
		t.Fatal(err)
	}
	if all.State[1]&compressed == 0 || len(all.State) >= len(def.State) {
		t.Errorf("with no minimum the event was not compressed (flags %02x, %d vs %d bytes)", all.State[1], len(all.State), len(def.State))
	}
	big, _ := mustMapper(t, "brotli", mapper.WithCompressionMinSize(1<<20)).Encode(event(order()))
	if big.State[1]&compressed != 0 {
		t.Error("an event below a raised minimum was compressed")
	}
	for _, s := range []aggregate.Event{event(deposit()), event(order())} {
		for _, m := range []*mapper.Mapper{mustMapper(t, "plain"), mustMapper(t, "brotli", mapper.WithCompressionMinSize(0))} {
			st, _ := mustMapper(t, "brotli").Encode(s)
			if _, err := m.Decode(st); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mustMapper(t testing.TB, name string, extra ...mapper.Option) *mapper.Mapper {
	t.Helper()
	for _, s := range settings() {
		if s.name == name {
			return newMapper(t, newRegistry(), append(s.opts(t), extra...)...)
		}
	}
	t.Fatalf("no setting %q", name)
	return nil
}

// Reading never depends on the reader's settings, except that encrypted events need the cipher: the
// key (WithCipher), a key ring with the key (WithKeyRing), or data keys whose ring has it.
func TestReadAcrossSettings(t *testing.T) {
	for _, writer := range settings() {
		for _, reader := range settings() {
			t.Run(writer.name+" read by "+reader.name, func(t *testing.T) {
				w := newMapper(t, newRegistry(), writer.opts(t)...)
				r := newMapper(t, newRegistry(), reader.opts(t)...)
				for _, data := range []any{deposit(), order()} {
					stored, err := w.Encode(event(data))
					if err != nil {
						t.Fatal(err)
					}
					out, err := r.Decode(stored)
					if !reader.reads(writer) {
						mustNameEvent(t, err, stored.Topic, testID, 7)
						if !errors.Is(err, mapper.ErrNoCipher) {
							t.Errorf("err = %v, want ErrNoCipher", err)
						}
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(out.Data, data) {
						t.Errorf("Data = %+v", out.Data)
					}
				}
			})
		}
	}
}

func TestAlias(t *testing.T) {
	// The program as it was: the event type under its old topic.
	old := mapper.NewRegistry()
	mapper.Register[MoneyDeposited](old, "bank.Deposited")
	// The program now: the same data under a new topic, with the old one as an alias.
	now := newRegistry()

	for _, s := range settings() {
		t.Run(s.name, func(t *testing.T) {
			stored, err := newMapper(t, old, s.opts(t)...).Encode(event(deposit()))
			if err != nil {
				t.Fatal(err)
			}
			if stored.Topic != "bank.Deposited" {
				t.Fatalf("topic %q", stored.Topic)
			}
			m := newMapper(t, now, s.opts(t)...)
			out, err := m.Decode(stored)
			if err != nil {
				t.Fatal(err)
			}
			if out.Data != deposit() {
				t.Errorf("Data = %+v", out.Data)
			}
			// Encoding writes the current topic.
			again, err := m.Encode(out)
			if err != nil || again.Topic != topicDeposited {
				t.Errorf("re-encoded under %q, %v", again.Topic, err)
			}
		})
	}
	if topic, err := now.Topic(deposit()); err != nil || topic != topicDeposited {
		t.Errorf("Topic = %q, %v", topic, err)
	}
}

func TestTopic(t *testing.T) {
	r := newRegistry()
	d := deposit()
	for _, v := range []any{d, &d, (*MoneyDeposited)(nil)} {
		if topic, err := r.Topic(v); err != nil || topic != topicDeposited {
			t.Errorf("Topic(%T) = %q, %v", v, topic, err)
		}
	}
	type unregistered struct{ A int }
	for _, v := range []any{nil, unregistered{}, &unregistered{}, "text", 1, &[]int{}} {
		if _, err := r.Topic(v); !errors.Is(err, mapper.ErrUnregistered) {
			t.Errorf("Topic(%T): err = %v, want ErrUnregistered", v, err)
		}
	}
	var zero mapper.Registry
	if _, err := zero.Topic(d); !errors.Is(err, mapper.ErrUnregistered) {
		t.Errorf("zero Registry: err = %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	type unregistered struct{ A int }
	m := mustMapper(t, "brotli+aesgcm")
	tests := []struct {
		name string
		e    aggregate.Event
		is   error
	}{
		{"unregistered type", event(unregistered{1}), mapper.ErrUnregistered},
		{"nil data", event(nil), mapper.ErrUnregistered},
		{"nil pointer", event((*MoneyDeposited)(nil)), nil},
		{"pointer to pointer", event(new(*MoneyDeposited)), mapper.ErrUnregistered},
		{"timestamp beyond RFC 3339", aggregate.Event{OriginatorID: testID, Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Data: deposit()}, nil},
	}
	for _, tt := range tests {
		_, err := m.Encode(tt.e)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.is)
		}
		if !strings.Contains(err.Error(), testID.String()) {
			t.Errorf("%s: error %q does not name the originator", tt.name, err)
		}
	}
}

// Schema v1 → v2 → v3 of one event type, as three releases of a program would declare it.
type (
	CustomerRegisteredV1 struct {
		Name string `json:"name"`
		Ref  int64  `json:"ref"`
	}
	CustomerRegisteredV2 struct {
		First string `json:"first"`
		Last  string `json:"last"`
		Ref   int64  `json:"ref"`
	}
	CustomerRegistered struct {
		GivenName  string `json:"given_name"`
		FamilyName string `json:"family_name"`
		Ref        int64  `json:"ref"`
		Source     string `json:"source"`
	}
)

const topicCustomer = "crm.CustomerRegistered"

// splitName upcasts v1 to v2: "name" becomes "first" and "last".
func splitName(obj map[string]any) error {
	name, ok := obj["name"].(string)
	if !ok {
		return fmt.Errorf("name is %T, want string", obj["name"])
	}
	first, last, _ := strings.Cut(name, " ")
	obj["first"], obj["last"] = first, last
	delete(obj, "name")
	return nil
}

// renameNames upcasts v2 to v3: renames fields, adds a default.
func renameNames(obj map[string]any) error {
	obj["given_name"], obj["family_name"] = obj["first"], obj["last"]
	delete(obj, "first")
	delete(obj, "last")
	obj["source"] = "legacy"
	// Numbers arrive as json.Number, so that large integers survive.
	if _, ok := obj["ref"].(json.Number); !ok {
		return fmt.Errorf("ref is %T, want json.Number", obj["ref"])
	}
	return nil
}

func TestUpcasting(t *testing.T) {
	const bigRef = 1<<53 + 1 // not representable as float64
	v1 := mapper.NewRegistry()
	mapper.Register[CustomerRegisteredV1](v1, topicCustomer)
	v2 := mapper.NewRegistry()
	mapper.Register[CustomerRegisteredV2](v2, topicCustomer, mapper.SchemaVersion(2))
	v3 := mapper.NewRegistry()
	mapper.Register[CustomerRegistered](v3, topicCustomer, mapper.SchemaVersion(3))
	v3.Upcaster(topicCustomer, 1, splitName)
	v3.Upcaster(topicCustomer, 2, renameNames)

	want := CustomerRegistered{GivenName: "Ada", FamilyName: "Lovelace", Ref: bigRef, Source: "legacy"}
	for _, s := range settings() {
		t.Run(s.name, func(t *testing.T) {
			reader := newMapper(t, v3, s.opts(t)...)
			stored := []es.StoredEvent{
				mustEncode(t, newMapper(t, v1, s.opts(t)...), event(CustomerRegisteredV1{Name: "Ada Lovelace", Ref: bigRef})),
				mustEncode(t, newMapper(t, v2, s.opts(t)...), event(CustomerRegisteredV2{First: "Ada", Last: "Lovelace", Ref: bigRef})),
			}
			for i, st := range stored {
				out, err := reader.Decode(st)
				if err != nil {
					t.Fatalf("from v%d: %v", i+1, err)
				}
				if out.Data != want {
					t.Errorf("from v%d: %+v, want %+v", i+1, out.Data, want)
				}
			}
			// The current version takes the direct path and keeps its own values.
			cur := CustomerRegistered{GivenName: "Grace", FamilyName: "Hopper", Ref: 3, Source: "web"}
			out, err := reader.Decode(mustEncode(t, reader, event(cur)))
			if err != nil || out.Data != cur {
				t.Errorf("current version: %+v, %v", out.Data, err)
			}

			// A reader at v2 upcasts v1 events, and refuses v3 ones: they come from a newer program.
			v2b := mapper.NewRegistry()
			mapper.Register[CustomerRegisteredV2](v2b, topicCustomer, mapper.SchemaVersion(2))
			v2b.Upcaster(topicCustomer, 1, splitName)
			older := newMapper(t, v2b, s.opts(t)...)
			if out, err := older.Decode(stored[0]); err != nil || out.Data != (CustomerRegisteredV2{"Ada", "Lovelace", bigRef}) {
				t.Errorf("v2 reader, v1 event: %+v, %v", out.Data, err)
			}
			_, err = older.Decode(mustEncode(t, reader, event(cur)))
			mustNameEvent(t, err, topicCustomer, testID, 7)
			if !errors.Is(err, mapper.ErrSchemaVersion) {
				t.Errorf("v2 reader, v3 event: err = %v, want ErrSchemaVersion", err)
			}
		})
	}
}

func TestUpcastingErrors(t *testing.T) {
	v1 := mapper.NewRegistry()
	mapper.Register[CustomerRegisteredV1](v1, topicCustomer)
	v1Event := mustEncode(t, newMapper(t, v1), event(CustomerRegisteredV1{Name: "Ada Lovelace", Ref: 1}))
	v2 := mapper.NewRegistry()
	mapper.Register[CustomerRegisteredV2](v2, topicCustomer, mapper.SchemaVersion(2))
	v2Event := mustEncode(t, newMapper(t, v2), event(CustomerRegisteredV2{First: "Ada", Last: "Lovelace", Ref: 1}))

	// Only the step from 2 to 3 is registered.
	missing := mapper.NewRegistry()
	mapper.Register[CustomerRegistered](missing, topicCustomer, mapper.SchemaVersion(3))
	missing.Upcaster(topicCustomer, 2, renameNames)
	m := newMapper(t, missing)
	_, err := m.Decode(v1Event)
	mustNameEvent(t, err, topicCustomer, testID, 7)
	if !errors.Is(err, mapper.ErrMissingUpcaster) || !strings.Contains(err.Error(), "from version 1 to 2") {
		t.Errorf("err = %v, want ErrMissingUpcaster from version 1 to 2", err)
	}
	if _, err := m.Decode(v2Event); err != nil {
		t.Errorf("v2 event: %v", err)
	}

	// An upcaster's error is wrapped.
	errBroken := errors.New("broken")
	failing := mapper.NewRegistry()
	mapper.Register[CustomerRegisteredV2](failing, topicCustomer, mapper.SchemaVersion(2))
	failing.Upcaster(topicCustomer, 1, func(map[string]any) error { return errBroken })
	_, err = newMapper(t, failing).Decode(v1Event)
	mustNameEvent(t, err, topicCustomer, testID, 7)
	if !errors.Is(err, errBroken) {
		t.Errorf("err = %v, want the upcaster's error", err)
	}
}

func mustEncode(t testing.TB, m *mapper.Mapper, e aggregate.Event) es.StoredEvent {
	t.Helper()
	s, err := m.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRegisterPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func(r *mapper.Registry)
	}{
		{"empty topic", func(r *mapper.Registry) { mapper.Register[CustomerRegistered](r, "") }},
		{"empty alias", func(r *mapper.Registry) { mapper.Register[CustomerRegistered](r, "x", mapper.Alias("")) }},
		{"duplicate topic", func(r *mapper.Registry) { mapper.Register[CustomerRegistered](r, topicDeposited) }},
		{"alias taken", func(r *mapper.Registry) { mapper.Register[CustomerRegistered](r, "x", mapper.Alias("bank.Deposited")) }},
		{"alias equals topic", func(r *mapper.Registry) { mapper.Register[CustomerRegistered](r, "x", mapper.Alias("x")) }},
		{"type twice", func(r *mapper.Registry) { mapper.Register[MoneyDeposited](r, "other") }},
		{"pointer type", func(r *mapper.Registry) { mapper.Register[*CustomerRegistered](r, "x") }},
		{"not a struct", func(r *mapper.Registry) { mapper.Register[string](r, "x") }},
		{"schema version 0", func(r *mapper.Registry) { mapper.Register[CustomerRegistered](r, "x", mapper.SchemaVersion(0)) }},
		{"upcaster for unknown topic", func(r *mapper.Registry) { r.Upcaster("nope", 1, splitName) }},
		{"upcaster beyond version", func(r *mapper.Registry) { r.Upcaster(topicDeposited, 1, splitName) }},
		{"upcaster from 0", func(r *mapper.Registry) {
			mapper.Register[CustomerRegistered](r, "x", mapper.SchemaVersion(3))
			r.Upcaster("x", 0, splitName)
		}},
		{"upcaster twice", func(r *mapper.Registry) {
			mapper.Register[CustomerRegistered](r, "x", mapper.SchemaVersion(3))
			r.Upcaster("x", 1, splitName)
			r.Upcaster("x", 1, splitName)
		}},
		{"nil upcaster", func(r *mapper.Registry) {
			mapper.Register[CustomerRegistered](r, "x", mapper.SchemaVersion(3))
			r.Upcaster("x", 1, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry()
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
				// A failed Register leaves no trace, and the registry keeps working.
				if _, err := r.Topic(CustomerRegistered{}); err == nil && !strings.HasPrefix(tt.name, "upcaster") && tt.name != "nil upcaster" {
					t.Error("failed registration left a trace")
				}
				if topic, err := r.Topic(MoneyDeposited{}); err != nil || topic != topicDeposited {
					t.Errorf("after the panic: Topic = %q, %v", topic, err)
				}
			}()
			tt.f(r)
		})
	}
	// An upcaster may be registered under an alias.
	r := mapper.NewRegistry()
	mapper.Register[CustomerRegistered](r, "new", mapper.Alias("old"), mapper.SchemaVersion(2))
	r.Upcaster("old", 1, splitName)
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		reg  *mapper.Registry
		opts []mapper.Option
		want string
	}{
		{"nil registry", nil, nil, "nil registry"},
		{"compression quality above 11", newRegistry(), []mapper.Option{mapper.WithCompression(12)}, "WithCompression(12)"},
		{"compression quality below 0", newRegistry(), []mapper.Option{mapper.WithCompression(-1)}, "WithCompression(-1)"},
		{"negative minimum size", newRegistry(), []mapper.Option{mapper.WithCompressionMinSize(-1)}, "WithCompressionMinSize(-1)"},
		{"nil cipher", newRegistry(), []mapper.Option{mapper.WithCipher(nil)}, "WithCipher(nil)"},
		{"nil cipher pointer", newRegistry(), []mapper.Option{mapper.WithCipher((*cipher.AESGCM)(nil))}, "WithCipher((*cipher.AESGCM)(nil))"},
		{"nil codec", newRegistry(), []mapper.Option{mapper.WithCodec(nil)}, "WithCodec(nil)"},
		{"nil codec pointer", newRegistry(), []mapper.Option{mapper.WithCodec((*faultyCodec)(nil))}, "WithCodec((*mapper_test.faultyCodec)(nil))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mapper.New(tt.reg, tt.opts...)
			if err == nil || m != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want nil and an error naming %q", m, err, tt.want)
			}
		})
	}
	// Nil options are skipped.
	if _, err := mapper.New(newRegistry(), nil, mapper.WithCompression(mapper.DefaultCompressionQuality), nil); err != nil {
		t.Fatalf("New with nil options: %v", err)
	}
}

// stateFor builds stored state by hand, following the format documented on Mapper, so that the tests
// can present well-framed state with bad content.
func stateFor(t *testing.T, c *cipher.AESGCM, topic string, schema int, payload []byte) []byte {
	t.Helper()
	return frame(c, topic, 7, false, uint64(schema), 0, payload)
}

// depositDecoders returns two functions that decode a payload, framed by stateFor as version 7 of
// testID's deposit: one with a mapper without a cipher, one with a mapper and state encrypted.
func depositDecoders(t *testing.T) []func(payload string) (aggregate.Event, error) {
	t.Helper()
	var decoders []func(string) (aggregate.Event, error)
	for _, c := range []*cipher.AESGCM{nil, mustCipher(t, testKey)} {
		m := newMapper(t, newRegistry())
		if c != nil {
			m = newMapper(t, newRegistry(), mapper.WithCipher(c))
		}
		decoders = append(decoders, func(payload string) (aggregate.Event, error) {
			return m.Decode(es.StoredEvent{OriginatorID: testID, OriginatorVersion: 7, Topic: topicDeposited,
				State: stateFor(t, c, topicDeposited, 1, []byte(payload))})
		})
	}
	return decoders
}

// frame builds the stored state of payload for event testID at version: the header (with the
// compressed flag and the uncompressed length rawLen when compressed), then the payload encrypted with
// c or followed by the CRC-32C when c is nil.
func frame(c *cipher.AESGCM, topic string, version int64, compressed bool, schema, rawLen uint64, payload []byte) []byte {
	flags := byte(0x04)
	if c != nil {
		flags = 0x02
	}
	if compressed {
		flags |= 0x01
	}
	hdr := binary.AppendUvarint([]byte{1, flags}, schema)
	if compressed {
		hdr = binary.AppendUvarint(hdr, rawLen)
	}
	ctx := append(bytes.Clone(testID[:]), binary.BigEndian.AppendUint64(nil, uint64(version))...)
	ctx = append(append(ctx, hdr...), topic...)
	if c != nil {
		ct, err := c.Encrypt(payload, ctx)
		if err != nil {
			panic(err)
		}
		return append(hdr, ct...)
	}
	sum := crc32.Checksum(append(ctx, payload...), crc32.MakeTable(crc32.Castagnoli))
	return binary.BigEndian.AppendUint32(append(hdr, payload...), sum)
}

// The hand-made state of a valid payload decodes: the documented format is the real one. Fields between
// "t" and "d" that the decoder does not know are skipped when their values are strings, so that a later
// release can add one.
func TestDocumentedFormat(t *testing.T) {
	payloads := map[string]string{
		`{"t":"2026-03-14T15:09:26.535897932Z","d":{"amount":5,"currency":"EUR"}}`:                                "",
		`{"t":"2026-03-14T15:09:26.535897932Z","a":"bank.Account","d":{"amount":5,"currency":"EUR"}}`:             "bank.Account",
		`{"t":"2026-03-14T15:09:26.535897932Z","a":"b\u0061nk.\"A\"","d":{"amount":5,"currency":"EUR"}}`:          `bank."A"`,
		`{"t":"2026-03-14T15:09:26.535897932Z","k":"key-7","a":"bank.Account","d":{"amount":5,"currency":"EUR"}}`: "bank.Account",
		`{"t":"2026-03-14T15:09:26.535897932Z","z":"a \"quoted\" \\ value","d":{"amount":5,"currency":"EUR"}}`:    "",
	}
	for _, decode := range depositDecoders(t) {
		for payload, topic := range payloads {
			out, err := decode(payload)
			if err != nil {
				t.Fatalf("%s: %v", payload, err)
			}
			if out.Timestamp != testTime || out.Data != (MoneyDeposited{Amount: 5, Currency: "EUR"}) || out.OriginatorTopic != topic {
				t.Errorf("%s: decoded %v %q %+v", payload, out.Timestamp, out.OriginatorTopic, out.Data)
			}
		}
	}
}

func TestDecodeBadContent(t *testing.T) {
	payloads := []struct {
		name    string
		payload string
		is      error
	}{
		{"empty payload", ``, mapper.ErrMalformed},
		{"not an envelope", `{"amount":5}`, mapper.ErrMalformed},
		{"no data", `{"t":"2026-03-14T15:09:26Z"}`, mapper.ErrMalformed},
		{"unterminated timestamp", `{"t":"2026-03-14T15:09:26Z`, mapper.ErrMalformed},
		{"bad timestamp", `{"t":"yesterday","d":{}}`, mapper.ErrMalformed},
		{"envelope not closed", `{"t":"2026-03-14T15:09:26Z","d":{}`, nil},
		{"bad JSON", `{"t":"2026-03-14T15:09:26Z","d":{"amount":}}`, nil},
		{"trailing data", `{"t":"2026-03-14T15:09:26Z","d":{},"x":1}`, nil},
		{"wrong type", `{"t":"2026-03-14T15:09:26Z","d":{"amount":"five"}}`, nil},
		{"bad UUID", `{"t":"2026-03-14T15:09:26Z","d":{"account_id":"nope"}}`, nil},
		{"binary", "\x00\xff\xfe", mapper.ErrMalformed},
		{"field without a string value", `{"t":"2026-03-14T15:09:26Z","a":1,"d":{}}`, mapper.ErrMalformed},
		{"unterminated field", `{"t":"2026-03-14T15:09:26Z","a":"bank.Acc`, mapper.ErrMalformed},
		{"field without data", `{"t":"2026-03-14T15:09:26Z","a":"bank.Account"}`, mapper.ErrMalformed},
		{"bad escape in the topic", `{"t":"2026-03-14T15:09:26Z","a":"\q","d":{}}`, mapper.ErrMalformed},
		{"empty key", `{"t":"2026-03-14T15:09:26Z","":"x","d":{}}`, mapper.ErrMalformed},
	}
	for _, decode := range depositDecoders(t) {
		for _, p := range payloads {
			_, err := decode(p.payload)
			mustNameEvent(t, err, topicDeposited, testID, 7)
			if p.is != nil && !errors.Is(err, p.is) {
				t.Errorf("%s: err = %v, want %v", p.name, err, p.is)
			}
		}
	}

	// The upcasting path checks the same and more.
	r := mapper.NewRegistry()
	mapper.Register[CustomerRegistered](r, topicCustomer, mapper.SchemaVersion(2))
	r.Upcaster(topicCustomer, 1, func(obj map[string]any) error { obj["given_name"] = obj["name"]; return nil })
	m := newMapper(t, r)
	for _, d := range []string{`null`, `[]`, `"text"`, `{"name":}`, `{} {}`, `{"name":"x"} x`, `{"ref":1e400}`, `{"ref":"x"}`} {
		_, err := m.Decode(es.StoredEvent{OriginatorID: testID, OriginatorVersion: 7, Topic: topicCustomer,
			State: stateFor(t, nil, topicCustomer, 1, []byte(`{"t":"2026-03-14T15:09:26Z","d":`+d+`}`))})
		mustNameEvent(t, err, topicCustomer, testID, 7)
	}
}

func TestDecodeBadState(t *testing.T) {
	for _, s := range settings() {
		t.Run(s.name, func(t *testing.T) {
			m := newMapper(t, newRegistry(), s.opts(t)...)
			for _, data := range []any{deposit(), order()} {
				good := mustEncode(t, m, event(data))
				decodeFails := func(what string, st es.StoredEvent) {
					t.Helper()
					_, err := m.Decode(st)
					if err == nil {
						t.Fatalf("%T, %s: no error", data, what)
					}
					mustNameEvent(t, err, st.Topic, st.OriginatorID, st.OriginatorVersion)
				}
				for i := range good.State {
					for _, bit := range []byte{0x01, 0x80, 0xff} {
						bad := good
						bad.State = bytes.Clone(good.State)
						bad.State[i] ^= bit
						decodeFails(fmt.Sprintf("byte %d xor %#x", i, bit), bad)
					}
				}
				for n := range len(good.State) {
					bad := good
					bad.State = good.State[:n]
					decodeFails(fmt.Sprintf("truncated to %d bytes", n), bad)
				}
				for _, extra := range []string{"\x00", "}", "junk"} {
					bad := good
					bad.State = append(bytes.Clone(good.State), extra...)
					decodeFails(fmt.Sprintf("appended %q", extra), bad)
				}

				// State moved to another event: the checksum or the GCM tag covers the context.
				moved := good
				moved.OriginatorID = uuid.New()
				decodeFails("other originator", moved)
				moved = good
				moved.OriginatorVersion++
				decodeFails("other version", moved)
				moved = good
				moved.Topic = "bank.Deposited" // an alias: same type, other topic
				if good.Topic == topicDeposited {
					decodeFails("other topic", moved)
				}
				moved = good
				moved.Topic = topicAccount
				decodeFails("other type", moved)

				unknown := good
				unknown.Topic = "bank.Nonexistent"
				_, err := m.Decode(unknown)
				mustNameEvent(t, err, "bank.Nonexistent", testID, 7)
				if !errors.Is(err, mapper.ErrUnknownTopic) {
					t.Errorf("unknown topic: err = %v", err)
				}
				for _, state := range [][]byte{nil, {}, {1}, {1, 4}} {
					_, err := m.Decode(es.StoredEvent{OriginatorID: testID, OriginatorVersion: 7, Topic: topicOrder, State: state})
					mustNameEvent(t, err, topicOrder, testID, 7)
					if !errors.Is(err, mapper.ErrMalformed) {
						t.Errorf("state %q: err = %v, want ErrMalformed", state, err)
					}
				}
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	for _, name := range []string{"aesgcm", "brotli+aesgcm"} {
		stored := mustEncode(t, mustMapper(t, name), event(order()))
		key, err := cipher.GenerateKey(256)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newMapper(t, newRegistry(), mapper.WithCipher(mustCipher(t, key))).Decode(stored)
		mustNameEvent(t, err, topicOrder, testID, 7)
		if !errors.Is(err, cipher.ErrDecrypt) {
			t.Errorf("%s: err = %v, want cipher.ErrDecrypt", name, err)
		}
	}
}

// A decompression bomb in an unencrypted event cannot make the reader allocate more than the header
// declares, and a header that lies about the length is an error.
func TestDecompressedLengthMustMatch(t *testing.T) {
	stored := mustEncode(t, mustMapper(t, "brotli"), event(order()))
	// Rewrite the uncompressed length (the 4th header byte on, a uvarint) and fix up the checksum as a
	// careless writer would, to reach the length check behind it.
	hdrEnd := 3
	rawLen, n := binary.Uvarint(stored.State[hdrEnd:])
	payload := stored.State[hdrEnd+n : len(stored.State)-4]
	for _, claimed := range []uint64{0, rawLen - 1, rawLen + 1, 1 << 30} {
		hdr := binary.AppendUvarint([]byte{1, 0x05, 1}, claimed)
		ctx := append(testID[:], binary.BigEndian.AppendUint64(nil, 7)...)
		ctx = append(append(ctx, hdr...), topicOrder...)
		sum := crc32.Checksum(append(ctx, payload...), crc32.MakeTable(crc32.Castagnoli))
		bad := stored
		bad.State = binary.BigEndian.AppendUint32(append(hdr, payload...), sum)
		_, err := mustMapper(t, "plain").Decode(bad)
		mustNameEvent(t, err, topicOrder, testID, 7)
		if !errors.Is(err, mapper.ErrMalformed) {
			t.Errorf("claimed length %d: err = %v", claimed, err)
		}
	}
}

// Registration may go on while other goroutines encode and decode.
func TestConcurrentUse(t *testing.T) {
	r := newRegistry()
	m := newMapper(t, r, mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithCipher(mustCipher(t, testKey)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		mapper.Register[CustomerRegistered](r, topicCustomer, mapper.SchemaVersion(2))
		r.Upcaster(topicCustomer, 1, splitName)
	}()
	var errs = make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				e := event([]any{deposit(), order(), account()}[(g+i)%3])
				e.OriginatorVersion = int64(i)
				s, err := m.Encode(e)
				if err == nil {
					var out aggregate.Event
					out, err = m.Decode(s)
					if err == nil && !reflect.DeepEqual(out.Data, e.Data) {
						err = fmt.Errorf("round trip changed %T", e.Data)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	<-done
}

// basicCipher is a Cipher with only the two methods of the interface, as a third party's might be.
type basicCipher struct{ c *cipher.AESGCM }

func (b basicCipher) Encrypt(p, ad []byte) ([]byte, error) { return b.c.Encrypt(p, ad) }
func (b basicCipher) Decrypt(c, ad []byte) ([]byte, error) { return b.c.Decrypt(c, ad) }

// A Cipher without the append methods of *cipher.AESGCM works the same, and the states agree.
func TestBasicCipher(t *testing.T) {
	c := mustCipher(t, testKey)
	basic := newMapper(t, newRegistry(), mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithCipher(basicCipher{c}))
	fast := newMapper(t, newRegistry(), mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithCipher(c))
	for _, data := range []any{deposit(), order(), account()} {
		for _, pair := range [][2]*mapper.Mapper{{basic, fast}, {fast, basic}, {basic, basic}} {
			stored := mustEncode(t, pair[0], event(data))
			out, err := pair[1].Decode(stored)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out.Data, data) {
				t.Errorf("Data = %+v", out.Data)
			}
			stored.OriginatorVersion++
			_, err = pair[1].Decode(stored)
			mustNameEvent(t, err, stored.Topic, testID, 8)
			if !errors.Is(err, cipher.ErrDecrypt) {
				t.Errorf("moved: err = %v", err)
			}
		}
	}
}

// The messages, for the record: go test -run ErrorMessages -v.
func TestErrorMessages(t *testing.T) {
	m := mustMapper(t, "aesgcm")
	stored := mustEncode(t, m, event(deposit()))
	bad := stored
	bad.OriginatorVersion = 8
	_, err := m.Decode(bad)
	t.Log(err)
	_, err = mustMapper(t, "plain").Decode(stored)
	t.Log(err)
	stored = mustEncode(t, mustMapper(t, "plain"), event(deposit()))
	stored.State[len(stored.State)/2] ^= 1
	_, err = mustMapper(t, "plain").Decode(stored)
	t.Log(err)
	_, err = m.Encode(event(struct{}{}))
	t.Log(err)
	_, err = newMapper(t, newRegistry()).Decode(es.StoredEvent{OriginatorID: testID, OriginatorVersion: 7, Topic: topicDeposited,
		State: stateFor(t, nil, topicDeposited, 1, []byte(`{"t":"2026-03-14T15:09:26Z","d":{"amount":"five"}}`))})
	t.Log(err)
}

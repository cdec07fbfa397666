package mapper_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// Events written under key 1, then key 2 after a rotation, all decode; without key 1 the old ones fail
// with an error naming key 1.
func TestKeyRotation(t *testing.T) {
	ring, err := cipher.ParseKeyRing("1:" + testKey)
	if err != nil {
		t.Fatal(err)
	}
	m := newMapper(t, newRegistry(), mapper.WithKeyRing(ring))
	var stored []es.StoredEvent
	for v := int64(1); v <= 4; v++ {
		if v == 3 {
			k2, _ := cipher.ParseKey(testKey2)
			if err := ring.Add("2", k2); err != nil {
				t.Fatal(err)
			}
		}
		e := event(deposit())
		e.OriginatorVersion = v
		stored = append(stored, mustEncode(t, m, e))
	}
	for i, s := range stored {
		info, err := mapper.Inspect(s)
		want := mapper.StateInfo{Format: 2, SchemaVersion: 1, Encrypted: true, KeyID: []string{"1", "1", "2", "2"}[i]}
		if err != nil || info != want {
			t.Fatalf("Inspect v%d = %+v %v, want %+v", i+1, info, err, want)
		}
		if _, err := m.Decode(s); err != nil {
			t.Fatal(err)
		}
	}

	retired, err := cipher.ParseKeyRing("2:" + testKey2)
	if err != nil {
		t.Fatal(err)
	}
	later := newMapper(t, newRegistry(), mapper.WithKeyRing(retired))
	for i, s := range stored {
		_, err := later.Decode(s)
		if i >= 2 {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		mustNameEvent(t, err, topicDeposited, testID, s.OriginatorVersion)
		if !errors.Is(err, cipher.ErrUnknownKey) || !strings.Contains(err.Error(), `no key "1"`) {
			t.Fatalf("v%d without key 1: %v, want cipher.ErrUnknownKey naming key \"1\"", i+1, err)
		}
		mustNotShowKeys(t, err.Error())
	}
}

// What WithCipher wrote (format 1, no key ID) is read by a ring holding its key, under any ID.
func TestKeyRingReadsFormat1(t *testing.T) {
	stored := mustEncode(t, mustMapper(t, "brotli+aesgcm"), event(order()))
	if info, err := mapper.Inspect(stored); err != nil || info.Format != 1 || info.KeyID != "" {
		t.Fatalf("Inspect = %+v %v", info, err)
	}
	for _, text := range []string{"a:" + testKey, "new:" + testKey2 + ",old:" + testKey, "old:" + testKey + ",new:" + testKey2} {
		ring, err := cipher.ParseKeyRing(text)
		if err != nil {
			t.Fatal(err)
		}
		out, err := newMapper(t, newRegistry(), mapper.WithKeyRing(ring)).Decode(stored)
		if err != nil || !reflect.DeepEqual(out.Data, order()) {
			t.Fatalf("ring %v: %v", ring, err)
		}
	}
	ring, err := cipher.ParseKeyRing("new:" + testKey2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newMapper(t, newRegistry(), mapper.WithKeyRing(ring)).Decode(stored)
	mustNameEvent(t, err, topicOrder, testID, 7)
	if !errors.Is(err, cipher.ErrDecrypt) || !strings.Contains(err.Error(), "format 1") {
		t.Fatalf("ring without the key: %v", err)
	}
}

// The format 2 header as documented on Mapper: format, flags, schema, raw length, key field.
func TestDocumentedFormat2(t *testing.T) {
	payload := []byte(`{"t":"2026-03-14T15:09:26.535897932Z","d":{"amount":5,"currency":"EUR"}}`)
	want := MoneyDeposited{Amount: 5, Currency: "EUR"}
	seal := func(c *cipher.AESGCM, hdr []byte, id uuid.UUID, topic string) []byte {
		ctx := append(bytes.Clone(id[:]), binary.BigEndian.AppendUint64(nil, 7)...)
		ctx = append(append(ctx, hdr...), topic...)
		ct, err := c.Encrypt(payload, ctx)
		if err != nil {
			t.Fatal(err)
		}
		return append(bytes.Clone(hdr), ct...)
	}

	// A ring key's ID.
	ring := testRing(t)
	k2, _ := ring.Key("k2")
	state := seal(k2, []byte{2, 0x02, 1, 2, 'k', '2'}, testID, topicDeposited)
	out, err := newMapper(t, newRegistry(), mapper.WithKeyRing(ring)).Decode(es.StoredEvent{
		OriginatorID: testID, OriginatorVersion: 7, Topic: topicDeposited, State: state})
	if err != nil || out.Data != want {
		t.Fatalf("ring key: %+v %v", out.Data, err)
	}

	// A subject's data key: the originator (an empty key field) and a named subject.
	keys := testKeys(t)
	for _, subject := range []string{"", "customer-42"} {
		name := subject
		if name == "" {
			name = testID.String()
		}
		dk, err := keys.GetOrCreate(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		hdr := append([]byte{2, 0x0a, 1, byte(len(subject))}, subject...)
		s := es.StoredEvent{OriginatorID: testID, OriginatorVersion: 7, Topic: topicDeposited, State: seal(dk, hdr, testID, topicDeposited)}
		out, err := newMapper(t, newRegistry(), mapper.WithDataKeys(keys)).Decode(s)
		if err != nil || out.Data != want {
			t.Fatalf("subject %q: %+v %v", subject, out.Data, err)
		}
		info, err := mapper.Inspect(s)
		if err != nil || info.Subject != name || info.KeyID != "" || !info.Encrypted {
			t.Fatalf("Inspect = %+v %v", info, err)
		}
	}
}

// The mapper writes the header it documents, with the shortest key field.
func TestFormat2Header(t *testing.T) {
	keyring := mustEncode(t, mustMapper(t, "keyring"), event(deposit()))
	if want := []byte{2, 0x02, 1, 2, 'k', '2'}; !bytes.HasPrefix(keyring.State, want) {
		t.Errorf("key ring header % x, want % x", keyring.State[:6], want)
	}
	own := mustEncode(t, mustMapper(t, "datakeys"), event(deposit()))
	if want := []byte{2, 0x0a, 1, 0}; !bytes.HasPrefix(own.State, want) {
		t.Errorf("originator subject header % x, want % x", own.State[:4], want)
	}
	named := mustEncode(t, mustMapper(t, "datakeys"), event(CustomerNoted{Customer: "c-1", Note: "n"}))
	if want := []byte{2, 0x0a, 1, 3, 'c', '-', '1'}; !bytes.HasPrefix(named.State, want) {
		t.Errorf("named subject header % x, want % x", named.State[:7], want)
	}
	// A subject that is the originator's ID in text is stored as the originator.
	self := mustEncode(t, mustMapper(t, "datakeys"), event(CustomerNoted{Customer: testID.String()}))
	if want := []byte{2, 0x0a, 1, 0}; !bytes.HasPrefix(self.State, want) {
		t.Errorf("originator named as subject: header % x, want % x", self.State[:4], want)
	}
	big := mustEncode(t, mustMapper(t, "brotli+datakeys"), event(order()))
	if big.State[0] != 2 || big.State[1] != 0x0b {
		t.Errorf("compressed: header % x", big.State[:4])
	}
}

// The key ID and the subject in the header are authenticated: changed, the state fails to decode even
// when the key they name would decrypt it.
func TestHeaderKeyFieldIsAuthenticated(t *testing.T) {
	// Two ring IDs with the same key: only the header tells them apart.
	ring, err := cipher.ParseKeyRing("k1:" + testKey + ",k2:" + testKey)
	if err != nil {
		t.Fatal(err)
	}
	m := newMapper(t, newRegistry(), mapper.WithKeyRing(ring))
	s := mustEncode(t, m, event(deposit()))
	s.State[5] = '1' // k2 → k1
	_, err = m.Decode(s)
	if !errors.Is(err, cipher.ErrDecrypt) {
		t.Fatalf("key ID changed: %v", err)
	}

	// A named subject swapped for another subject with the same data key cannot be built (each subject
	// has its own key); swapping to the originator must fail too.
	keys := testKeys(t)
	dm := newMapper(t, newRegistry(), mapper.WithDataKeys(keys))
	named := mustEncode(t, dm, event(CustomerNoted{Customer: "c-2"}))
	if _, err := keys.GetOrCreate(context.Background(), "c-3"); err != nil {
		t.Fatal(err)
	}
	named.State[6] = '3'
	if _, err := dm.Decode(named); !errors.Is(err, cipher.ErrDecrypt) {
		t.Fatalf("subject changed: %v", err)
	}
}

// Per-subject keys: a subject's events and snapshots become unreadable when it is forgotten, and only
// those.
func TestForgetSubject(t *testing.T) {
	ctx := context.Background()
	keys := testKeys(t)
	m := newMapper(t, newRegistry(), mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithDataKeys(keys))
	ada, bob := "customer-ada-"+uuid.NewString(), "customer-bob-"+uuid.NewString()
	adaAccount, bobAccount := uuid.New(), uuid.New()
	var adas, bobs []es.StoredEvent
	for v := int64(1); v <= 3; v++ {
		adas = append(adas, mustEncode(t, m, aggregate.Event{OriginatorID: adaAccount, OriginatorVersion: v, Data: CustomerNoted{Customer: ada, Note: "x"}}))
		bobs = append(bobs, mustEncode(t, m, aggregate.Event{OriginatorID: bobAccount, OriginatorVersion: v, Data: CustomerNoted{Customer: bob, Note: "y"}}))
	}
	// Snapshots of the accounts, whose subject is the account itself.
	snapAda := mustEncode(t, m, aggregate.Event{OriginatorID: adaAccount, OriginatorVersion: 3, Data: account()})
	snapBob := mustEncode(t, m, aggregate.Event{OriginatorID: bobAccount, OriginatorVersion: 3, Data: account()})
	if m.Forgets() != 0 {
		t.Fatalf("Forgets = %d", m.Forgets())
	}
	for _, s := range append(adas, snapAda) {
		if _, err := m.Decode(s); err != nil { // cached now
			t.Fatal(err)
		}
	}

	for _, subject := range []string{ada, adaAccount.String()} {
		if err := keys.Forget(ctx, subject); err != nil {
			t.Fatal(err)
		}
	}
	if m.Forgets() != 2 {
		t.Fatalf("Forgets = %d, want 2", m.Forgets())
	}
	for _, s := range append(adas, snapAda) {
		_, err := m.DecodeContext(ctx, s)
		mustNameEvent(t, err, s.Topic, adaAccount, s.OriginatorVersion)
		var fe *datakey.ForgottenError
		if !errors.Is(err, datakey.ErrForgotten) || !errors.As(err, &fe) {
			t.Fatalf("%s v%d: %v, want datakey.ErrForgotten", s.Topic, s.OriginatorVersion, err)
		}
		if want := map[string]string{topicNoted: ada, topicAccount: adaAccount.String()}[s.Topic]; fe.Subject != want {
			t.Fatalf("forgotten subject %q, want %q", fe.Subject, want)
		}
		if _, err := m.DecodeRaw(ctx, s); !errors.Is(err, datakey.ErrForgotten) {
			t.Fatalf("DecodeRaw: %v", err)
		}
	}
	for _, s := range append(bobs, snapBob) {
		if _, err := m.DecodeContext(ctx, s); err != nil {
			t.Fatalf("bob: %v", err)
		}
	}
	_, err := m.EncodeContext(ctx, aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 1, Data: CustomerNoted{Customer: ada}})
	if !errors.Is(err, datakey.ErrForgotten) || !strings.Contains(err.Error(), ada) {
		t.Fatalf("encode for a forgotten subject: %v", err)
	}
}

type pointerSubject struct{ C string }

func (p *pointerSubject) DataSubject() string { return p.C }

type panickySubject struct{ C string }

func (p panickySubject) DataSubject() string { panic("no subject") }

type emptySubject struct{}

func (emptySubject) DataSubject() string { return "" }

// Mistakes in naming subjects are errors of Encode, never panics nor a silent fallback.
func TestSubjectMistakes(t *testing.T) {
	r := newRegistry()
	mapper.Register[pointerSubject](r, "pointer")
	mapper.Register[panickySubject](r, "panicky")
	mapper.Register[emptySubject](r, "empty")
	m := newMapper(t, r, mapper.WithDataKeys(testKeys(t)))
	for _, tt := range []struct {
		data any
		want string
	}{
		{pointerSubject{C: "c"}, "pointer receiver"},
		{panickySubject{C: "c"}, "panicked: no subject"},
		{emptySubject{}, "invalid subject"},
		{CustomerNoted{Customer: "a\x00b"}, "control character"},
	} {
		_, err := m.Encode(event(tt.data))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%T: %v, want an error naming %q", tt.data, err, tt.want)
		}
	}
	// A pointer is refused like any pointer event: decoding gives values.
	if _, err := m.Encode(event(&pointerSubject{C: "c-9"})); !errors.Is(err, aggregate.ErrInvalidEvent) {
		t.Fatalf("encoding a pointer to a subject namer: %v, want aggregate.ErrInvalidEvent", err)
	}
}

// Each combination of the key options, and nil or empty values, is refused by New.
func TestNewRefusesKeyOptions(t *testing.T) {
	c := mapper.WithCipher(mustCipher(t, testKey))
	ring := mapper.WithKeyRing(testRing(t))
	keys := mapper.WithDataKeys(testKeys(t))
	for _, tt := range []struct {
		name string
		opts []mapper.Option
		want string
	}{
		{"nil ring", []mapper.Option{mapper.WithKeyRing(nil)}, "WithKeyRing(nil)"},
		{"empty ring", []mapper.Option{mapper.WithKeyRing(cipher.NewKeyRing())}, "key ring is empty"},
		{"nil keys", []mapper.Option{mapper.WithDataKeys(nil)}, "WithDataKeys(nil)"},
		{"cipher and ring", []mapper.Option{c, ring}, "WithCipher and"},
		{"cipher and keys", []mapper.Option{keys, c}, "WithCipher and"},
	} {
		m, err := mapper.New(newRegistry(), tt.opts...)
		if err == nil || m != nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, %v; want an error naming %q", tt.name, m, err, tt.want)
		}
	}
}

// DecodeRaw shows the stored JSON without the Go types: no registration needed, no upcasting.
func TestDecodeRaw(t *testing.T) {
	ctx := context.Background()
	v1 := mapper.NewRegistry()
	mapper.Register[CustomerRegisteredV1](v1, topicCustomer)
	for _, s := range settings() {
		w := newMapper(t, v1, s.opts(t)...)
		stored := mustEncode(t, w, event(CustomerRegisteredV1{Name: "Ada Lovelace", Ref: 1 << 60}))
		reader := newMapper(t, mapper.NewRegistry(), s.opts(t)...) // knows no types
		raw, err := reader.DecodeRaw(ctx, stored)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if raw.Timestamp != testTime || raw.SchemaVersion != 1 || raw.Topic != topicCustomer || raw.OriginatorID != testID ||
			raw.OriginatorVersion != 7 || string(raw.Data) != `{"name":"Ada Lovelace","ref":1152921504606846976}` {
			t.Fatalf("%s: %+v %s", s.name, raw, raw.Data)
		}
		stored.OriginatorVersion = 8
		_, err = reader.DecodeRaw(ctx, stored)
		mustNameEvent(t, err, topicCustomer, testID, 8)
	}
}

// Encoding and decoding with data keys on many goroutines, while other subjects are forgotten (run with
// -race).
func TestDataKeysConcurrentUse(t *testing.T) {
	keys := testKeys(t, datakey.WithCacheSize(4))
	m := newMapper(t, newRegistry(), mapper.WithDataKeys(keys))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			<-start
			for i := range 50 {
				e := event(CustomerNoted{Customer: fmt.Sprintf("keep-%d", (g+i)%9), Note: "n"})
				if err := roundTrip(m, e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		<-start
		for i := range 20 {
			subject := fmt.Sprint("gone-", i)
			if _, err := m.Encode(event(CustomerNoted{Customer: subject})); err != nil {
				t.Error(err)
			}
			if err := keys.Forget(context.Background(), subject); err != nil {
				t.Error(err)
			}
		}
	})
	close(start)
	wg.Wait()
}

// mustNotShowKeys fails if s contains a test key, in base64 or raw.
func mustNotShowKeys(t *testing.T, s string) {
	t.Helper()
	for _, k := range []string{testKey, testKey2} {
		raw, _ := base64.StdEncoding.DecodeString(k)
		if strings.Contains(s, k) || strings.Contains(s, k[:12]) || strings.Contains(s, string(raw[8:24])) {
			t.Fatalf("%q shows key material", s)
		}
	}
}

// notARing wraps data keys with a key ring's keys without being a *cipher.KeyRing, as a key management
// service's Wrapper does.
type notARing struct{ *cipher.KeyRing }

// Data keys wrapped by a key management service encrypt and decrypt as those of a key ring; state that
// a key ring encrypted without data keys cannot be read with them alone, and the error says why; with
// the ring given too (WithKeyRing), it is read, and what is encoded goes on using data keys.
func TestDataKeysWrappedByAService(t *testing.T) {
	ctx := context.Background()
	keys, err := datakey.New(notARing{testRing(t)}, datakey.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	m := newMapper(t, newRegistry(), mapper.WithDataKeys(keys))
	e := aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 1, Data: CustomerNoted{Customer: "c-1", Note: "x"}}
	if got, err := m.DecodeContext(ctx, mustEncode(t, m, e)); err != nil || got.Data.(CustomerNoted).Note != "x" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	old := mustEncode(t, newMapper(t, newRegistry(), mapper.WithKeyRing(testRing(t))), e)
	_, err = m.DecodeContext(ctx, old)
	if !errors.Is(err, mapper.ErrNoCipher) || !strings.Contains(err.Error(), "not wrapped by a key ring") {
		t.Fatalf("state of WithKeyRing: %v, want ErrNoCipher saying the data keys have no ring", err)
	}
	legacy := mustEncode(t, newMapper(t, newRegistry(), mapper.WithCipher(mustCipher(t, testKey))), e)

	both := newMapper(t, newRegistry(), mapper.WithKeyRing(testRing(t)), mapper.WithDataKeys(keys))
	for name, s := range map[string]es.StoredEvent{"WithKeyRing": old, "WithCipher": legacy} {
		if got, err := both.DecodeContext(ctx, s); err != nil || got.Data.(CustomerNoted).Note != "x" {
			t.Errorf("state of %s, read with the ring beside data keys: %+v %v", name, got, err)
		}
	}
	info, err := mapper.Inspect(mustEncode(t, both, e))
	if err != nil || info.Subject != "c-1" || info.KeyID != "" || !info.Encrypted {
		t.Fatalf("encoded beside a ring: %+v %v; want the data key of subject c-1, no ring key", info, err)
	}
}

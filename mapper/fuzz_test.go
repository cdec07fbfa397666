package mapper_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// FuzzDecode feeds arbitrary stored events to mappers with and without a cipher. Decode must never
// panic, must fail only with a *DecodeError naming the input, and must return values of registered
// types when it succeeds. The seeds (valid events in every setting, and junk) run with every go test;
// go test -fuzz=FuzzDecode ./mapper explores further.
func FuzzDecode(f *testing.F) {
	topics := []string{topicDeposited, topicOrder, topicAccount, "bank.Deposited", topicCustomer, topicNoted, "unknown"}
	for _, s := range settings() {
		m := newMapper(f, fuzzRegistry(), s.opts(f)...)
		for _, data := range []any{deposit(), order(), account(), CustomerRegisteredV1{Name: "Ada Lovelace", Ref: 1 << 60}} {
			e := event(data)
			if _, ok := data.(CustomerRegisteredV1); ok {
				// Stored by the first release of the program: exercise the upcasters.
				r := mapper.NewRegistry()
				mapper.Register[CustomerRegisteredV1](r, topicCustomer)
				m := newMapper(f, r, s.opts(f)...)
				stored, err := m.Encode(e)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(stored.State, stored.Topic, stored.OriginatorVersion)
				continue
			}
			stored, err := m.Encode(e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(stored.State, stored.Topic, stored.OriginatorVersion)
			f.Add(stored.State[:len(stored.State)/2], stored.Topic, stored.OriginatorVersion)
			f.Add(stored.State, "unknown", stored.OriginatorVersion)
		}
	}
	for _, junk := range []string{"", "\x01", "\x01\x04", "\x01\x04\x01", "\x01\x05\x01\xff\xff\xff\xff\x0f", "\x01\x02\x01",
		"\x02\x04\x01", "\x01\x04\x00", "\x01\x06\x01", "\x01\x04\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
		`{"t":"2026-03-14T15:09:26Z","d":{}}`,
		// Format 2: a key ID or a subject, missing, too long, invalid, or pointing past the end.
		"\x02\x02\x01", "\x02\x02\x01\x00", "\x02\x02\x01\x02k2", "\x02\x02\x01\x03old", "\x02\x02\x01\x05k2",
		"\x02\x02\x01\x02k/", "\x02\x02\x01\x18" + strings.Repeat("k", 24), "\x02\x0a\x01\x00", "\x02\x0a\x01\x00" + strings.Repeat("\x00", 40),
		"\x02\x0a\x01\x07subject", "\x02\x0a\x01\x02\x00\x01", "\x02\x0a\x01\xff\x01", "\x02\x0b\x01\xc8\x01\x00",
		"\x02\x08\x01\x00", "\x02\x06\x01\x02k2", "\x02\x12\x01\x02k2", "\x03\x02\x01"} {
		for _, topic := range topics {
			f.Add([]byte(junk), topic, int64(7))
		}
	}

	// Events of a named subject, and of one forgotten after they were written.
	keys := testKeys(f)
	named := newMapper(f, fuzzRegistry(), mapper.WithDataKeys(keys))
	for _, customer := range []string{"customer-7", "customer-forgotten"} {
		for _, e := range []aggregate.Event{event(CustomerNoted{Customer: customer, Note: "prefers e-mail"}), event(order())} {
			if _, ok := e.Data.(OrderPlaced); ok {
				e.OriginatorID = uuid.NewSHA1(uuid.NameSpaceOID, []byte(customer)) // a subject by default
			}
			stored := mustEncode(f, named, e)
			f.Add(stored.State, stored.Topic, stored.OriginatorVersion)
		}
	}
	if err := keys.Forget(context.Background(), "customer-forgotten"); err != nil {
		f.Fatal(err)
	}

	plain := newMapper(f, fuzzRegistry())
	full := newMapper(f, fuzzRegistry(), mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithCipher(mustCipher(f, testKey)))
	ring := newMapper(f, fuzzRegistry(), mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithKeyRing(testRing(f)))
	dataKeys := newMapper(f, fuzzRegistry(), mapper.WithDataKeys(keys))
	f.Fuzz(func(t *testing.T, state []byte, topic string, version int64) {
		for _, m := range []*mapper.Mapper{plain, full, ring, dataKeys} {
			in := es.StoredEvent{OriginatorID: testID, OriginatorVersion: version, Topic: topic, State: state}
			out, err := m.Decode(in)
			if err != nil {
				var de *mapper.DecodeError
				if !errors.As(err, &de) || de.Topic != topic || de.OriginatorID != testID || de.OriginatorVersion != version {
					t.Fatalf("error %T %v does not name the event", err, err)
				}
				continue
			}
			if out.OriginatorID != testID || out.OriginatorVersion != version {
				t.Fatalf("decoded %s v%d", out.OriginatorID, out.OriginatorVersion)
			}
			switch out.Data.(type) {
			case MoneyDeposited, OrderPlaced, AccountState, CustomerRegistered, CustomerNoted:
			default:
				t.Fatalf("decoded Data of type %v", reflect.TypeOf(out.Data))
			}
		}
	})
}

// FuzzDecodePayload reaches behind the checksum: it frames arbitrary payloads (brotli streams when
// compressed, JSON envelopes when not) with a valid header and CRC, as a buggy or hostile writer with
// access to the database could, so that the decompressor, the envelope parser, the upcasters and
// encoding/json all meet junk. The same properties as FuzzDecode must hold.
func FuzzDecodePayload(f *testing.F) {
	var z bytes.Buffer
	for _, data := range []any{deposit(), order(), account()} {
		e := event(data)
		payload, err := json.Marshal(map[string]any{"t": e.Timestamp, "d": data})
		if err != nil {
			f.Fatal(err)
		}
		topic := topicIndex(data)
		f.Add(payload, topic, false, uint64(1), uint64(0))
		z.Reset()
		w := brotli.NewWriterLevel(&z, 1)
		w.Write(payload)
		w.Close()
		f.Add(bytes.Clone(z.Bytes()), topic, true, uint64(1), uint64(len(payload)))
		f.Add(bytes.Clone(z.Bytes()), topic, true, uint64(1), uint64(len(payload)+1))
		f.Add(z.Bytes()[:z.Len()/2], topic, true, uint64(1), uint64(len(payload)))
	}
	v1 := []byte(`{"t":"2026-03-14T15:09:26Z","d":{"name":"Ada Lovelace","ref":12345678901234567890}}`)
	f.Add(v1, uint8(3), false, uint64(1), uint64(0))
	f.Add([]byte(`{"t":"2026-03-14T15:09:26Z","d":{"first":1,"last":null,"ref":1.5e300}}`), uint8(3), false, uint64(2), uint64(0))
	f.Add([]byte(`{"t":"2026-03-14T15:09:26Z","a":"bank.\u0041ccount","x":"\\\"","d":{"amount":5}}`), uint8(0), false, uint64(1), uint64(0))
	f.Add([]byte{}, uint8(3), true, uint64(1), uint64(0))
	f.Add([]byte{0x3b}, uint8(1), true, uint64(1), uint64(0)) // the empty brotli stream

	// Topics are picked by index, so that mutations stay on registered topics.
	payloadTopics := []string{topicDeposited, topicOrder, topicAccount, topicCustomer, "bank.Deposited"}
	m := newMapper(f, fuzzRegistry())
	f.Fuzz(func(t *testing.T, payload []byte, topicIdx uint8, compressed bool, schema, rawLen uint64) {
		topic := payloadTopics[int(topicIdx)%len(payloadTopics)]
		in := es.StoredEvent{OriginatorID: testID, OriginatorVersion: 7, Topic: topic,
			State: frame(nil, topic, 7, compressed, schema, rawLen, payload)}
		out, err := m.Decode(in)
		if err != nil {
			var de *mapper.DecodeError
			if !errors.As(err, &de) || de.Topic != topic || de.OriginatorID != testID || de.OriginatorVersion != 7 {
				t.Fatalf("error %T %v does not name the event", err, err)
			}
			return
		}
		switch out.Data.(type) {
		case MoneyDeposited, OrderPlaced, AccountState, CustomerRegistered:
		default:
			t.Fatalf("decoded Data of type %v", reflect.TypeOf(out.Data))
		}
	})
}

func topicIndex(data any) uint8 {
	switch data.(type) {
	case MoneyDeposited:
		return 0
	case OrderPlaced:
		return 1
	default:
		return 2
	}
}

func fuzzRegistry() *mapper.Registry {
	r := newRegistry()
	mapper.Register[CustomerRegistered](r, topicCustomer, mapper.SchemaVersion(3))
	r.Upcaster(topicCustomer, 1, splitName)
	r.Upcaster(topicCustomer, 2, renameNames)
	return r
}

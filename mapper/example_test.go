package mapper_test

import (
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

type AccountOpened struct {
	Owner    string `json:"owner"`
	Currency string `json:"currency"`
}

// A Mapper encodes events for a recorder and decodes them back into values of the registered types.
func ExampleMapper() {
	r := mapper.NewRegistry()
	mapper.Register[AccountOpened](r, "bank.AccountOpened")

	c, err := cipher.NewFromBase64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=") // from configuration
	if err != nil {
		log.Fatal(err)
	}
	m, err := mapper.New(r, mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithCipher(c))
	if err != nil {
		log.Fatal(err)
	}

	stored, err := m.Encode(aggregate.Event{
		OriginatorID:      uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
		OriginatorVersion: 1,
		Timestamp:         time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC),
		Data:              AccountOpened{Owner: "Ada", Currency: "EUR"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stored.Topic, stored.OriginatorVersion)

	e, err := m.Decode(stored)
	if err != nil {
		log.Fatal(err)
	}
	opened := e.Data.(AccountOpened) // a value, not a pointer
	fmt.Println(opened.Owner, opened.Currency, e.Timestamp.Format(time.RFC3339Nano))
	// Output:
	// bank.AccountOpened 1
	// Ada EUR 2026-03-14T15:09:26.535897932Z
}

type AccountOpenedV1 struct {
	Name string `json:"name"`
}

type AccountOpenedV2 struct {
	Owner    string `json:"owner"`
	Currency string `json:"currency"`
}

// A type renamed its topic and one of its fields. The old topic stays readable as an alias, and an
// upcaster rewrites events stored at schema version 1.
func ExampleRegistry_Upcaster() {
	// What the first release of the program wrote.
	old := mapper.NewRegistry()
	mapper.Register[AccountOpenedV1](old, "AccountOpened")
	writer, err := mapper.New(old)
	if err != nil {
		log.Fatal(err)
	}
	stored, err := writer.Encode(aggregate.Event{
		OriginatorID: uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), OriginatorVersion: 1,
		Timestamp: time.Now(), Data: AccountOpenedV1{Name: "Ada"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// The program today.
	r := mapper.NewRegistry()
	mapper.Register[AccountOpenedV2](r, "bank.AccountOpened", mapper.Alias("AccountOpened"), mapper.SchemaVersion(2))
	r.Upcaster("bank.AccountOpened", 1, func(obj map[string]any) error {
		obj["owner"] = obj["name"]
		delete(obj, "name")
		obj["currency"] = "EUR" // the only currency of release 1
		return nil
	})

	m, err := mapper.New(r)
	if err != nil {
		log.Fatal(err)
	}
	e, err := m.Decode(stored)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", e.Data)
	// Output:
	// {Owner:Ada Currency:EUR}
}

// Decode errors name the stored event and wrap their cause.
func ExampleDecodeError() {
	r := mapper.NewRegistry()
	mapper.Register[AccountOpened](r, "bank.AccountOpened")
	m, err := mapper.New(r)
	if err != nil {
		log.Fatal(err)
	}
	stored, err := m.Encode(aggregate.Event{
		OriginatorID: uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), OriginatorVersion: 3,
		Timestamp: time.Now(), Data: AccountOpened{Owner: "Ada"},
	})
	if err != nil {
		log.Fatal(err)
	}

	stored.Topic = "bank.AccountClosed" // not registered
	_, err = m.Decode(stored)
	fmt.Println(err)
	fmt.Println(errors.Is(err, mapper.ErrUnknownTopic))

	var de *mapper.DecodeError
	if errors.As(err, &de) {
		fmt.Println(de.Topic, de.OriginatorVersion)
	}

	stored.Topic = "bank.AccountOpened"
	stored.State[len(stored.State)/2] ^= 1 // a damaged record
	_, err = m.Decode(stored)
	fmt.Println(strings.Contains(err.Error(), "checksum mismatch"), errors.Is(err, mapper.ErrMalformed))
	// Output:
	// mapper: decode event "bank.AccountClosed" of originator 6ba7b810-9dad-11d1-80b4-00c04fd430c8 at version 3: unknown topic
	// true
	// bank.AccountClosed 3
	// true true
}

// Registry.Topic tells which topic a value is stored under, for example to filter a subscription.
func ExampleRegistry_Topic() {
	r := mapper.NewRegistry()
	mapper.Register[AccountOpened](r, "bank.AccountOpened")
	topic, err := r.Topic(&AccountOpened{})
	fmt.Println(topic, err)
	// Output:
	// bank.AccountOpened <nil>
}

// A Mapper's codec turns event data into JSON. The default, JSONv2, and StdJSON (encoding/json) write
// the same JSON and read each other's, so an application can change between them at any time.
func ExampleWithCodec() {
	r := mapper.NewRegistry()
	mapper.Register[AccountOpened](r, "bank.AccountOpened")
	std, err := mapper.New(r, mapper.WithCodec(mapper.StdJSON{}))
	if err != nil {
		log.Fatal(err)
	}
	def, err := mapper.New(r) // DefaultCodec
	if err != nil {
		log.Fatal(err)
	}

	stored, err := std.Encode(aggregate.Event{
		OriginatorID:      uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
		OriginatorVersion: 1,
		Timestamp:         time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC),
		Data:              AccountOpened{Owner: "Ada <ada@example.org>", Currency: "EUR"},
	})
	if err != nil {
		log.Fatal(err)
	}
	e, err := def.Decode(stored)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Data.(AccountOpened).Owner)
	// Output: Ada <ada@example.org>
}

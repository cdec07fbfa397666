package mapper_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// Keys rotate: the ring's current key encrypts and its ID is stored with the event, so that the
// older keys go on decrypting what they encrypted.
func ExampleWithKeyRing() {
	r := mapper.NewRegistry()
	mapper.Register[AccountOpened](r, "bank.AccountOpened")
	ring, err := cipher.ParseKeyRing("2026-01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=") // from configuration
	if err != nil {
		log.Fatal(err)
	}
	m, err := mapper.New(r, mapper.WithKeyRing(ring))
	if err != nil {
		log.Fatal(err)
	}
	old, _ := m.Encode(aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 1, Data: AccountOpened{Owner: "Ada"}})

	key, _ := cipher.GenerateKey(256)
	next, _ := cipher.ParseKey(key)
	if err := ring.Add("2026-07", next); err != nil { // rotation: new events use the new key
		log.Fatal(err)
	}
	fresh, _ := m.Encode(aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 1, Data: AccountOpened{Owner: "Bob"}})
	a, _ := mapper.Inspect(old)
	b, _ := mapper.Inspect(fresh)
	_, errOld := m.Decode(old)
	_, errNew := m.Decode(fresh)
	fmt.Println(a.KeyID, errOld)
	fmt.Println(b.KeyID, errNew)
	// Output:
	// 2026-01 <nil>
	// 2026-07 <nil>
}

// CustomerNamed is an event about a customer who has several accounts: it names the customer as the
// subject whose data key encrypts it.
type CustomerNamed struct {
	Customer string `json:"customer"`
	Name     string `json:"name"`
}

func (e CustomerNamed) DataSubject() string { return e.Customer }

// Each subject has a data key of its own; forgetting the subject deletes the key, and every event and
// snapshot of the subject becomes unreadable, without rewriting the log.
func ExampleWithDataKeys() {
	ctx := context.Background()
	r := mapper.NewRegistry()
	mapper.Register[CustomerNamed](r, "crm.CustomerNamed")
	ring, err := cipher.ParseKeyRing("1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		log.Fatal(err)
	}
	keys, err := datakey.New(ring, datakey.NewMemoryStore()) // or the SQLite or PostgreSQL key store
	if err != nil {
		log.Fatal(err)
	}
	m, err := mapper.New(r, mapper.WithDataKeys(keys))
	if err != nil {
		log.Fatal(err)
	}
	ada, _ := m.EncodeContext(ctx, aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 1,
		Data: CustomerNamed{Customer: "customer-1", Name: "Ada"}})
	bob, _ := m.EncodeContext(ctx, aggregate.Event{OriginatorID: uuid.New(), OriginatorVersion: 1,
		Data: CustomerNamed{Customer: "customer-2", Name: "Bob"}})

	if err := keys.Forget(ctx, "customer-1"); err != nil {
		log.Fatal(err)
	}
	_, err = m.DecodeContext(ctx, ada)
	fmt.Println(errors.Is(err, datakey.ErrForgotten))
	var fe *datakey.ForgottenError
	if errors.As(err, &fe) {
		fmt.Println("forgotten:", fe.Subject)
	}
	e, err := m.DecodeContext(ctx, bob)
	fmt.Println(e.Data.(CustomerNamed).Name, err)
	// Output:
	// true
	// forgotten: customer-1
	// Bob <nil>
}

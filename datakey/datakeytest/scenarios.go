package datakeytest

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/repository"
)

// The scenarios' domain: customers, whose data is theirs (the default subject: the aggregate), and
// orders, whose events and snapshots name their customer as subject, so that forgetting a customer
// forgets the customer's orders too.
type (
	// Registered starts a customer.
	Registered struct{ Name string }
	// Noted adds a note to a customer.
	Noted struct{ Text string }
	// Customer is an aggregate whose subject is itself.
	Customer struct {
		aggregate.Base
		Name  string
		Notes []string
	}
	// Placed starts an order of a customer.
	Placed struct {
		Customer uuid.UUID
		Item     string
	}
	// Order is an aggregate whose data belongs to its customer.
	Order struct {
		aggregate.Base
		Customer uuid.UUID
		Items    []string
	}
)

// Apply implements aggregate.Root.
func (c *Customer) Apply(e any) {
	switch e := e.(type) {
	case Registered:
		c.Name = e.Name
	case Noted:
		c.Notes = append(c.Notes, e.Text)
	}
}

// Apply implements aggregate.Root.
func (o *Order) Apply(e any) {
	if e, ok := e.(Placed); ok {
		o.Customer = e.Customer
		o.Items = append(o.Items, e.Item)
	}
}

// DataSubject names the customer: the order's events are the customer's data.
func (e Placed) DataSubject() string { return e.Customer.String() }

// DataSubject names the customer for the order's snapshots.
func (o Order) DataSubject() string { return o.Customer.String() }

func registry() *mapper.Registry {
	r := mapper.NewRegistry()
	mapper.Register[Registered](r, "crm.Registered")
	mapper.Register[Noted](r, "crm.Noted")
	mapper.Register[Customer](r, "crm.Customer")
	mapper.Register[Placed](r, "shop.Placed")
	mapper.Register[Order](r, "shop.Order")
	return r
}

// app is an application on a Backend with one mapper configuration.
type app struct {
	t         *testing.T
	b         Backend
	m         *mapper.Mapper
	customers *repository.Repository[Customer, *Customer]
	orders    *repository.Repository[Order, *Order]
}

func newApp(t *testing.T, b Backend, opts ...mapper.Option) *app {
	t.Helper()
	m, err := mapper.New(registry(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	events, snaps := eventstore.New(m, b.Events), eventstore.New(m, b.Snapshots)
	a := &app{t: t, b: b, m: m}
	// Snapshots every 2 events, and caches: forgetting must reach past both.
	if a.customers, err = repository.New[Customer](events, repository.WithSnapshots(snaps, 2), repository.WithCache(100)); err != nil {
		t.Fatal(err)
	}
	if a.orders, err = repository.New[Order](events, repository.WithSnapshots(snaps, 2), repository.WithCache(100)); err != nil {
		t.Fatal(err)
	}
	return a
}

// customer registers a customer with notes, saved one event at a time, so that snapshots are taken.
func (a *app) customer(name string, notes ...string) uuid.UUID {
	a.t.Helper()
	c := &Customer{}
	aggregate.Trigger(c, Registered{Name: name})
	if _, err := a.customers.Save(context.Background(), c); err != nil {
		a.t.Fatal(err)
	}
	a.note(c.ID, notes...)
	return c.ID
}

func (a *app) note(id uuid.UUID, notes ...string) {
	a.t.Helper()
	for _, n := range notes {
		c, err := a.customers.Get(context.Background(), id)
		if err != nil {
			a.t.Fatal(err)
		}
		aggregate.Trigger(c, Noted{Text: n})
		if _, err := a.customers.Save(context.Background(), c); err != nil {
			a.t.Fatal(err)
		}
	}
}

// order places an order of customer with items, one event each.
func (a *app) order(customer uuid.UUID, items ...string) uuid.UUID {
	a.t.Helper()
	o := &Order{}
	for _, item := range items {
		aggregate.Trigger(o, Placed{Customer: customer, Item: item})
	}
	if _, err := a.orders.Save(context.Background(), o); err != nil {
		a.t.Fatal(err)
	}
	if err := a.orders.TakeSnapshot(context.Background(), o.ID, 0); err != nil {
		a.t.Fatal(err)
	}
	return o.ID
}

// decodeAll decodes every event and snapshot of id with m, and returns the first error.
func (a *app) decodeAll(m *mapper.Mapper, id uuid.UUID) error {
	a.t.Helper()
	ctx := context.Background()
	var stored []es.StoredEvent
	for _, r := range []es.AggregateRecorder{a.b.Events, a.b.Snapshots} {
		s, err := r.SelectEvents(ctx, id, es.EventQuery{})
		if err != nil {
			a.t.Fatal(err)
		}
		stored = append(stored, s...)
	}
	if len(stored) == 0 {
		a.t.Fatalf("nothing stored for %s", id)
	}
	for _, s := range stored {
		if _, err := m.DecodeContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// keyIDs returns the key IDs or subjects the headers of id's events name.
func (a *app) keyIDs(id uuid.UUID) []string {
	a.t.Helper()
	stored, err := a.b.Events.SelectEvents(context.Background(), id, es.EventQuery{})
	if err != nil {
		a.t.Fatal(err)
	}
	var ids []string
	for _, s := range stored {
		info, err := mapper.Inspect(s)
		if err != nil {
			a.t.Fatal(err)
		}
		ids = append(ids, info.KeyID+info.Subject)
	}
	return ids
}

// ring returns a key ring of the given IDs, each with a key made from the ID, so that rings made
// apart agree.
func ring(t *testing.T, ids ...string) *cipher.KeyRing {
	t.Helper()
	r := cipher.NewKeyRing()
	for _, id := range ids {
		if err := r.Add(id, keyOf(id)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func keyOf(id string) []byte {
	k := make([]byte, 32)
	copy(k, "datakeytest key "+id)
	return k
}

// ringWrapper is the Wrapper of the scenarios when the Backend gives none: a key ring.
type ringWrapper struct{ *cipher.KeyRing }

func (r ringWrapper) AddKey(id string) error { return r.Add(id, keyOf(id)) }

// wrapper returns a Wrapper of b holding the key-encryption keys ids, the last one current.
func wrapper(t *testing.T, b Backend, ids ...string) Wrapper {
	t.Helper()
	if b.Wrapper != nil {
		return b.Wrapper(t, ids...)
	}
	return ringWrapper{ring(t, ids...)}
}

func newKeys(t *testing.T, w Wrapper, s datakey.Store, opts ...datakey.Option) *datakey.Keys {
	t.Helper()
	var dw datakey.Wrapper = w
	if r, ok := w.(ringWrapper); ok {
		dw = r.KeyRing // as applications give it
	}
	k, err := datakey.New(dw, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRotation writes events under ring key 1, rotates to key 2 and writes more: all decode; with key
// 1 removed, the old ones fail with an error naming key 1.
func TestRotation(t *testing.T, open func(t *testing.T) Backend) {
	b := open(t)
	r := ring(t, "1")
	a := newApp(t, b, mapper.WithKeyRing(r))
	ada := a.customer("Ada", "first")
	if err := r.Add("2", keyOf("2")); err != nil {
		t.Fatal(err)
	}
	a.note(ada, "second")
	bob := a.customer("Bob", "first")

	if got := strings.Join(a.keyIDs(ada), ","); got != "1,1,2" {
		t.Fatalf("key IDs of ada's events: %s, want 1,1,2", got)
	}
	for _, id := range []uuid.UUID{ada, bob} {
		if err := a.decodeAll(a.m, id); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if c, err := a.customers.Get(ctx, ada); err != nil || len(c.Notes) != 2 {
		t.Fatalf("ada after rotation: %+v %v", c, err)
	}

	// Key 1 retired: the events it encrypted cannot be read, and the error says which key is missing.
	later := newApp(t, b, mapper.WithKeyRing(ring(t, "2")))
	err := later.decodeAll(later.m, ada)
	if !errors.Is(err, cipher.ErrUnknownKey) || !strings.Contains(err.Error(), `"1"`) {
		t.Fatalf("ada's events without key 1: %v, want cipher.ErrUnknownKey naming key \"1\"", err)
	}
	noKeyMaterial(t, err)
	if err := later.decodeAll(later.m, bob); err != nil {
		t.Fatalf("bob's events, all under key 2: %v", err)
	}
}

// TestRewrap gives subjects data keys wrapped by key 1, rotates to key 2, and rewraps: then key 1 can
// be removed, and every event and snapshot still decodes, none of them rewritten.
func TestRewrap(t *testing.T, open func(t *testing.T) Backend) {
	b := open(t)
	ctx := context.Background()
	r := wrapper(t, b, "1")
	a := newApp(t, b, mapper.WithDataKeys(newKeys(t, r, b.Store)))
	ada := a.customer("Ada", "a", "b", "c")
	bob := a.customer("Bob", "a")
	order := a.order(ada, "book", "pen")
	before, err := b.Events.SelectEvents(ctx, ada, es.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}

	if err := r.AddKey("2"); err != nil {
		t.Fatal(err)
	}
	cyd := a.customer("Cyd") // a data key wrapped by key 2 from the start

	// Before rewrapping, the data keys wrapped by key 1 need it.
	early := newApp(t, b, mapper.WithDataKeys(newKeys(t, wrapper(t, b, "2"), b.Store)))
	err = early.decodeAll(early.m, ada)
	if !errors.Is(err, cipher.ErrUnknownKey) || !strings.Contains(err.Error(), `"1"`) {
		t.Fatalf("before rewrapping, without key 1: %v, want cipher.ErrUnknownKey naming key \"1\"", err)
	}

	keys := newKeys(t, r, b.Store)
	res, err := keys.Rewrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ada (customer and order subject), bob; cyd was under key 2 already.
	if res.Rewrapped != 2 || res.Current != 1 || res.Failed != 0 || res.KeyID != "2" {
		t.Fatalf("Rewrap = %+v, want 2 rewrapped, 1 current", res)
	}
	sum, err := datakey.Summarize(ctx, b.Store)
	if err != nil || sum.Keys != 3 || sum.ByKeyID["2"] != 3 {
		t.Fatalf("Summarize = %+v, %v; want 3 keys, all under key 2", sum, err)
	}
	if res, err := keys.Rewrap(ctx); err != nil || res.Rewrapped != 0 || res.Current != 3 {
		t.Fatalf("second Rewrap = %+v, %v; want nothing to do", res, err)
	}

	// Key 1 retired: everything decodes, and no event was rewritten.
	after := newApp(t, b, mapper.WithDataKeys(newKeys(t, wrapper(t, b, "2"), b.Store)))
	for _, id := range []uuid.UUID{ada, bob, cyd, order} {
		if err := after.decodeAll(after.m, id); err != nil {
			t.Fatalf("after rewrapping, without key 1: %v", err)
		}
	}
	now, err := b.Events.SelectEvents(ctx, ada, es.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range before {
		if string(before[i].State) != string(now[i].State) {
			t.Fatalf("event %d of ada was rewritten", i+1)
		}
	}
}

// TestForgetting forgets a customer: the customer's events and snapshots, and those of the customer's
// orders, fail to decode with datakey.ErrForgotten naming the subject, through the repository too (its
// cache included); the other customers are untouched.
func TestForgetting(t *testing.T, open func(t *testing.T) Backend) {
	b := open(t)
	ctx := context.Background()
	r := wrapper(t, b, "1")
	keys := newKeys(t, r, b.Store)
	a := newApp(t, b, mapper.WithDataKeys(keys))
	ada := a.customer("Ada", "a", "b", "c")
	bob := a.customer("Bob", "a", "b", "c")
	adaOrder := a.order(ada, "book", "pen", "ink")
	bobOrder := a.order(bob, "cup")
	if _, err := a.customers.Get(ctx, ada); err != nil { // cached now
		t.Fatal(err)
	}
	if _, err := a.orders.Get(ctx, adaOrder); err != nil {
		t.Fatal(err)
	}

	if err := keys.Forget(ctx, ada.String()); err != nil {
		t.Fatal(err)
	}

	isForgotten := func(what string, err error) {
		t.Helper()
		var fe *datakey.ForgottenError
		if !errors.Is(err, datakey.ErrForgotten) || !errors.As(err, &fe) || fe.Subject != ada.String() ||
			!strings.Contains(err.Error(), ada.String()) || !strings.Contains(err.Error(), "forgotten") {
			t.Fatalf("%s: %v, want datakey.ErrForgotten naming %s", what, err, ada)
		}
		noKeyMaterial(t, err)
	}
	_, err := a.customers.Get(ctx, ada)
	isForgotten("Get of the forgotten customer", err)
	_, err = a.orders.Get(ctx, adaOrder)
	isForgotten("Get of the forgotten customer's order", err)
	_, err = a.customers.GetAt(ctx, ada, 1)
	isForgotten("GetAt of the forgotten customer", err)
	for _, id := range []uuid.UUID{ada, adaOrder} {
		stored, err := b.Events.SelectEvents(ctx, id, es.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		snaps, err := b.Snapshots.SelectEvents(ctx, id, es.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(snaps) == 0 {
			t.Fatalf("no snapshots of %s", id)
		}
		for _, s := range append(stored, snaps...) {
			_, err := a.m.DecodeContext(ctx, s)
			isForgotten("decode "+s.Topic, err)
			var de *mapper.DecodeError
			if !errors.As(err, &de) || de.OriginatorID != id || de.OriginatorVersion != s.OriginatorVersion {
				t.Fatalf("the error does not name the event: %v", err)
			}
		}
	}
	// Another process, with a cache of its own, finds the tombstone.
	other := newApp(t, b, mapper.WithDataKeys(newKeys(t, r, b.Store)))
	isForgotten("another process", other.decodeAll(other.m, ada))
	// Nothing new can be written for the subject.
	_, err = a.m.EncodeContext(ctx, aggregate.Event{OriginatorID: ada, OriginatorVersion: 9, Data: Noted{Text: "again"}})
	isForgotten("encode for the forgotten subject", err)

	// The others carry on.
	if c, err := a.customers.Get(ctx, bob); err != nil || len(c.Notes) != 3 {
		t.Fatalf("bob: %+v %v", c, err)
	}
	if o, err := a.orders.Get(ctx, bobOrder); err != nil || len(o.Items) != 1 {
		t.Fatalf("bob's order: %+v %v", o, err)
	}
	a.note(bob, "d")
	cyd := a.customer("Cyd", "a")
	for _, id := range []uuid.UUID{bob, bobOrder, cyd} {
		if err := other.decodeAll(other.m, id); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := datakey.Summarize(ctx, b.Store)
	if err != nil || sum.Forgotten != 1 || sum.Keys != 2 {
		t.Fatalf("Summarize = %+v, %v; want 2 keys and 1 forgotten", sum, err)
	}
}

// TestTampering changes the key store behind the application's back: a changed wrapped key, a key
// copied to another subject, a key relabelled with another key-encryption key's ID. Each is detected when the key
// is used, never accepted, and Rewrap leaves such entries alone and reports them.
func TestTampering(t *testing.T, open func(t *testing.T) Backend) {
	b := open(t)
	ctx := context.Background()
	r := wrapper(t, b, "1", "2")
	a := newApp(t, b, mapper.WithDataKeys(newKeys(t, r, b.Store)))
	ids := map[string]uuid.UUID{}
	for _, name := range []string{"changed", "moved-from", "moved-to", "relabelled", "intact"} {
		ids[name] = a.customer(name, "x")
	}
	entryOf := func(name string) datakey.Entry {
		e, err := b.Store.Get(ctx, ids[name].String())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	replace := func(name string, keyID string, wrapped []byte) {
		old := entryOf(name)
		n, err := b.Store.Rewrap(ctx, []datakey.Rewrapped{{
			Entry:         datakey.Entry{Subject: old.Subject, KeyID: keyID, Wrapped: wrapped},
			PreviousKeyID: old.KeyID,
		}})
		if err != nil || n != 1 {
			t.Fatalf("tamper with %s: %d %v", name, n, err)
		}
	}
	changed := entryOf("changed")
	changed.Wrapped[len(changed.Wrapped)/2] ^= 1
	replace("changed", changed.KeyID, changed.Wrapped)
	from := entryOf("moved-from")
	replace("moved-to", from.KeyID, from.Wrapped)
	relabelled := entryOf("relabelled") // wrapped by key 2, the current one
	replace("relabelled", "1", relabelled.Wrapped)

	fresh := newApp(t, b, mapper.WithDataKeys(newKeys(t, r, b.Store)))
	for _, name := range []string{"changed", "moved-to", "relabelled"} {
		err := fresh.decodeAll(fresh.m, ids[name])
		if !errors.Is(err, cipher.ErrDecrypt) || !strings.Contains(err.Error(), ids[name].String()) {
			t.Fatalf("%s key: %v, want cipher.ErrDecrypt naming the subject", name, err)
		}
		noKeyMaterial(t, err)
	}
	for _, name := range []string{"moved-from", "intact"} {
		if err := fresh.decodeAll(fresh.m, ids[name]); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	if err := r.AddKey("3"); err != nil {
		t.Fatal(err)
	}
	res, err := newKeys(t, r, b.Store).Rewrap(ctx)
	if err == nil || res.Failed != 3 || res.Rewrapped != 2 || !strings.Contains(err.Error(), ids["changed"].String()) {
		t.Fatalf("Rewrap over tampered entries = %+v, %v; want 3 failed (named), 2 rewrapped", res, err)
	}
	if e := entryOf("changed"); e.KeyID != changed.KeyID || string(e.Wrapped) != string(changed.Wrapped) {
		t.Fatal("Rewrap replaced a tampered entry")
	}
}

// noKeyMaterial fails the test if err's message contains any key of the scenarios' rings, in base64
// or raw.
func noKeyMaterial(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, id := range []string{"1", "2", "3"} {
		k := keyOf(id)
		if strings.Contains(msg, string(k[:16])) || strings.Contains(msg, base64.StdEncoding.EncodeToString(k)) {
			t.Fatalf("error shows key material: %v", err)
		}
	}
}

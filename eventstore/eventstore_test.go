package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/eventstore"
	"github.com/eventsourcing-go/eventsourcing/mapper"
	"github.com/eventsourcing-go/eventsourcing/memory"
)

type Logged struct{ N int }
type Unregistered struct{}

func newStore() (*eventstore.EventStore, *memory.ProcessRecorder) {
	r := mapper.NewRegistry()
	mapper.Register[Logged](r, "test.Logged")
	rec := memory.NewProcessRecorder()
	return eventstore.New(must(mapper.New(r)), rec), rec
}

func events(id [16]byte, from, n int) []aggregate.Event {
	out := make([]aggregate.Event, n)
	for i := range out {
		out[i] = aggregate.Event{OriginatorID: id, OriginatorVersion: int64(from + i), Timestamp: time.Unix(int64(i), 7).UTC(), Data: Logged{N: from + i}}
	}
	return out
}

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore()
	id := aggregate.NewID()
	ids, err := s.Put(ctx, events(id, 1, 5))
	if err != nil || len(ids) != 5 || ids[0] != 1 || ids[4] != 5 {
		t.Fatalf("put: %v %v", ids, err)
	}
	got, err := s.Get(ctx, id, es.EventQuery{After: 1, UpTo: 4, Desc: true})
	if err != nil || len(got) != 3 || got[0].OriginatorVersion != 4 || got[0].Data != (Logged{N: 4}) {
		t.Fatalf("get: %+v %v", got, err)
	}
	if !got[0].Timestamp.Equal(time.Unix(3, 7)) {
		t.Fatalf("timestamp %v", got[0].Timestamp)
	}
}

func TestPutEncodeFailureWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, rec := newStore()
	id := aggregate.NewID()
	batch := events(id, 1, 2)
	batch = append(batch, aggregate.Event{OriginatorID: id, OriginatorVersion: 3, Data: Unregistered{}})
	if _, err := s.Put(ctx, batch); err == nil {
		t.Fatal("an unregistered event type must fail the put")
	}
	if n, _ := rec.MaxNotificationID(ctx); n != 0 {
		t.Fatalf("%d events written by a failed put", n)
	}
	if _, err := s.Put(ctx, events(id, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, events(id, 1, 1)); !errors.Is(err, es.ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
}

func TestAllPages(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore()
	id := aggregate.NewID()
	if _, err := s.Put(ctx, events(id, 1, 25)); err != nil {
		t.Fatal(err)
	}
	// From version 4, up to the end (stopping after 20) and up to version 17.
	for _, c := range []struct {
		upTo       int64
		stop, want int
	}{{0, 20, 20}, {17, 0, 14}} {
		n := 0
		for e, err := range s.All(ctx, id, 3, c.upTo, 7) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if e.OriginatorVersion != int64(3+n) {
				t.Fatalf("event %d has version %d", n, e.OriginatorVersion)
			}
			if n == c.stop {
				break
			}
		}
		if n != c.want {
			t.Fatalf("read %d events up to version %d, want %d", n, c.upTo, c.want)
		}
	}
	var sizes []int
	next := int64(1)
	for page, err := range s.Pages(ctx, id, 0, 0, 7) {
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page))
		for _, e := range page { // each page whole, though pages share memory
			if e.OriginatorVersion != next || e.Data != (Logged{N: int(next)}) {
				t.Fatalf("page %d holds version %d (%v) where version %d was due", len(sizes), e.OriginatorVersion, e.Data, next)
			}
			next++
		}
	}
	if fmt.Sprint(sizes) != "[7 7 7 4]" {
		t.Fatalf("pages of %v events, want [7 7 7 4]", sizes)
	}
}

// must returns v and panics on err: for constructors whose arguments the test controls.
func must[V any](v V, err error) V {
	if err != nil {
		panic(err)
	}
	return v
}

// A batch whose versions skip or repeat for an originator is refused before anything is recorded: a
// defect in a caller must not reach the store.
func TestPutRefusesVersionsThatDoNotFollowOn(t *testing.T) {
	ctx := context.Background()
	a, b := aggregate.NewID(), aggregate.NewID()
	cat := func(batches ...[]aggregate.Event) []aggregate.Event {
		var out []aggregate.Event
		for _, x := range batches {
			out = append(out, x...)
		}
		return out
	}
	bad := map[string][]aggregate.Event{
		"gap":                   cat(events(a, 1, 1), events(a, 3, 1)),
		"repeat":                cat(events(a, 1, 2), events(a, 2, 1)),
		"backwards":             cat(events(a, 2, 1), events(a, 1, 1)),
		"gap after another run": cat(events(a, 1, 2), events(b, 1, 1), events(a, 4, 1)),
	}
	for name, batch := range bad {
		t.Run(name, func(t *testing.T) {
			s, rec := newStore()
			if _, err := s.Put(ctx, batch); !errors.Is(err, aggregate.ErrVersionGap) {
				t.Fatalf("got %v, want ErrVersionGap", err)
			}
			if n, _ := rec.MaxNotificationID(ctx); n != 0 {
				t.Fatalf("%d events recorded", n)
			}
		})
	}
	s, _ := newStore()
	good := cat(events(a, 1, 2), events(b, 1, 1), events(a, 3, 2), events(b, 2, 1))
	if _, err := s.Put(ctx, good); err != nil {
		t.Fatalf("alternating runs that follow on: %v", err)
	}
	if _, err := s.Put(ctx, events(a, 5, 3)); err != nil {
		t.Fatalf("a batch continuing a stream: %v", err)
	}
}

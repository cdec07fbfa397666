package aggregatetest_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/aggregate/aggregatetest"
)

type CartCreated struct{ Owner string }
type ItemAdded struct{ SKU string }

type Cart struct {
	aggregate.Base
	Owner string
	Items []string
}

func (c *Cart) Apply(e any) {
	switch e := e.(type) {
	case CartCreated:
		c.Owner = e.Owner
	case ItemAdded:
		c.Items = append(c.Items, e.SKU)
	}
}

// AddPointer is a command with the mistake aggregatetest must catch: it triggers a pointer.
func (c *Cart) AddPointer(sku string) error {
	aggregate.Trigger(c, &ItemAdded{SKU: sku})
	return nil
}

// recorder is a testing.TB whose Fatalf records the message and ends the goroutine, as the real one does.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs fn with a recorder and returns the message it failed with ("" when it passed).
func failure(t *testing.T, fn func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r.failure
}

func TestGivenFailsOnPointerEvents(t *testing.T) {
	msg := failure(t, func(tb testing.TB) { aggregatetest.Given[Cart](tb, &CartCreated{Owner: "ada"}) })
	if !strings.Contains(msg, "*aggregatetest_test.CartCreated is a pointer; events are values") {
		t.Fatalf("Given with a pointer event: failure %q", msg)
	}
	msg = failure(t, func(tb testing.TB) { aggregatetest.Given[Cart](tb, CartCreated{Owner: "ada"}) })
	if msg != "" {
		t.Fatalf("Given with a value failed: %s", msg)
	}
}

func TestThenFailsWhenTriggerRefusedAnEvent(t *testing.T) {
	msg := failure(t, func(tb testing.TB) {
		c := aggregatetest.Given[Cart](tb, CartCreated{Owner: "ada"})
		aggregatetest.Then(tb, c, c.AddPointer("x"))
	})
	if !strings.Contains(msg, "cannot be saved") || !strings.Contains(msg, "pointer") {
		t.Fatalf("Then after a refused event: failure %q", msg)
	}
	msg = failure(t, func(tb testing.TB) {
		c := aggregatetest.Given[Cart](tb, CartCreated{Owner: "ada"})
		aggregatetest.ThenError(tb, c, c.AddPointer("x"), nil)
	})
	if !strings.Contains(msg, "cannot be saved") {
		t.Fatalf("ThenError after a refused event: failure %q", msg)
	}
}

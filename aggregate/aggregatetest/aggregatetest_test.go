package aggregatetest_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/aggregate/aggregatetest"
	"github.com/eventsourcing-go/eventsourcing/internal/testdomain"
)

// The tests' aggregate, of the domain the module's tests share.
type (
	Counter     = testdomain.Counter
	Started     = testdomain.Started
	Incremented = testdomain.Incremented
)

// triggerPointer is a command with the mistake aggregatetest must catch: it triggers a pointer.
func triggerPointer(c *Counter) error {
	aggregate.Trigger(c, &Incremented{By: 1})
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
	msg := failure(t, func(tb testing.TB) { aggregatetest.Given[Counter](tb, &Started{Name: "ada"}) })
	if !strings.Contains(msg, "*testdomain.Started is a pointer; events are values") {
		t.Fatalf("Given with a pointer event: failure %q", msg)
	}
	msg = failure(t, func(tb testing.TB) { aggregatetest.Given[Counter](tb, Started{Name: "ada"}) })
	if msg != "" {
		t.Fatalf("Given with a value failed: %s", msg)
	}
}

func TestThenFailsWhenTriggerRefusedAnEvent(t *testing.T) {
	msg := failure(t, func(tb testing.TB) {
		c := aggregatetest.Given[Counter](tb, Started{Name: "ada"})
		aggregatetest.Then(tb, c, triggerPointer(c))
	})
	if !strings.Contains(msg, "cannot be saved") || !strings.Contains(msg, "pointer") {
		t.Fatalf("Then after a refused event: failure %q", msg)
	}
	msg = failure(t, func(tb testing.TB) {
		c := aggregatetest.Given[Counter](tb, Started{Name: "ada"})
		aggregatetest.ThenError(tb, c, triggerPointer(c), nil)
	})
	if !strings.Contains(msg, "cannot be saved") {
		t.Fatalf("ThenError after a refused event: failure %q", msg)
	}
}

// Package recordertest is the conformance suite of the recorder contract in package eventsourcing.
// Every recorder runs it unchanged: the memory recorders, the SQLite and PostgreSQL recorders, and
// recorders written elsewhere. Each rule of the contract is a named subtest, so a failure names the rule.
//
// A recorder package calls the suite from its own tests with a factory that returns a fresh, empty
// recorder for one subtest (registering its cleanup with t.Cleanup):
//
//	func TestRecorder(t *testing.T) {
//		recordertest.TestProcessRecorder(t, func(t *testing.T) es.ProcessRecorder {
//			r := mystore.NewProcessRecorder(openFreshDatabase(t))
//			return r
//		})
//	}
//
// Every leaf subtest calls the factory once (about a hundred times for TestProcessRecorder), so it should
// be cheap: a fresh schema, file or in-memory database per call. Subtests run one after another.
//
// The suite uses only the public contract. It never asserts that something is fast: where it waits (for
// a subscription to deliver, for a call to return) it fails only after a generous timeout of 10 seconds.
// Event counts are modest (hundreds), so that a recorder on a real database runs the suite in seconds;
// with -short the concurrency tests are smaller still.
//
// Where the contract leaves a choice open the suite accepts either answer: a nil and an empty state are
// the same (both must be accepted); an empty result may be nil or empty; gaps in notification IDs are
// accepted after failed transactions and between concurrent batches, but not between sequential
// successful ones. Input the contract does not mention (versions below 1, the nil UUID, negative
// bounds) is not exercised, so a recorder may reject it.
package recordertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// waitTimeout bounds every wait of the suite. Reaching it is a failure; nothing is ever asserted to be
// faster than this.
const waitTimeout = 10 * time.Second

// TestAggregateRecorder runs the rules of an [es.AggregateRecorder]: atomic batches,
// conflicts, and SelectEvents. newRecorder returns a fresh, empty recorder for each subtest. When the
// recorder is also an [es.ApplicationRecorder], InsertEvents must return one ID per event;
// otherwise it must return nil IDs. When it is not a [es.TrackingRecorder], InsertEvents must
// fail with [es.WithTracking] and record nothing.
func TestAggregateRecorder(t *testing.T, newRecorder func(t *testing.T) es.AggregateRecorder) {
	t.Helper()
	runAggregate(t, newRecorder)
	runClose(t, newRecorder)
}

// TestApplicationRecorder runs the rules of an [es.ApplicationRecorder]: everything of
// [TestAggregateRecorder], then notification IDs, SelectNotifications, MaxNotificationID and Subscribe.
func TestApplicationRecorder(t *testing.T, newRecorder func(t *testing.T) es.ApplicationRecorder) {
	t.Helper()
	runAggregate(t, func(t *testing.T) es.AggregateRecorder { return newRecorder(t) })
	runApplication(t, newRecorder)
	runClose(t, func(t *testing.T) es.AggregateRecorder { return newRecorder(t) })
}

// TestTrackingRecorder runs the rules of an [es.TrackingRecorder]: the per-application
// high-water mark.
func TestTrackingRecorder(t *testing.T, newRecorder func(t *testing.T) es.TrackingRecorder) {
	t.Helper()
	runTracking(t, newRecorder)
}

// TestProcessRecorder runs the rules of an [es.ProcessRecorder]: everything of
// [TestApplicationRecorder] and [TestTrackingRecorder], then the atomicity of events and tracking
// recorded together with [es.WithTracking].
func TestProcessRecorder(t *testing.T, newRecorder func(t *testing.T) es.ProcessRecorder) {
	t.Helper()
	runAggregate(t, func(t *testing.T) es.AggregateRecorder { return newRecorder(t) })
	runApplication(t, func(t *testing.T) es.ApplicationRecorder { return newRecorder(t) })
	runTracking(t, func(t *testing.T) es.TrackingRecorder { return newRecorder(t) })
	runProcess(t, newRecorder)
	runClose(t, func(t *testing.T) es.AggregateRecorder { return newRecorder(t) })
}

// sizes of the concurrency tests: writers × batches per writer.
func concurrency() (writers, batches int) {
	if testing.Short() {
		return 4, 10
	}
	return 8, 50
}

// ev makes a stored event.
func ev(id uuid.UUID, version int64, topic string, state string) es.StoredEvent {
	return es.StoredEvent{OriginatorID: id, OriginatorVersion: version, Topic: topic, State: []byte(state)}
}

// series makes versions from..to of id, with topic and a state naming the version.
func series(id uuid.UUID, from, to int64, topic string) []es.StoredEvent {
	var out []es.StoredEvent
	for v := from; v <= to; v++ {
		out = append(out, ev(id, v, topic, fmt.Sprintf("%s v%d", id, v)))
	}
	return out
}

// insert records events and fails the test on error. It checks the shape of the returned IDs: one per
// event, strictly increasing, on an ApplicationRecorder; nil on a recorder without a sequence.
func insert(t *testing.T, r es.AggregateRecorder, events ...es.StoredEvent) []int64 {
	t.Helper()
	ids, err := r.InsertEvents(t.Context(), events)
	if err != nil {
		t.Fatalf("InsertEvents(%s): unexpected error: %v", describe(events), err)
	}
	checkIDs(t, r, events, ids)
	return ids
}

// checkIDs checks the IDs InsertEvents returned for events.
func checkIDs(t *testing.T, r es.AggregateRecorder, events []es.StoredEvent, ids []int64) {
	t.Helper()
	if _, ok := r.(es.ApplicationRecorder); !ok {
		if ids != nil {
			t.Fatalf("InsertEvents(%s) on a recorder without an application sequence returned IDs %v, want nil", describe(events), ids)
		}
		return
	}
	if len(ids) != len(events) {
		t.Fatalf("InsertEvents(%s) returned %d IDs %v, want one per event (%d)", describe(events), len(ids), ids, len(events))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("InsertEvents(%s) returned IDs %v: not strictly increasing in input order", describe(events), ids)
		}
	}
	if len(ids) > 0 && ids[0] < 1 {
		t.Fatalf("InsertEvents(%s) returned IDs %v: IDs start at 1", describe(events), ids)
	}
}

// selectEvents calls SelectEvents and fails the test on error.
func selectEvents(t *testing.T, r es.AggregateRecorder, id uuid.UUID, q es.EventQuery) []es.StoredEvent {
	t.Helper()
	got, err := r.SelectEvents(t.Context(), id, q)
	if err != nil {
		t.Fatalf("SelectEvents(%s, %+v): unexpected error: %v", id, q, err)
	}
	return got
}

// requireConflict fails the test unless err wraps ErrConflict.
func requireConflict(t *testing.T, err error, call string) {
	t.Helper()
	requireWraps(t, t.Fatalf, err, es.ErrConflict, "es.ErrConflict", call)
}

// requireCanceled fails the test unless err wraps context.Canceled.
func requireCanceled(t *testing.T, err error, call string) {
	t.Helper()
	requireWraps(t, t.Errorf, err, context.Canceled, "context.Canceled", call+" with a cancelled context")
}

// requireWraps reports, with report (t.Fatalf or t.Errorf), unless err wraps target, which name names.
func requireWraps(t *testing.T, report func(format string, args ...any), err, target error, name, call string) {
	t.Helper()
	switch {
	case err == nil:
		report("%s: no error, want one wrapping %s", call, name)
	case !errors.Is(err, target):
		report("%s: error %q does not wrap %s (errors.Is is false)", call, err, name)
	}
}

// cancelled returns a context that is cancelled already.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// sameEvent reports whether a and b are equal, a nil and an empty state being the same.
func sameEvent(a, b es.StoredEvent) bool {
	return a.OriginatorID == b.OriginatorID && a.OriginatorVersion == b.OriginatorVersion &&
		a.Topic == b.Topic && bytes.Equal(a.State, b.State)
}

// requireEvents fails the test unless got equals want, element by element.
func requireEvents(t *testing.T, call string, got, want []es.StoredEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s returned %d events %s, want %d: %s", call, len(got), describe(got), len(want), describe(want))
	}
	for i := range got {
		if !sameEvent(got[i], want[i]) {
			t.Fatalf("%s: event %d is %s, want %s", call, i, show(got[i]), show(want[i]))
		}
	}
}

// requireNoEvents fails the test if originator id has any events.
func requireNoEvents(t *testing.T, r es.AggregateRecorder, id uuid.UUID, why string) {
	t.Helper()
	if got := selectEvents(t, r, id, es.EventQuery{}); len(got) != 0 {
		t.Fatalf("%s: originator %s has %d events %s, want none", why, id, len(got), describe(got))
	}
}

func show(e es.StoredEvent) string {
	state := string(e.State)
	if len(state) > 40 {
		state = state[:40] + "…"
	}
	return fmt.Sprintf("{%s v%d %q %q}", e.OriginatorID, e.OriginatorVersion, e.Topic, state)
}

// describe summarises events as originator:version pairs, with short originator IDs.
func describe(events []es.StoredEvent) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range events {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 12 {
			fmt.Fprintf(&b, "… %d more", len(events)-i)
			break
		}
		fmt.Fprintf(&b, "%s:v%d", e.OriginatorID.String()[:8], e.OriginatorVersion)
	}
	b.WriteByte(']')
	return b.String()
}

func versions(events []es.StoredEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.OriginatorVersion
	}
	return out
}

func notificationIDs(ns []es.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

// report fails the test from a goroutine that may outlive it: once the test is over (its context is
// done), the error is a consequence of its end and is dropped, since a goroutine must not log after
// its test completed.
func report(t *testing.T, format string, args ...any) {
	if t.Context().Err() == nil {
		t.Errorf(format, args...)
	}
}

// run runs f in a goroutine and waits for it at most waitTimeout; what names f in the failure.
func run(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not return within %v", what, waitTimeout)
	}
}

// waitBriefly waits for done at most waitTimeout, in the cleanup of a test whose goroutines must end
// before it completes.
func waitBriefly(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(waitTimeout):
	}
}

// concurrently runs f(0) … f(n-1) in goroutines released together, and waits for all of them.
func concurrently(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// outcomes counts the results of concurrent calls that should all succeed but one.
type outcomes struct {
	mu        sync.Mutex
	ok        []int
	conflicts int
	others    []error
}

func (o *outcomes) add(i int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err == nil:
		o.ok = append(o.ok, i)
	case errors.Is(err, es.ErrConflict):
		o.conflicts++
	default:
		o.others = append(o.others, err)
	}
}

// winner checks that exactly one of n calls succeeded and all others conflicted, and returns the winner.
func (o *outcomes) winner(t *testing.T, n int, call string) int {
	t.Helper()
	if len(o.others) > 0 {
		t.Fatalf("%d concurrent %s: %d failed with an error not wrapping ErrConflict, first: %v", n, call, len(o.others), o.others[0])
	}
	if len(o.ok) != 1 || o.conflicts != n-1 {
		t.Fatalf("%d concurrent %s: %d succeeded (%v) and %d conflicted, want exactly 1 success and %d conflicts", n, call, len(o.ok), o.ok, o.conflicts, n-1)
	}
	return o.ok[0]
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package recordertest_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/memory"
	"github.com/eventsourcing-go/eventsourcing/recordertest"
)

// The suite must be able to fail. Each mutant below is the memory recorder with one rule broken; the
// suite, run against it in a child process, must fail the subtest that checks that rule.

const mutantEnv = "RECORDERTEST_MUTANT"

type mutant struct {
	name string
	// path is the subtest (below TestMutant) to run and to see fail.
	path string
	// process, or aggregate when nil, builds the broken recorder.
	process   func() es.ProcessRecorder
	aggregate func() es.AggregateRecorder
}

var mutants = []mutant{
	{name: "insert one event at a time", path: "InsertEvents/ConflictWithRecordedVersionWritesNothing",
		process: func() es.ProcessRecorder { return &oneAtATime{ProcessRecorder: memory.NewProcessRecorder()} }},
	{name: "insert one event at a time, concurrently", path: "NotificationIDs/ConcurrentBatchesDisjointAndNotInterleaved",
		process: func() es.ProcessRecorder { return &oneAtATime{ProcessRecorder: memory.NewProcessRecorder()} }},
	{name: "drop duplicates within a batch", path: "InsertEvents/DuplicateVersionInBatchWritesNothing",
		process: func() es.ProcessRecorder { return &dedupBatch{memory.NewProcessRecorder()} }},
	{name: "IDs from 0", path: "NotificationIDs/FreshStoreStartsAtOne",
		process: func() es.ProcessRecorder { return &idsFromZero{memory.NewProcessRecorder()} }},
	{name: "ignore Desc", path: "SelectEvents/Queries/Desc",
		process: selecting(ignoreDesc)},
	{name: "limit before ordering", path: "SelectEvents/Queries/DescLimit",
		process: selecting(limitBeforeOrder)},
	{name: "limit before ordering (combinations)", path: "SelectEvents/AllCombinations",
		process: selecting(limitBeforeOrder)},
	{name: "UpTo exclusive", path: "SelectEvents/Queries/UpToInclusive",
		process: selecting(upToExclusive)},
	{name: "After inclusive", path: "SelectEvents/Queries/AfterExclusive",
		process: selecting(afterInclusive)},
	{name: "unknown originator is an error", path: "SelectEvents/UnknownOriginator",
		process: selecting(notFound)},
	{name: "returned state aliases input", path: "SelectEvents/NoAliasingOfInput",
		process: func() es.ProcessRecorder { return newAliasing() }},
	{name: "returned state aliases storage", path: "SelectEvents/NoAliasingOfOutput",
		process: func() es.ProcessRecorder { return newAliasing() }},
	{name: "notifications alias input", path: "SelectNotifications/NoAliasingOfOutput",
		process: func() es.ProcessRecorder { return newAliasing() }},
	{name: "state loses trailing zero bytes", path: "SelectEvents/StateAndTopicRoundTrip",
		process: selecting(trimZeros)},
	{name: "limit before topic filter", path: "SelectNotifications/Queries/TopicFilterBeforeLimit",
		process: func() es.ProcessRecorder { return &limitBeforeTopics{memory.NewProcessRecorder()} }},
	{name: "limit 0 accepted", path: "SelectNotifications/LimitBelowOneIsAnError",
		process: func() es.ProcessRecorder { return &limitZeroOK{memory.NewProcessRecorder()} }},
	{name: "late fills", path: "NotificationIDs/NoLateFills",
		process: func() es.ProcessRecorder {
			return &lateFill{ProcessRecorder: memory.NewProcessRecorder(), hidden: map[int64]bool{}}
		}},
	{name: "subscription skips", path: "Subscribe/History",
		process: subscribing(skipTwo)},
	{name: "subscription duplicates", path: "Subscribe/HistoryThenLive",
		process: subscribing(repeatThree)},
	{name: "subscription ignores topics", path: "Subscribe/Topics",
		process: subscribing(nil)},
	{name: "subscription yields the context's error", path: "Subscribe/CancelWhileWaiting",
		process: subscribing(errorOnCancel)},
	{name: "tracking accepts the mark again", path: "Tracking/MarksNeverGoBack",
		process: tracking(acceptsMarkAgain)},
	{name: "HasTrackingID off by one", path: "Tracking/CompareAndSet",
		process: tracking(offByOne)},
	{name: "tracking only above the mark, not a compare-and-set", path: "Tracking/PriorMustBeTheMark",
		process: tracking(aboveTheMark)},
	{name: "a stale instance's batch commits", path: "WithTracking/StaleInstance",
		process: tracking(aboveTheMark)},
	{name: "tracking keyed by upstream alone", path: "Tracking/ConsumersAndUpstreamsAreIndependent",
		process: tracking(upstreamOnly)},
	{name: "events and tracking in two steps", path: "WithTracking/ConflictingTrackingWritesNoEvents",
		process: func() es.ProcessRecorder { return &trackingAfterEvents{memory.NewProcessRecorder()} }},
	{name: "context ignored", path: "InsertEvents/CancelledContext",
		process: func() es.ProcessRecorder { return &ignoreContext{memory.NewProcessRecorder()} }},
	{name: "context ignored by tracking", path: "Tracking/CancelledContext",
		process: func() es.ProcessRecorder { return &ignoreContext{memory.NewProcessRecorder()} }},
	{name: "aggregate recorder returns IDs", path: "InsertEvents/OneEvent",
		aggregate: func() es.AggregateRecorder { return &aggregateWithIDs{memory.NewAggregateRecorder()} }},
	{name: "aggregate recorder ignores WithTracking", path: "InsertEvents/WithTrackingUnsupported",
		aggregate: func() es.AggregateRecorder {
			return &aggregateIgnoresTracking{memory.NewAggregateRecorder()}
		}},
}

// TestMutant runs the suite against the mutant named by $RECORDERTEST_MUTANT; TestSuiteDetectsMutants
// runs it in a child process.
func TestMutant(t *testing.T) {
	name, ok := os.LookupEnv(mutantEnv)
	if !ok {
		t.Skip("run by TestSuiteDetectsMutants in a child process")
	}
	i := slices.IndexFunc(mutants, func(m mutant) bool { return m.name == name })
	if i < 0 {
		t.Fatalf("no mutant %q", name)
	}
	if m := mutants[i]; m.process != nil {
		recordertest.TestProcessRecorder(t, func(*testing.T) es.ProcessRecorder { return m.process() })
	} else {
		recordertest.TestAggregateRecorder(t, func(*testing.T) es.AggregateRecorder { return m.aggregate() })
	}
}

func TestSuiteDetectsMutants(t *testing.T) {
	if _, ok := os.LookupEnv(mutantEnv); ok {
		t.Skip("in a child process")
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			pattern := "^TestMutant$"
			for part := range strings.SplitSeq(m.path, "/") {
				pattern += "/^" + part + "$"
			}
			cmd := exec.Command(os.Args[0], "-test.run="+pattern, "-test.count=1", "-test.timeout=60s")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed (or did not run: %v) against a recorder with the rule broken; output:\n%s", err, out)
			}
			if want := "--- FAIL: TestMutant/" + m.path; !strings.Contains(string(out), want) {
				t.Fatalf("the child process failed, but not with %q; output:\n%s", want, out)
			}
		})
	}
}

// oneAtATime records each event in its own call: not atomic, and batches interleave.
type oneAtATime struct{ *memory.ProcessRecorder }

func (r *oneAtATime) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	ids := []int64{}
	for _, e := range events {
		id, err := r.ProcessRecorder.InsertEvents(ctx, []es.StoredEvent{e}, opts...)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id...)
		runtime.Gosched()
	}
	return ids, nil
}

// dedupBatch drops repeated versions from a batch instead of failing it.
type dedupBatch struct{ *memory.ProcessRecorder }

func (r *dedupBatch) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	type key struct {
		id uuid.UUID
		v  int64
	}
	seen := map[key]bool{}
	var kept []es.StoredEvent
	for _, e := range events {
		if !seen[key{e.OriginatorID, e.OriginatorVersion}] {
			seen[key{e.OriginatorID, e.OriginatorVersion}] = true
			kept = append(kept, e)
		}
	}
	ids, err := r.ProcessRecorder.InsertEvents(ctx, kept, opts...)
	for len(ids) < len(events) && err == nil {
		ids = append(ids, ids[len(ids)-1]+1)
	}
	return ids, err
}

type idsFromZero struct{ *memory.ProcessRecorder }

func (r *idsFromZero) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	ids, err := r.ProcessRecorder.InsertEvents(ctx, events, opts...)
	for i := range ids {
		ids[i]--
	}
	return ids, err
}

// selectMutant changes SelectEvents.
type selectMutant struct {
	*memory.ProcessRecorder
	change selectChange
}

type selectChange func(r *memory.ProcessRecorder, ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error)

// selecting builds memory recorders whose SelectEvents change makes.
func selecting(change selectChange) func() es.ProcessRecorder {
	return func() es.ProcessRecorder { return &selectMutant{memory.NewProcessRecorder(), change} }
}

func (r *selectMutant) SelectEvents(ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	return r.change(r.ProcessRecorder, ctx, id, q)
}

func ignoreDesc(r *memory.ProcessRecorder, ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	q.Desc = false
	return r.SelectEvents(ctx, id, q)
}

func limitBeforeOrder(r *memory.ProcessRecorder, ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	desc := q.Desc
	q.Desc = false
	out, err := r.SelectEvents(ctx, id, q)
	if desc {
		slices.Reverse(out)
	}
	return out, err
}

func upToExclusive(r *memory.ProcessRecorder, ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	if q.UpTo > 1 {
		q.UpTo--
	}
	return r.SelectEvents(ctx, id, q)
}

func afterInclusive(r *memory.ProcessRecorder, ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	if q.After > 0 {
		q.After--
	}
	return r.SelectEvents(ctx, id, q)
}

func notFound(r *memory.ProcessRecorder, ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	out, err := r.SelectEvents(ctx, id, q)
	if err == nil && len(out) == 0 {
		return nil, es.ErrNotFound
	}
	return out, err
}

func trimZeros(r *memory.ProcessRecorder, ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	out, err := r.SelectEvents(ctx, id, q)
	for i := range out {
		for len(out[i].State) > 0 && out[i].State[len(out[i].State)-1] == 0 {
			out[i].State = out[i].State[:len(out[i].State)-1]
		}
	}
	return out, err
}

// aliasing keeps the caller's state slices and returns them.
type aliasing struct {
	*memory.ProcessRecorder
	mu     sync.Mutex
	states map[string][]byte
}

func newAliasing() *aliasing {
	return &aliasing{ProcessRecorder: memory.NewProcessRecorder(), states: map[string][]byte{}}
}

func aliasKey(id uuid.UUID, v int64) string { return fmt.Sprint(id, "/", v) }

func (r *aliasing) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	ids, err := r.ProcessRecorder.InsertEvents(ctx, events, opts...)
	if err == nil {
		r.mu.Lock()
		for _, e := range events {
			r.states[aliasKey(e.OriginatorID, e.OriginatorVersion)] = e.State
		}
		r.mu.Unlock()
	}
	return ids, err
}

func (r *aliasing) SelectEvents(ctx context.Context, id uuid.UUID, q es.EventQuery) ([]es.StoredEvent, error) {
	out, err := r.ProcessRecorder.SelectEvents(ctx, id, q)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range out {
		if s, ok := r.states[aliasKey(id, e.OriginatorVersion)]; ok {
			out[i].State = s
		}
	}
	return out, err
}

func (r *aliasing) SelectNotifications(ctx context.Context, q es.NotificationQuery) ([]es.Notification, error) {
	out, err := r.ProcessRecorder.SelectNotifications(ctx, q)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range out {
		if s, ok := r.states[aliasKey(n.OriginatorID, n.OriginatorVersion)]; ok {
			out[i].State = s
		}
	}
	return out, err
}

type limitBeforeTopics struct{ *memory.ProcessRecorder }

func (r *limitBeforeTopics) SelectNotifications(ctx context.Context, q es.NotificationQuery) ([]es.Notification, error) {
	topics := q.Topics
	q.Topics = nil
	out, err := r.ProcessRecorder.SelectNotifications(ctx, q)
	if len(topics) > 0 {
		out = slices.DeleteFunc(out, func(n es.Notification) bool { return !slices.Contains(topics, n.Topic) })
	}
	return out, err
}

type limitZeroOK struct{ *memory.ProcessRecorder }

func (r *limitZeroOK) SelectNotifications(ctx context.Context, q es.NotificationQuery) ([]es.Notification, error) {
	if q.Limit < 1 {
		q.Limit = 100
	}
	return r.ProcessRecorder.SelectNotifications(ctx, q)
}

// lateFill hides every third notification from the first page that would contain it, as if it had
// been committed after the notifications above it became visible.
type lateFill struct {
	*memory.ProcessRecorder
	mu     sync.Mutex
	hidden map[int64]bool
}

func (r *lateFill) SelectNotifications(ctx context.Context, q es.NotificationQuery) ([]es.Notification, error) {
	out, err := r.ProcessRecorder.SelectNotifications(ctx, q)
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.DeleteFunc(out, func(n es.Notification) bool {
		if n.ID%3 == 0 && !r.hidden[n.ID] && n.ID != out[len(out)-1].ID {
			r.hidden[n.ID] = true
			return true
		}
		return false
	}), err
}

// subscribeMutant changes what Subscribe yields, or ignores its topics.
type subscribeMutant struct {
	*memory.ProcessRecorder
	change subscribeChange
}

type subscribeChange func(ctx context.Context, seq iter.Seq2[es.Notification, error]) iter.Seq2[es.Notification, error]

// subscribing builds memory recorders whose subscriptions change changes (nil: ignores the topics).
func subscribing(change subscribeChange) func() es.ProcessRecorder {
	return func() es.ProcessRecorder { return &subscribeMutant{memory.NewProcessRecorder(), change} }
}

func (r *subscribeMutant) Subscribe(ctx context.Context, after int64, topics ...string) iter.Seq2[es.Notification, error] {
	if r.change == nil {
		return r.ProcessRecorder.Subscribe(ctx, after) // topics ignored
	}
	return r.change(ctx, r.ProcessRecorder.Subscribe(ctx, after, topics...))
}

func skipTwo(_ context.Context, seq iter.Seq2[es.Notification, error]) iter.Seq2[es.Notification, error] {
	return func(yield func(es.Notification, error) bool) {
		for n, err := range seq {
			if n.ID == 2 {
				continue
			}
			if !yield(n, err) {
				return
			}
		}
	}
}

func repeatThree(_ context.Context, seq iter.Seq2[es.Notification, error]) iter.Seq2[es.Notification, error] {
	return func(yield func(es.Notification, error) bool) {
		for n, err := range seq {
			if !yield(n, err) {
				return
			}
			if n.ID == 3 && !yield(n, err) {
				return
			}
		}
	}
}

func errorOnCancel(ctx context.Context, seq iter.Seq2[es.Notification, error]) iter.Seq2[es.Notification, error] {
	return func(yield func(es.Notification, error) bool) {
		for n, err := range seq {
			if !yield(n, err) {
				return
			}
		}
		if ctx.Err() != nil {
			yield(es.Notification{}, ctx.Err())
		}
	}
}

// trackingMutant breaks a rule of the tracking marks, as kind says.
type trackingMutant struct {
	*memory.ProcessRecorder
	kind trackingMutation
}

type trackingMutation int

// tracking builds memory recorders whose tracking kind breaks.
func tracking(kind trackingMutation) func() es.ProcessRecorder {
	return func() es.ProcessRecorder {
		return &trackingMutant{ProcessRecorder: memory.NewProcessRecorder(), kind: kind}
	}
}

const (
	acceptsMarkAgain trackingMutation = iota // a record of the recorded mark succeeds, doing nothing
	offByOne                                 // HasTrackingID answers for the next notification
	aboveTheMark                             // any record above the mark succeeds, whatever its prior
	upstreamOnly                             // every consumer shares one mark per upstream
)

func (r *trackingMutant) InsertTracking(ctx context.Context, t es.Tracking) error {
	switch r.kind {
	case acceptsMarkAgain:
		if m, err := r.MaxTrackingID(ctx, t.Consumer, t.Upstream); err == nil && m == t.NotificationID {
			return nil
		}
	case aboveTheMark:
		if m, err := r.MaxTrackingID(ctx, t.Consumer, t.Upstream); err == nil && t.NotificationID > m {
			t.Prior = m
		}
	case upstreamOnly:
		t.Consumer = ""
	}
	return r.ProcessRecorder.InsertTracking(ctx, t)
}

func (r *trackingMutant) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	if o := es.ApplyInsertOptions(opts...); o.Tracking != nil && r.kind == aboveTheMark {
		t := *o.Tracking
		if m, err := r.MaxTrackingID(ctx, t.Consumer, t.Upstream); err == nil && t.NotificationID > m {
			t.Prior = m
		}
		opts = []es.InsertOption{es.WithTracking(t)}
	}
	return r.ProcessRecorder.InsertEvents(ctx, events, opts...)
}

func (r *trackingMutant) MaxTrackingID(ctx context.Context, consumer, upstream string) (int64, error) {
	if r.kind == upstreamOnly {
		consumer = ""
	}
	return r.ProcessRecorder.MaxTrackingID(ctx, consumer, upstream)
}

func (r *trackingMutant) HasTrackingID(ctx context.Context, consumer, upstream string, n int64) (bool, error) {
	switch r.kind {
	case offByOne:
		n++
	case upstreamOnly:
		consumer = ""
	}
	return r.ProcessRecorder.HasTrackingID(ctx, consumer, upstream, n)
}

// trackingAfterEvents records the events, then the tracking record, in two steps.
type trackingAfterEvents struct{ *memory.ProcessRecorder }

func (r *trackingAfterEvents) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	ids, err := r.ProcessRecorder.InsertEvents(ctx, events)
	if err != nil {
		return nil, err
	}
	if o := es.ApplyInsertOptions(opts...); o.Tracking != nil {
		if err := r.InsertTracking(ctx, *o.Tracking); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// ignoreContext never looks at its context.
type ignoreContext struct{ *memory.ProcessRecorder }

func (r *ignoreContext) InsertEvents(_ context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	return r.ProcessRecorder.InsertEvents(context.Background(), events, opts...)
}

func (r *ignoreContext) InsertTracking(_ context.Context, t es.Tracking) error {
	return r.ProcessRecorder.InsertTracking(context.Background(), t)
}

type aggregateWithIDs struct{ *memory.AggregateRecorder }

func (r *aggregateWithIDs) InsertEvents(ctx context.Context, events []es.StoredEvent, opts ...es.InsertOption) ([]int64, error) {
	_, err := r.AggregateRecorder.InsertEvents(ctx, events, opts...)
	return make([]int64, len(events)), err
}

type aggregateIgnoresTracking struct{ *memory.AggregateRecorder }

func (r *aggregateIgnoresTracking) InsertEvents(ctx context.Context, events []es.StoredEvent, _ ...es.InsertOption) ([]int64, error) {
	return r.AggregateRecorder.InsertEvents(ctx, events)
}

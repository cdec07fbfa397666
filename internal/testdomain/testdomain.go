// Package testdomain is the domain the tests of several packages share, so that each does not define
// its own: counters, which are started with a name and incremented, and labels, which are named.
package testdomain

import (
	"fmt"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

type (
	// Started starts a counter.
	Started struct{ Name string }
	// Incremented adds By to a counter.
	Incremented struct{ By int }
	// Named names a label.
	Named struct{ Name string }
)

// Counter is an aggregate that counts; Tags lists each increment, to give it a slice to share.
type Counter struct {
	aggregate.Base
	Name  string
	Count int
	Tags  []string
}

// Apply implements aggregate.Root.
func (c *Counter) Apply(e any) {
	switch e := e.(type) {
	case Started:
		c.Name = e.Name
	case Incremented:
		c.Count += e.By
		c.Tags = append(c.Tags, fmt.Sprint(e.By))
	}
}

// Inc triggers an increment by by.
func (c *Counter) Inc(by int) { aggregate.Trigger(c, Incremented{By: by}) }

// NewCounter returns a counter started with name and incremented by 1 incs times, all pending.
func NewCounter(name string, incs int) *Counter {
	c := &Counter{}
	aggregate.Trigger(c, Started{Name: name})
	for i := 0; i < incs; i++ {
		c.Inc(1)
	}
	return c
}

// Label is a second aggregate type, for saves that mix types.
type Label struct {
	aggregate.Base
	Text string
}

// Apply implements aggregate.Root.
func (l *Label) Apply(e any) {
	if e, ok := e.(Named); ok {
		l.Text = e.Name
	}
}

// Registry returns a registry of the domain's events and aggregates, under topics "test.<type>".
func Registry() *mapper.Registry {
	r := mapper.NewRegistry()
	mapper.Register[Started](r, "test.Started")
	mapper.Register[Incremented](r, "test.Incremented")
	mapper.Register[Named](r, "test.Named")
	mapper.Register[Counter](r, "test.Counter")
	mapper.Register[Label](r, "test.Label")
	return r
}

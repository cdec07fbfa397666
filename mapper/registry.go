package mapper

import (
	"fmt"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/eventsourcing-go/eventsourcing/internal/option"
)

// Registry maps event types to stable topics and back. Topics, not Go type names, are stored, so that a
// type can be renamed or moved between packages without touching stored events.
//
// Register types and upcasters while the application starts. Registration is programmer's work: its
// mistakes (an empty or duplicate topic, a pointer type, an upcaster for an unknown topic) panic, like
// regexp.MustCompile, so that they surface at the first start rather than when some old event is read.
//
// A Registry is safe for concurrent use, registration included. Reads take no lock: each registration
// publishes a new immutable table, so encoding and decoding on many goroutines never contend.
// The zero Registry is empty and ready to use.
type Registry struct {
	mu    sync.Mutex // serialises registrations
	table atomic.Pointer[table]
}

// table is one immutable version of a Registry's contents.
type table struct {
	byTopic map[string]*eventType       // current topics and aliases
	byType  map[reflect.Type]*eventType // each registered type E and *E
}

// eventType is what the mapper knows about one registered type. It is never changed once published.
type eventType struct {
	topic   string   // current topic, the one written
	aliases []string // earlier topics, read only
	typ     reflect.Type
	version int // current schema version, >= 1
	// upcasters[i] rewrites an object of schema version i+1 to version i+2; nil where none is registered.
	upcasters []func(obj map[string]any) error
	// decode unmarshals JSON into a new E with a codec and returns it as a value. Being generic, it
	// needs no reflection beyond what the codec does itself.
	decode func(c Codec, data []byte) (any, error)
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return new(Registry)
}

// TypeOption configures a type being registered.
type TypeOption func(*typeOptions)

type typeOptions struct {
	aliases []string
	version int
}

// Alias makes events stored under oldTopics decode to the type being registered, for when its topic had
// to change. Encoding always writes the current topic; stored events keep theirs, which matters for
// encrypted events, whose authentication covers the topic they were written with.
func Alias(oldTopics ...string) TypeOption {
	return func(o *typeOptions) { o.aliases = append(o.aliases, oldTopics...) }
}

// SchemaVersion declares the current schema version of the type being registered (1 when not given).
// Raise it when a change to the struct would make older JSON decode wrongly (a renamed, split or
// retyped field), and register an Upcaster from each older version to the next.
func SchemaVersion(v int) TypeOption {
	return func(o *typeOptions) { o.version = v }
}

// Register registers the struct type E under topic. Events of type E (or *E) encode with topic, and
// events stored under topic, or under an Alias, decode to values of type E.
//
// Register panics if E is not a struct type, if topic or an alias is empty or already registered, if E
// is registered already, or if the schema version is below 1: these are mistakes in the program, not
// conditions to handle.
func Register[E any](r *Registry, topic string, opts ...TypeOption) {
	typ := reflect.TypeFor[E]()
	if typ.Kind() != reflect.Struct {
		panic(fmt.Sprintf("mapper: Register %v under %q: event types must be structs (register the struct, not a pointer to it)", typ, topic))
	}
	o := typeOptions{version: 1}
	option.Apply(&o, opts)
	if o.version < 1 {
		panic(fmt.Sprintf("mapper: Register %v under %q: schema version %d is below 1", typ, topic, o.version))
	}
	var scratch sync.Pool // *E, zero
	et := &eventType{
		topic:     topic,
		aliases:   o.aliases,
		typ:       typ,
		version:   o.version,
		upcasters: make([]func(map[string]any) error, o.version-1),
		decode: func(c Codec, data []byte) (any, error) {
			// The codec needs a pointer, which puts the value it fills on the heap, and the value is
			// returned in an interface, which copies it to the heap again: the first of the two is
			// reused, zero before the call and after it (so that it holds on to nothing).
			p, _ := scratch.Get().(*E)
			if p == nil {
				p = new(E)
			}
			err := c.Unmarshal(data, p)
			v := any(*p)
			*p = *new(E)
			scratch.Put(p)
			if err != nil {
				return nil, err
			}
			return v, nil
		},
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	if prev, ok := old.byType[typ]; ok {
		panic(fmt.Sprintf("mapper: Register %v under %q: already registered under %q", typ, topic, prev.topic))
	}
	next := old.clone()
	for _, t := range append([]string{topic}, o.aliases...) {
		if t == "" {
			panic(fmt.Sprintf("mapper: Register %v: empty topic or alias", typ))
		}
		if prev, ok := next.byTopic[t]; ok {
			panic(fmt.Sprintf("mapper: Register %v: topic %q is already taken by %v", typ, t, prev.typ))
		}
		next.byTopic[t] = et
	}
	next.byType[typ] = et
	next.byType[reflect.PointerTo(typ)] = et
	r.table.Store(next)
}

// Upcaster registers fn to rewrite the decoded JSON object of an event of topic (its current topic or an
// alias) from schema version fromVersion to fromVersion+1. Decoding an event stored at version v below
// the current one runs the upcasters of v, v+1, … in order, then unmarshals the result.
//
// fn sees the object as encoding/json decodes it with UseNumber: nested objects as map[string]any,
// arrays as []any, numbers as json.Number (so large integers survive), strings, bools and nil. It must
// check the types it meets, since stored data can be anything, and return an error rather than panic.
//
// Upcaster panics if topic is not registered, if fromVersion is not between 1 and the type's current
// version minus 1, if fn is nil, or if that step has an upcaster already.
func (r *Registry) Upcaster(topic string, fromVersion int, fn func(obj map[string]any) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	et, ok := old.byTopic[topic]
	switch {
	case !ok:
		panic(fmt.Sprintf("mapper: Upcaster for %q: topic not registered (register its type first)", topic))
	case fn == nil:
		panic(fmt.Sprintf("mapper: Upcaster for %q from version %d: nil function", topic, fromVersion))
	case fromVersion < 1 || fromVersion >= et.version:
		panic(fmt.Sprintf("mapper: Upcaster for %q from version %d: type %v is at schema version %d, so steps from 1 to %d can be registered",
			topic, fromVersion, et.typ, et.version, et.version-1))
	case et.upcasters[fromVersion-1] != nil:
		panic(fmt.Sprintf("mapper: Upcaster for %q from version %d: registered twice", topic, fromVersion))
	}
	updated := *et
	updated.upcasters = append([]func(map[string]any) error(nil), et.upcasters...)
	updated.upcasters[fromVersion-1] = fn
	next := old.clone()
	for _, t := range append([]string{et.topic}, et.aliases...) {
		next.byTopic[t] = &updated
	}
	next.byType[et.typ] = &updated
	next.byType[reflect.PointerTo(et.typ)] = &updated
	r.table.Store(next)
}

// Topic returns the topic of v's type, which must be registered; v may be a value or a pointer.
// Its error wraps ErrUnregistered otherwise.
func (r *Registry) Topic(v any) (string, error) {
	et, err := r.lookupType(v)
	if err != nil {
		return "", fmt.Errorf("mapper: topic of %T: %w", v, err)
	}
	return et.topic, nil
}

// Type returns the type registered under topic, its current topic or an alias, and whether there is one.
func (r *Registry) Type(topic string) (reflect.Type, bool) {
	et, ok := r.lookupTopic(topic)
	if !ok {
		return nil, false
	}
	return et.typ, true
}

// lookupType finds the registered type of v (a value or a pointer to one).
func (r *Registry) lookupType(v any) (*eventType, error) {
	if et, ok := r.load().byType[reflect.TypeOf(v)]; ok {
		return et, nil
	}
	return nil, ErrUnregistered
}

// internTopic returns topic as the registry's own string when it is the current topic of a registered
// type (the map look-up of string(topic) does not allocate).
func (r *Registry) internTopic(topic []byte) (string, bool) {
	if et, ok := r.load().byTopic[string(topic)]; ok && et.topic == string(topic) {
		return et.topic, true
	}
	return "", false
}

// lookupTopic finds the type registered under topic, current or alias.
func (r *Registry) lookupTopic(topic string) (*eventType, bool) {
	et, ok := r.load().byTopic[topic]
	return et, ok
}

// load returns the current table; an empty one for the zero Registry.
func (r *Registry) load() *table {
	if t := r.table.Load(); t != nil {
		return t
	}
	return &table{}
}

func (t *table) clone() *table {
	next := &table{byTopic: maps.Clone(t.byTopic), byType: maps.Clone(t.byType)}
	if next.byTopic == nil {
		next.byTopic = make(map[string]*eventType)
		next.byType = make(map[reflect.Type]*eventType)
	}
	return next
}

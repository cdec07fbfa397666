package mapper_test

import (
	"encoding/json"
	"flag"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// Stored state must stay readable, and what is written now must read with earlier releases:
// testdata/stored.json holds events as the mapper stored them when every Mapper used encoding/json
// (json.Encoder without HTML escaping), in every format, for event types that exercise what JSON
// encoders disagree on. -update rewrites it with the code under test: do that only with the release
// whose JSON is the reference.
var update = flag.Bool("update", false, "rewrite testdata/stored.json with this code's encoder")

const fixturesFile = "testdata/stored.json"

// Wide has a field of every kind whose JSON encoders are known to write or read differently.
type Wide struct {
	Text       string // HTML characters, U+2028, non-ASCII, quotes, control characters
	Invalid    string // invalid UTF-8: encoding/json writes U+FFFD
	Int        int64
	Uint       uint64
	Float      float64
	Tiny       float64
	Float32    float32
	Bool       bool
	Bytes      []byte
	NilBytes   []byte
	Array      [4]byte // encoding/json: an array of numbers, not base64
	NilSlice   []string
	Empty      []string
	Map        map[string]int
	NilMap     map[string]int
	IntKeys    map[int]string
	NilPtr     *int
	Ptr        *string
	Time       time.Time
	Duration   time.Duration // encoding/json: nanoseconds
	ID         uuid.UUID
	Raw        json.RawMessage
	Any        any
	OmitInt    int    `json:"omit_int,omitempty"` // encoding/json omits a zero number
	OmitBool   bool   `json:",omitempty"`
	Quoted     int64  `json:",string"`
	Renamed    string `json:"renamed_field"`
	Ignored    string `json:"-"`
	Level      Level
	Inner      // embedded: its fields are the outer object's
	unexported string
}

// Inner is embedded in Wide.
type Inner struct {
	InnerField string
	Shadowed   int
}

// Level has a text form, as enums often do.
type Level int

func (l Level) MarshalText() ([]byte, error) { return []byte([]string{"low", "high"}[l]), nil }

func (l *Level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low":
		*l = 0
	case "high":
		*l = 1
	default:
		return &json.UnsupportedValueError{Str: string(b)}
	}
	return nil
}

// Owned was stored with an untagged field; OwnedNow, registered under the same topic later, tags it
// in lower case: encoding/json matches names regardless of case, so the stored value still arrives.
type Owned struct{ Owner string }

type OwnedNow struct {
	Owner string `json:"owner"`
}

const (
	topicWide  = "compat.Wide"
	topicOwned = "compat.Owned"
)

func wide() Wide {
	s := "set"
	return Wide{
		Text:       "<b>&amp;</b> \u2028\u2029 é 😀 \"q\" \\ \t\x01",
		Invalid:    "a\xffb",
		Int:        math.MinInt64 + 1,
		Uint:       math.MaxUint64,
		Float:      1e21,
		Tiny:       1.5e-7,
		Float32:    0.1,
		Bool:       true,
		Bytes:      []byte{0, 1, 2, 253, 254, 255},
		Array:      [4]byte{1, 2, 3, 4},
		Empty:      []string{},
		Map:        map[string]int{"b": 2, "a": 1, "ä": 3, "A": 4},
		IntKeys:    map[int]string{10: "ten", 9: "nine", -1: "minus one"},
		Ptr:        &s,
		Time:       time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("", 5*3600+30*60)),
		Duration:   90 * time.Second,
		ID:         uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
		Raw:        json.RawMessage(`{ "spaced" : [1, 2] }`),
		Any:        map[string]any{"n": 1.5, "s": "x", "l": []any{true, nil}},
		Quoted:     42,
		Renamed:    "renamed",
		Ignored:    "not stored",
		unexported: "not stored",
		Level:      1,
		Inner:      Inner{InnerField: "inner", Shadowed: 7},
	}
}

// fixture is one stored event of testdata/stored.json.
type fixture struct {
	Case    string `json:"case"`
	Setting string `json:"setting"`
	es.StoredEvent
}

// compatCase is an event stored in every fixture setting.
type compatCase struct {
	name string
	e    aggregate.Event
}

func compatCases() []compatCase {
	at := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	ev := func(version int64, data any) aggregate.Event {
		return aggregate.Event{OriginatorID: testID, OriginatorVersion: version, Timestamp: at, Data: data}
	}
	first := ev(1, deposit())
	first.OriginatorTopic = "bank.Account"
	return []compatCase{
		{"first", first}, // names its aggregate type: the envelope's "a" field
		{"deposit", ev(2, deposit())},
		{"order", ev(3, order())},
		{"snapshot", ev(4, account())},
		{"wide", ev(5, wide())},
		{"zero", ev(6, Wide{})},
		{"owned", ev(7, Owned{Owner: "Ada"})},
	}
}

// compatSettings are the settings the fixtures are stored in: each header format and payload step.
func compatSettings(t testing.TB) map[string][]mapper.Option {
	return map[string][]mapper.Option{
		"plain":          nil,
		"brotli":         {mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithCompressionMinSize(0)},
		"aesgcm":         {mapper.WithCipher(mustCipher(t, testKey))},
		"brotli+keyring": {mapper.WithCompression(mapper.DefaultCompressionQuality), mapper.WithCompressionMinSize(0), mapper.WithKeyRing(testRing(t))},
	}
}

// compatRegistry registers the fixtures' types; Owned's topic goes to owned (Owned when writing,
// OwnedNow when reading).
func compatRegistry(owned func(*mapper.Registry)) *mapper.Registry {
	r := newRegistry()
	mapper.Register[Wide](r, topicWide)
	owned(r)
	return r
}

func writingRegistry() *mapper.Registry {
	return compatRegistry(func(r *mapper.Registry) { mapper.Register[Owned](r, topicOwned) })
}

func readingRegistry() *mapper.Registry {
	return compatRegistry(func(r *mapper.Registry) { mapper.Register[OwnedNow](r, topicOwned) })
}

// encodeFixtures encodes every case in every setting with the mapper options extra adds.
func encodeFixtures(t *testing.T, extra ...mapper.Option) []fixture {
	t.Helper()
	var out []fixture
	settings := compatSettings(t)
	for _, setting := range slices.Sorted(maps.Keys(settings)) {
		m := newMapper(t, writingRegistry(), append(settings[setting], extra...)...)
		for _, c := range compatCases() {
			s, err := m.Encode(c.e)
			if err != nil {
				t.Fatalf("%s, %s: %v", c.name, setting, err)
			}
			out = append(out, fixture{Case: c.name, Setting: setting, StoredEvent: s})
		}
	}
	return out
}

func loadFixtures(t *testing.T, path string) []fixture {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fs []fixture
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	if len(fs) != len(compatCases())*len(compatSettings(t)) {
		t.Fatalf("%s holds %d events, want %d", path, len(fs), len(compatCases())*len(compatSettings(t)))
	}
	return fs
}

func TestUpdateFixtures(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite " + fixturesFile)
	}
	b, err := json.MarshalIndent(encodeFixtures(t), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(fixturesFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixturesFile, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantDecoded is what decoding a case must give: the event as encoding/json reads back what it
// wrote (invalid UTF-8 becomes U+FFFD, times lose their zone name, Owned arrives as OwnedNow …).
func wantDecoded(t *testing.T, c compatCase) aggregate.Event {
	t.Helper()
	want := c.e
	b, err := json.Marshal(c.e.Data)
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(c.e.Data)
	if typ == reflect.TypeFor[Owned]() {
		typ = reflect.TypeFor[OwnedNow]()
	}
	p := reflect.New(typ)
	if err := json.Unmarshal(b, p.Interface()); err != nil {
		t.Fatal(err)
	}
	want.Data = p.Elem().Interface()
	return want
}

// checkDecodesFixtures decodes every fixture with each mapper and compares with wantDecoded.
func checkDecodesFixtures(t *testing.T, fs []fixture, mappers map[string]*mapper.Mapper) {
	t.Helper()
	cases := map[string]compatCase{}
	for _, c := range compatCases() {
		cases[c.name] = c
	}
	for _, f := range fs {
		c, ok := cases[f.Case]
		if !ok {
			t.Fatalf("fixture of unknown case %q", f.Case)
		}
		want := wantDecoded(t, c)
		for name, m := range mappers {
			got, err := m.Decode(f.StoredEvent)
			if err != nil {
				t.Errorf("%s, %s, read by %s: %v", f.Case, f.Setting, name, err)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, %s, read by %s:\n got %#v\nwant %#v", f.Case, f.Setting, name, got, want)
			}
		}
	}
}

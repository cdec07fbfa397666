package mapper

import (
	"bytes"
	"encoding/json"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// Codec turns the data of events and snapshots into JSON and back; the envelope around the data
// (timestamp, aggregate type) is the Mapper's own. WithCodec chooses it; DefaultCodec is used otherwise.
//
// Stored state does not name the codec that wrote it, so every codec an application uses, now or
// later, must read the JSON of the others as they meant it: StdJSON and JSONv2 write the same bytes
// for the same value and read them the same way, so either reads what the other wrote. A codec with
// other semantics (encoding/json/v2's defaults, say, which write a nil slice as [] and match field
// names case-sensitively) must be chosen before the first event is stored, and kept.
//
// Upcasters do not go through the codec: they see objects as encoding/json decodes them (see
// Registry.Upcaster), whatever the codec.
type Codec interface {
	// AppendMarshal appends the JSON of v, a value of a registered type, to dst and returns the
	// extended buffer. The JSON must be one value, without a trailing newline.
	AppendMarshal(dst []byte, v any) ([]byte, error)
	// Unmarshal decodes data, one JSON value, into the new zero value that v points to. data and v
	// are valid only during the call (the Mapper copies the value out and reuses the memory v points
	// to): Unmarshal must copy what it keeps of data, and keep nothing of v.
	Unmarshal(data []byte, v any) error
}

// DefaultCodec is the codec of a Mapper given no WithCodec: JSONv2, which writes what StdJSON writes
// and reads it faster (BENCHMARKS.md, scenarios 4 and 7, measure both).
var DefaultCodec Codec = JSONv2{}

// WithCodec makes the Mapper encode and decode event data with c instead of DefaultCodec. New fails
// if c is nil. Only codecs that read each other's JSON as it was meant can replace each other in an
// application that has stored events (see Codec).
func WithCodec(c Codec) Option {
	return func(m *Mapper) {
		m.codec = c
		m.codecSet = true
	}
}

// StdJSON is the standard library's encoding/json (Marshal and Unmarshal), except that it does not
// escape <, > and & for HTML: stored state is never embedded in HTML, and each escape costs 5 bytes.
// It is what every Mapper used before codecs could be chosen.
type StdJSON struct{}

// stdEncoder is a json.Encoder with its buffer, pooled: json.Encoder is the only way to turn HTML
// escaping off.
type stdEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var stdEncoders = sync.Pool{New: func() any {
	e := new(stdEncoder)
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// AppendMarshal appends the JSON of v to dst.
func (StdJSON) AppendMarshal(dst []byte, v any) ([]byte, error) {
	e := stdEncoders.Get().(*stdEncoder)
	defer putStdEncoder(e)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return dst, err
	}
	return append(dst, bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))...), nil
}

func putStdEncoder(e *stdEncoder) {
	if e.buf.Cap() <= maxPooledBuffer {
		stdEncoders.Put(e)
	}
}

// Unmarshal is json.Unmarshal.
func (StdJSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// JSONv2 is the implementation of encoding/json/v2 (github.com/go-json-experiment/json, which is the
// standard library's own when built with GOEXPERIMENT=jsonv2) set to the semantics of encoding/json,
// as encoding/json itself is under that experiment. It reads JSON into the Go values StdJSON reads it
// into, and writes the bytes StdJSON writes for every value, except that the replacement characters
// for invalid UTF-8 in a string are written as UTF-8 rather than as \ufffd escapes: the same string
// to any JSON reader. It decodes with fewer allocations, and its scanner is faster.
//
// Its errors say what encoding/json's say, but are not of encoding/json's types.
type JSONv2 struct{}

// jsonv1Semantics is encoding/json's behaviour on the v2 implementation, without HTML escaping (as
// StdJSON). U+2028 and U+2029 stay escaped, as encoding/json always escapes them.
var jsonv1Semantics = jsonv2.JoinOptions(jsonv1.DefaultOptionsV1(), jsontext.EscapeForHTML(false))

// appendBuffers lend a bytes.Buffer to MarshalWrite, which encodes straight into a bytes.Buffer's
// memory; the buffer wraps the caller's slice only for the duration of the call.
var appendBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// AppendMarshal appends the JSON of v to dst.
func (JSONv2) AppendMarshal(dst []byte, v any) ([]byte, error) {
	b := appendBuffers.Get().(*bytes.Buffer)
	*b = *bytes.NewBuffer(dst)
	err := jsonv2.MarshalWrite(b, v, jsonv1Semantics)
	out := b.Bytes()
	*b = bytes.Buffer{} // the memory is the caller's
	appendBuffers.Put(b)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// Unmarshal decodes data into v with encoding/json's semantics.
func (JSONv2) Unmarshal(data []byte, v any) error { return jsonv2.Unmarshal(data, v, jsonv1Semantics) }

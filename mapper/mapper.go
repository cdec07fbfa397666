package mapper

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/internal/option"
)

// Cipher encrypts and authenticates stored state. *cipher.AESGCM implements it.
//
// Encrypt must return a message that Decrypt accepts only with the same additionalData, and Decrypt
// must fail, never panic, on anything else. Both must be safe for concurrent use.
type Cipher interface {
	Encrypt(plaintext, additionalData []byte) ([]byte, error)
	Decrypt(ciphertext, additionalData []byte) ([]byte, error)
}

// appendCipher is implemented by ciphers that can write into a caller's buffer, such as *cipher.AESGCM.
// The mapper then builds encrypted state with a single allocation, and decrypts into pooled memory.
type appendCipher interface {
	Cipher
	AppendEncrypt(dst, plaintext, additionalData []byte) ([]byte, error)
	AppendDecrypt(dst, ciphertext, additionalData []byte) ([]byte, error)
	Overhead() int
}

// DefaultCompressionQuality is the brotli quality recommended for events, chosen by measurement
// (BenchmarkCompressionQuality): quality 1 takes most of what brotli can save on an event for a
// fraction of the cost of the higher qualities.
const DefaultCompressionQuality = 1

// DefaultCompressionMinSize is the payload size below which WithCompression does not try to
// compress: below about half a kilobyte, what brotli saves on an event does not pay for the time it
// takes (BENCHMARKS.md, scenario 7, measures both sides).
const DefaultCompressionMinSize = 512

// Option configures a Mapper. Options only record their values; New checks them, so that an invalid
// value is an error from New rather than a panic.
type Option func(*Mapper)

// WithCompression compresses payloads of at least DefaultCompressionMinSize bytes (see
// WithCompressionMinSize) with brotli at quality (0 to 11; DefaultCompressionQuality suits events) and
// keeps the result only where it is smaller than the plain payload, so compression never makes stored
// state larger. Reading does not depend on quality. New fails if quality is outside 0 to 11.
//
// Per event, brotli's fixed costs (building Huffman codes for every stream) dominate, so quality is
// much dearer than its reputation from large files suggests: quality 1 takes most of what brotli can
// save on an event, the higher qualities cost several times more for a few percent, and qualities 10
// and 11 take longer per event than a database append (BENCHMARKS.md, scenario 7, and this package's
// BenchmarkCompressionQuality). Quality 0 is slower than 1 on inputs this small and compresses less.
//
// Snapshots are written rarely, read often and can be large; a separate Mapper with a higher quality
// (5 or so) pays off for them.
func WithCompression(quality int) Option {
	return func(m *Mapper) {
		m.compress = true
		m.quality = quality
	}
}

// WithCompressionMinSize sets the payload size (in bytes of JSON) below which WithCompression does not
// try to compress; DefaultCompressionMinSize by default. 0 tries every payload; New fails on a
// negative size.
func WithCompressionMinSize(n int) Option {
	return func(m *Mapper) {
		m.minSize = n
		m.minSizeSet = true
	}
}

// WithCipher encrypts every payload with c, after compression. The originator ID, version, topic and the
// header of the stored state are authenticated with it, so a ciphertext copied to another event, or a
// changed header, fails to decode. A Mapper with a cipher still reads events stored without encryption,
// so encryption can be turned on for an existing application.
//
// The state names no key, so the key cannot be rotated: prefer WithKeyRing, whose ring reads what
// WithCipher wrote once the key is in the ring.
//
// New fails if c is nil (or a nil pointer): a Mapper that silently stored plaintext when its key was
// missing would be worse than one that does not start. Leave the option out to store plaintext.
func WithCipher(c Cipher) Option {
	return func(m *Mapper) {
		m.cipher = c
		m.cipherSet = true
	}
}

// Mapper turns domain events into stored events and back: JSON, then optionally brotli, then optionally
// encryption, behind a small header that records what was done, so that reading never depends on the
// Mapper's own settings. A Mapper is safe for concurrent use.
//
// The stored state is:
//
//	format   1 byte   format version: 1, or 2 when the state names the key that encrypted it
//	flags    1 byte   0x01 compressed, 0x02 encrypted, 0x04 checksummed (format 1: exactly one of the
//	                  last two; format 2: always encrypted), 0x08 subject key (format 2 only)
//	schema   uvarint  schema version of the event type when written
//	rawlen   uvarint  payload length before compression (present only when compressed)
//	keylen   uvarint  format 2 only: the length of key, then
//	key               without 0x08: the ID of the key ring's key that encrypted the payload
//	                  (WithKeyRing); with 0x08: the subject whose data key encrypted it (WithDataKeys),
//	                  empty when the subject is the originator ID
//	payload           the JSON envelope, compressed if flagged, then encrypted if flagged
//	                  (for AES-GCM: nonce || ciphertext || tag)
//	crc      4 bytes  CRC-32C, big-endian (present only when checksummed)
//
// WithCipher writes format 1, which names no key; WithKeyRing and WithDataKeys write format 2. Every
// format is read forever. A format 2 header names no key of the key ring when the subject's data key
// encrypted the state: the ring key that wraps the data key is recorded in the key store, and changes
// when the data keys are rewrapped, which leaves the events as they are.
//
// The JSON envelope is {"t":"<timestamp, RFC 3339 with nanoseconds, UTC>","d":<event as JSON>}, or, for
// an event that names the type of the aggregate it belongs to (Event.OriginatorTopic, set by repositories
// on the first event of a stream), {"t":"…","a":"<the aggregate type's topic>","d":…}: the name costs
// bytes on one event per stream, not on every event. Decoding ignores fields between "t" and "d" that it
// does not know, as long as their values are JSON strings, so that later releases can add such fields
// without breaking this one. Releases before the "a" field matched the envelope exactly: they fail on the
// first event of a stream written with it (ErrMalformed), so roll every reader forward before the writers.
//
// Every event is protected against corruption and misplacement: an encrypted one by the GCM tag, a plain
// one by the CRC. Both cover the event's context: originator ID (16 bytes) || originator version (8
// bytes, big-endian) || header || topic as stored. That context is the additional data given to the
// cipher; the CRC is computed over the context followed by the payload. The CRC catches accidents (a
// damaged or misfiled record), not attackers: only encryption does that. The header includes a format 2
// state's key ID or subject, so neither can be changed unnoticed either.
type Mapper struct {
	reg        *Registry
	cipher     Cipher
	compress   bool
	quality    int
	minSize    int // payloads shorter than this are not compressed
	minSizeSet bool
	cipherSet  bool // WithCipher was given, perhaps with nil
	ring       *cipher.KeyRing
	ringSet    bool
	keys       *datakey.Keys
	keysSet    bool
	codec      Codec
	codecSet   bool
	crcTable   *crc32.Table

	buffers sync.Pool // *encodeBuffer
	scratch sync.Pool // *decodeBuffer
	writers sync.Pool // *brotli.Writer at quality
	readers sync.Pool // *decompressor
}

// New returns a Mapper for the types registered in r. Types may still be registered in r afterwards.
// It fails if r is nil or an option has an invalid value.
func New(r *Registry, opts ...Option) (*Mapper, error) {
	if r == nil {
		return nil, errors.New("mapper: new: nil registry")
	}
	m := &Mapper{reg: r, crcTable: crc32.MakeTable(crc32.Castagnoli)}
	option.Apply(m, opts)
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("mapper: new: %w", err)
	}
	m.buffers.New = func() any { return new(encodeBuffer) }
	m.scratch.New = func() any { return new(decodeBuffer) }
	m.writers.New = func() any {
		// Allocating a brotli writer costs far more than compressing a small event with it; pooling
		// lets its hash tables be reused.
		return brotli.NewWriterOptions(nil, brotli.WriterOptions{Quality: m.quality, LGWin: compressionWindow})
	}
	m.readers.New = func() any {
		d := new(decompressor)
		d.r = brotli.NewReader(&d.src)
		return d
	}
	return m, nil
}

// Registry returns the registry of the types the Mapper encodes and decodes, so that code holding a
// Mapper (a repository, say) can check that the types it needs are registered.
func (m *Mapper) Registry() *Registry { return m.reg }

// check validates the options' values and fills in the defaults that depend on them.
func (m *Mapper) check() error {
	if m.compress && (m.quality < brotli.BestSpeed || m.quality > brotli.BestCompression) {
		return fmt.Errorf("WithCompression(%d): brotli quality must be between %d and %d", m.quality, brotli.BestSpeed, brotli.BestCompression)
	}
	switch {
	case !m.codecSet:
		m.codec = DefaultCodec
	case m.codec == nil:
		return errors.New("WithCodec(nil): leave the option out for DefaultCodec")
	case isNil(m.codec):
		return fmt.Errorf("WithCodec((%T)(nil)): leave the option out for DefaultCodec", m.codec)
	}
	if m.minSize < 0 {
		return fmt.Errorf("WithCompressionMinSize(%d): must not be negative", m.minSize)
	}
	if m.compress && !m.minSizeSet {
		m.minSize = DefaultCompressionMinSize
	}
	if m.cipherSet {
		if m.cipher == nil {
			return errors.New("WithCipher(nil): leave the option out to store events unencrypted")
		}
		if isNil(m.cipher) {
			return fmt.Errorf("WithCipher((%T)(nil)): leave the option out to store events unencrypted", m.cipher)
		}
	}
	switch {
	case m.ringSet && m.ring == nil:
		return errors.New("WithKeyRing(nil): leave the option out to store events unencrypted")
	case m.ringSet && m.ring.Len() == 0:
		return errors.New("WithKeyRing: the key ring is empty")
	case m.keysSet && m.keys == nil:
		return errors.New("WithDataKeys(nil): leave the option out to store events unencrypted")
	case m.cipherSet && m.ringSet, m.cipherSet && m.keysSet:
		return errors.New("WithCipher and a key ring or data keys: give one (put the WithCipher key into the key ring; the ring reads what it encrypted)")
	}
	return nil
}

// isNil reports whether v is nil or holds a nil pointer.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// compressionWindow is the log2 of brotli's window. 16 (64 KiB) covers any event whole, so nothing is
// lost on events, while the writer's tables stay small; large snapshots lose a little ratio.
const compressionWindow = 16

const (
	formatVersion = 1

	flagCompressed = 0x01
	flagEncrypted  = 0x02
	flagChecksum   = 0x04
	knownFlags     = flagCompressed | flagEncrypted | flagChecksum

	checksumSize = 4
	// maxVarint bounds the schema version and raw length, so that they fit an int everywhere.
	maxVarint = math.MaxInt32

	timePrefix      = `{"t":"`
	dataPrefix      = `","d":`
	aggregatePrefix = `","a":`
	envelopeEnd     = '}'
)

// encodeBuffer holds the scratch space of one Encode, pooled so that a steady stream of events
// allocates little more than the stored state itself.
type encodeBuffer struct {
	json []byte       // the envelope
	z    bytes.Buffer // compressed payload
	hdr  []byte
	aad  []byte // the event's context: additional data or start of the checksum
}

// maxPooledBuffer is the capacity beyond which a buffer is left to the garbage collector rather than
// pooled, so that one large snapshot does not pin its buffers for good.
const maxPooledBuffer = 256 << 10

func (m *Mapper) putBuffer(b *encodeBuffer) {
	if cap(b.json) > maxPooledBuffer || b.z.Cap() > maxPooledBuffer {
		return
	}
	m.buffers.Put(b)
}

// decodeBuffer holds the scratch space of one Decode.
type decodeBuffer struct {
	aad   []byte // the event's context: additional data or start of the checksum
	plain []byte // decrypted payload
}

func (m *Mapper) putScratch(b *decodeBuffer) {
	if cap(b.plain) > maxPooledBuffer {
		b.plain = nil
	}
	m.scratch.Put(b)
}

// Encode turns e into a StoredEvent. e.Data must be a value of a registered type; a pointer is refused
// (an error wrapping aggregate.ErrInvalidEvent), since decoding gives values and an aggregate's Apply
// must see the same type live and replayed. e.Timestamp is stored in UTC to the nanosecond, and
// e.OriginatorTopic, when set, in the envelope. A panic in the event's JSON methods or in the cipher is
// returned as an error. Encode is EncodeContext with context.Background().
func (m *Mapper) Encode(e aggregate.Event) (es.StoredEvent, error) {
	return m.EncodeContext(context.Background(), e)
}

// EncodeContext is Encode with a context, which bounds the key store's work when the data key of the
// event's subject is not cached (WithDataKeys).
func (m *Mapper) EncodeContext(ctx context.Context, e aggregate.Event) (es.StoredEvent, error) {
	return named(func() (es.StoredEvent, error) { return m.encode(ctx, e) }, func(err error) error {
		return fmt.Errorf("mapper: encode %T for originator %s at version %d: %w", e.Data, e.OriginatorID, e.OriginatorVersion, err)
	})
}

// named returns what f returns, except that an error of f, or a panic in it, is the error that name
// makes of it (and the value is the zero value): the event's code and the cipher are not ours, and
// neither way may a failure leave the event it happened on unnamed.
func named[T any](f func() (T, error), name func(error) error) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
		if err != nil {
			var zero T
			v, err = zero, name(err)
		}
	}()
	return f()
}

func (m *Mapper) encode(ctx context.Context, e aggregate.Event) (es.StoredEvent, error) {
	et, err := m.reg.lookupType(e.Data)
	if err != nil {
		return es.StoredEvent{}, err
	}
	if reflect.TypeOf(e.Data) != et.typ { // the registry maps *E to E's entry too
		return es.StoredEvent{}, fmt.Errorf("%w: %T is a pointer; events are values (%v)", aggregate.ErrInvalidEvent, e.Data, et.typ)
	}
	ts := e.Timestamp.UTC()
	if y := ts.Year(); y < 0 || y > 9999 {
		return es.StoredEvent{}, fmt.Errorf("timestamp %v outside years 0 to 9999 (RFC 3339)", ts)
	}

	buf := m.buffers.Get().(*encodeBuffer)
	defer m.putBuffer(buf)

	// The envelope: {"t":"…","d":…} or {"t":"…","a":"…","d":…}; the codec writes the data straight
	// into the buffer.
	p := append(buf.json[:0], timePrefix...)
	p = ts.AppendFormat(p, time.RFC3339Nano)
	if e.OriginatorTopic != "" {
		name, err := json.Marshal(e.OriginatorTopic)
		if err != nil {
			return es.StoredEvent{}, fmt.Errorf("marshal originator topic: %w", err)
		}
		p = append(append(p, aggregatePrefix...), name...)
		p = append(p, dataPrefix[1:]...)
	} else {
		p = append(p, dataPrefix...)
	}
	p, err = m.codec.AppendMarshal(p, e.Data)
	if err != nil {
		return es.StoredEvent{}, fmt.Errorf("marshal: %w", err)
	}
	buf.json = append(p, envelopeEnd)
	payload := buf.json
	rawLen := len(payload)
	if rawLen > maxVarint {
		return es.StoredEvent{}, fmt.Errorf("payload of %d bytes is too large", rawLen)
	}

	var flags byte
	if m.compress && len(payload) >= m.minSize {
		if z, err := m.compressPayload(&buf.z, payload); err != nil {
			return es.StoredEvent{}, err
		} else if len(z)+uvarintLen(rawLen) < len(payload) {
			payload = z
			flags |= flagCompressed
		}
	}
	seal, ref := Cipher(nil), keyRef{format: formatVersion}
	if m.cipher != nil || m.ring != nil || m.keys != nil {
		flags |= flagEncrypted
		if seal, ref, err = m.sealFor(ctx, e); err != nil {
			return es.StoredEvent{}, err
		}
		if ref.subject {
			flags |= flagSubject
		}
	} else {
		flags |= flagChecksum
	}
	buf.hdr = appendHeader(buf.hdr[:0], flags, et.version, rawLen, ref)

	var state []byte
	buf.aad = appendContext(buf.aad[:0], e.OriginatorID, e.OriginatorVersion, buf.hdr, et.topic)
	if flags&flagEncrypted != 0 {
		if a, ok := seal.(appendCipher); ok {
			state = make([]byte, 0, len(buf.hdr)+len(payload)+a.Overhead())
			state, err = a.AppendEncrypt(append(state, buf.hdr...), payload, buf.aad)
		} else {
			var ct []byte
			if ct, err = seal.Encrypt(payload, buf.aad); err == nil {
				state = make([]byte, 0, len(buf.hdr)+len(ct))
				state = append(append(state, buf.hdr...), ct...)
			}
		}
		if err != nil {
			return es.StoredEvent{}, fmt.Errorf("encrypt: %w", err)
		}
	} else {
		state = make([]byte, 0, len(buf.hdr)+len(payload)+checksumSize)
		state = append(append(state, buf.hdr...), payload...)
		state = binary.BigEndian.AppendUint32(state, m.checksum(buf.aad, payload))
	}
	return es.StoredEvent{
		OriginatorID:      e.OriginatorID,
		OriginatorVersion: e.OriginatorVersion,
		Topic:             et.topic,
		State:             state,
	}, nil
}

// Decode turns a StoredEvent back into an event whose Data is a value (not a pointer) of the type
// registered for its topic, upcast to the current schema version. It reads any state Encode writes,
// whatever this Mapper's own settings, except that encrypted events need a cipher.
//
// Any failure, on any input, is a *DecodeError naming the event and wrapping the cause; so is a panic in
// the event type's JSON methods, an upcaster or the cipher. Decode is DecodeContext with
// context.Background().
func (m *Mapper) Decode(s es.StoredEvent) (aggregate.Event, error) {
	return m.DecodeContext(context.Background(), s)
}

// DecodeContext is Decode with a context, which bounds the key store's work when the data key of the
// event's subject is not cached (WithDataKeys).
func (m *Mapper) DecodeContext(ctx context.Context, s es.StoredEvent) (aggregate.Event, error) {
	return named(func() (aggregate.Event, error) { return m.decode(ctx, s) }, func(err error) error {
		return &DecodeError{Topic: s.Topic, OriginatorID: s.OriginatorID, OriginatorVersion: s.OriginatorVersion, Err: err}
	})
}

func (m *Mapper) decode(ctx context.Context, s es.StoredEvent) (aggregate.Event, error) {
	et, ok := m.reg.lookupTopic(s.Topic)
	if !ok {
		return aggregate.Event{}, ErrUnknownTopic
	}
	buf := m.scratch.Get().(*decodeBuffer)
	defer m.putScratch(buf)
	h, payload, err := m.open(ctx, s, buf)
	if err != nil {
		return aggregate.Event{}, err
	}
	ts, originatorTopic, data, err := parseEnvelope(payload, m.reg.internTopic)
	if err != nil {
		return aggregate.Event{}, err
	}
	var v any
	switch {
	case h.schema == et.version:
		v, err = et.decode(m.codec, data)
	case h.schema > et.version:
		return aggregate.Event{}, fmt.Errorf("%w: stored at version %d, %v is at version %d", ErrSchemaVersion, h.schema, et.typ, et.version)
	default:
		v, err = et.upcast(m.codec, data, h.schema)
	}
	if err != nil {
		return aggregate.Event{}, fmt.Errorf("unmarshal %v: %w", et.typ, err)
	}
	return aggregate.Event{
		OriginatorID:      s.OriginatorID,
		OriginatorVersion: s.OriginatorVersion,
		Timestamp:         ts,
		OriginatorTopic:   originatorTopic,
		Data:              v,
	}, nil
}

// open checks the state of s against its event, decrypts and decompresses it, and returns its header
// and its payload, the JSON envelope. The payload may live in buf until buf is pooled again.
func (m *Mapper) open(ctx context.Context, s es.StoredEvent, buf *decodeBuffer) (header, []byte, error) {
	h, err := parseHeader(s.State)
	if err != nil {
		return header{}, nil, err
	}
	hdr, payload := s.State[:h.size], s.State[h.size:]
	buf.aad = appendContext(buf.aad[:0], s.OriginatorID, s.OriginatorVersion, hdr, s.Topic)
	if h.flags&flagEncrypted != 0 {
		c, err := m.openFor(ctx, s, h)
		if err != nil {
			return header{}, nil, err
		}
		if a, ok := c.(appendCipher); ok {
			// The plaintext lives in the pooled buffer only until it is unmarshalled, which copies.
			payload, err = a.AppendDecrypt(buf.plain[:0], payload, buf.aad)
			buf.plain = payload
		} else {
			payload, err = c.Decrypt(payload, buf.aad)
		}
		if err != nil {
			return header{}, nil, fmt.Errorf("decrypt: %w", err)
		}
	} else {
		if len(payload) < checksumSize {
			return header{}, nil, fmt.Errorf("%w: %d bytes after the header, too short for the checksum", ErrMalformed, len(payload))
		}
		var sum []byte
		payload, sum = payload[:len(payload)-checksumSize], payload[len(payload)-checksumSize:]
		if m.checksum(buf.aad, payload) != binary.BigEndian.Uint32(sum) {
			return header{}, nil, fmt.Errorf("%w: checksum mismatch: the state is damaged or belongs to another event", ErrMalformed)
		}
	}
	if h.flags&flagCompressed != 0 {
		if payload, err = m.decompress(payload, h.rawLen); err != nil {
			return header{}, nil, err
		}
	}
	return h, payload, nil
}

// upcast decodes data, stored at schema version from, into a generic object, runs the upcasters from
// there to the current version, and unmarshals the result with c.
func (et *eventType) upcast(c Codec, data []byte, from int) (any, error) {
	for v := from; v < et.version; v++ {
		if et.upcasters[v-1] == nil {
			return nil, fmt.Errorf("%w: %v stored at schema version %d, no upcaster from version %d to %d",
				ErrMissingUpcaster, et.typ, from, v, v+1)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // integers beyond 2^53 would lose digits as float64
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the event object", ErrMalformed)
	}
	if obj == nil {
		return nil, fmt.Errorf("%w: event data is null, not an object", ErrMalformed)
	}
	for v := from; v < et.version; v++ {
		if err := et.upcasters[v-1](obj); err != nil {
			return nil, fmt.Errorf("upcast from schema version %d to %d: %w", v, v+1, err)
		}
	}
	upcast, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("marshal upcast object: %w", err)
	}
	return et.decode(c, upcast)
}

// header is the parsed header of stored state.
type header struct {
	format byte
	flags  byte
	schema int
	rawLen int    // payload length before compression, when compressed
	key    string // format 2: the ring key's ID, or the subject ("" for the originator) with flagSubject
	size   int    // header length in bytes
}

// appendHeader appends the header of ref's format: format 2 (named key) or format 1.
func appendHeader(dst []byte, flags byte, schema, rawLen int, ref keyRef) []byte {
	dst = append(dst, ref.format, flags)
	dst = binary.AppendUvarint(dst, uint64(schema))
	if flags&flagCompressed != 0 {
		dst = binary.AppendUvarint(dst, uint64(rawLen))
	}
	if ref.format == formatKeyed {
		dst = appendKeyRef(dst, ref)
	}
	return dst
}

func parseHeader(state []byte) (header, error) {
	if len(state) < 3 {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than any header", ErrMalformed, len(state))
	}
	h := header{format: state[0], flags: state[1], size: 2}
	switch h.format {
	case formatVersion:
		if h.flags&^knownFlags != 0 || (h.flags&flagEncrypted != 0) == (h.flags&flagChecksum != 0) {
			return header{}, fmt.Errorf("%w: invalid flags %#02x", ErrMalformed, h.flags)
		}
	case formatKeyed:
		// Format 2 exists to name the key: its state is always encrypted.
		if h.flags&^(flagCompressed|flagEncrypted|flagSubject) != 0 || h.flags&flagEncrypted == 0 {
			return header{}, fmt.Errorf("%w: invalid flags %#02x for format 2", ErrMalformed, h.flags)
		}
	default:
		return header{}, fmt.Errorf("%w: unknown format version %d", ErrMalformed, h.format)
	}
	var err error
	if h.schema, err = readUvarint(state, &h.size, "schema version"); err != nil {
		return header{}, err
	}
	if h.schema < 1 {
		return header{}, fmt.Errorf("%w: schema version 0", ErrMalformed)
	}
	if h.flags&flagCompressed != 0 {
		if h.rawLen, err = readUvarint(state, &h.size, "uncompressed length"); err != nil {
			return header{}, err
		}
	}
	if h.format == formatKeyed {
		if err := parseKeyRef(state, &h); err != nil {
			return header{}, err
		}
	}
	return h, nil
}

// readUvarint reads a uvarint of at most maxVarint at state[*pos:] and advances *pos past it.
func readUvarint(state []byte, pos *int, what string) (int, error) {
	x, n := binary.Uvarint(state[*pos:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: truncated or overlong %s", ErrMalformed, what)
	}
	if x > maxVarint {
		return 0, fmt.Errorf("%w: %s %d out of range", ErrMalformed, what, x)
	}
	*pos += n
	return int(x), nil
}

func uvarintLen(x int) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// appendContext appends what binds stored state to its event: originator ID, version, header and the
// topic as stored. The topic comes last, where its length needs no prefix; the header delimits itself.
func appendContext(dst []byte, id uuid.UUID, version int64, header []byte, topic string) []byte {
	dst = append(dst, id[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(version))
	dst = append(dst, header...)
	return append(dst, topic...)
}

// checksum is the CRC-32C of the event's context (see appendContext) followed by its payload.
func (m *Mapper) checksum(context, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, m.crcTable, context), m.crcTable, payload)
}

// parseEnvelope splits {"t":"…","d":…} or {"t":"…","a":"…","d":…} into the timestamp, the originator
// topic ("a", "" when absent) and the raw JSON of the data. The layout is fixed by the format version,
// so it is matched exactly rather than parsed as general JSON, except that fields between "t" and "d"
// with string values are skipped when unknown; the data is validated when it is unmarshalled.
//
// intern returns the string of a topic's bytes when it has one already, so that reading the name of a
// registered aggregate type allocates nothing.
func parseEnvelope(p []byte, intern func([]byte) (string, bool)) (ts time.Time, originatorTopic string, data []byte, err error) {
	rest, ok := bytes.CutPrefix(p, []byte(timePrefix))
	if !ok {
		return time.Time{}, "", nil, fmt.Errorf("%w: payload does not start with %s", ErrMalformed, timePrefix)
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return time.Time{}, "", nil, fmt.Errorf("%w: unterminated timestamp", ErrMalformed)
	}
	if err = ts.UnmarshalText(rest[:i]); err != nil {
		// UnmarshalText reads strict RFC 3339, which is what Encode writes, without copying the bytes
		// to a string; time.Parse reads a little more, as this function always has.
		if ts, err = time.Parse(time.RFC3339Nano, string(rest[:i])); err != nil {
			return time.Time{}, "", nil, fmt.Errorf("%w: timestamp: %w", ErrMalformed, err)
		}
	}
	rest = rest[i:]
	for {
		if data, ok = bytes.CutPrefix(rest, []byte(dataPrefix)); ok {
			break
		}
		// Another field: ","key":"value" with a string value.
		key, value, after, ok := cutStringField(rest)
		if !ok {
			return time.Time{}, "", nil, fmt.Errorf("%w: payload is not a {\"t\":…,\"d\":…} envelope", ErrMalformed)
		}
		if key == "a" {
			if originatorTopic, err = unquote(value, intern); err != nil {
				return time.Time{}, "", nil, fmt.Errorf("%w: originator topic: %w", ErrMalformed, err)
			}
		}
		rest = after
	}
	if len(data) < 2 || data[len(data)-1] != envelopeEnd {
		return time.Time{}, "", nil, fmt.Errorf("%w: payload is not a {\"t\":…,\"d\":…} envelope", ErrMalformed)
	}
	return ts.UTC(), originatorTopic, data[:len(data)-1], nil
}

// cutStringField reads `","key":"value"` (up to the value's closing quote, which stays in after as the
// next field's opening) from the start of p; value is the quoted JSON string.
func cutStringField(p []byte) (key string, value, after []byte, ok bool) {
	rest, ok := bytes.CutPrefix(p, []byte(`","`))
	if !ok {
		return "", nil, nil, false
	}
	k, rest, ok := bytes.Cut(rest, []byte(`":"`))
	if !ok || len(k) == 0 || bytes.ContainsAny(k, `"\`) {
		return "", nil, nil, false
	}
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '\\':
			i++
		case '"':
			// value is the string with its quotes; the closing quote also begins the next `","`.
			return string(k), p[len(p)-len(rest)-1 : len(p)-len(rest)+i+1], rest[i:], true
		}
	}
	return "", nil, nil, false
}

// unquote decodes a quoted JSON string; plain ones, the usual case, without encoding/json, and through
// intern.
func unquote(q []byte, intern func([]byte) (string, bool)) (string, error) {
	if plain := q[1 : len(q)-1]; !bytes.ContainsAny(plain, `\"`) {
		if s, ok := intern(plain); ok {
			return s, nil
		}
		return string(plain), nil
	}
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}

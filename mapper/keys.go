package mapper

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
)

// WithKeyRing encrypts every payload with the current key of ring and records the key's ID in the
// stored state's header, so that keys can be rotated: add a key to the ring, and new events are
// encrypted with it while the older keys go on decrypting what they encrypted. Decoding names the key
// ID of an event whose key is not in the ring (cipher.ErrUnknownKey). State written with WithCipher,
// which names no key, is decrypted with whichever key of the ring decrypts it.
//
// Given with WithDataKeys, the ring encrypts nothing: it reads the state that it (or WithCipher, its key
// in the ring) wrote before data keys were turned on, in place of the ring that wraps the data keys.
// Data keys wrapped by a key management service need it for such state, since they have no ring.
//
// New fails if ring is nil or empty, or if WithCipher is given too.
func WithKeyRing(ring *cipher.KeyRing) Option {
	return func(m *Mapper) {
		m.ring = ring
		m.ringSet = true
	}
}

// WithDataKeys encrypts the payload of every event and snapshot with the data key of its subject, made
// on first use and kept by keys (see package datakey), and records the subject in the stored state's
// header: forgetting the subject (keys.Forget) makes all of them unreadable. The subject is the
// event's originator ID in its text form unless the event's data names one (DataSubjectNamer).
//
// State written with WithCipher or WithKeyRing stays readable, so data keys can be turned on for an
// existing application: through the ring of WithKeyRing when it is given too, else through the key
// ring that wraps the data keys (keys.Ring; data keys wrapped by a key management service have none).
// Decoding the state of a forgotten subject fails with an error matching datakey.ErrForgotten that
// names the subject.
//
// New fails if keys is nil, or if WithCipher is given too.
func WithDataKeys(keys *datakey.Keys) Option {
	return func(m *Mapper) {
		m.keys = keys
		m.keysSet = true
	}
}

// DataSubjectNamer is implemented by event types (and aggregate types, for their snapshots) whose data
// belongs to a subject other than their aggregate, such as a customer whose data spans several
// aggregates. With WithDataKeys, such events are encrypted with the data key of DataSubject(), so that
// forgetting the customer forgets all of them.
//
// Declare DataSubject on the value receiver: events and snapshots are stored as values. An aggregate
// whose events name a subject should name the same subject for its snapshots, or forgetting the
// subject would leave the snapshots readable. The subject must be an opaque identifier (see
// datakey.ValidateSubject), never personal data: it is stored in plain text.
type DataSubjectNamer interface {
	DataSubject() string
}

var dataSubjectNamer = reflect.TypeFor[DataSubjectNamer]()

const (
	// formatKeyed is the format version whose header names the key that encrypted the payload.
	formatKeyed = 2
	// flagSubject marks format 2 state encrypted with a subject's data key; its key field is the subject.
	flagSubject = 0x08
)

// keyRef is what a format 2 header names: a ring key's ID, or a subject ("" for the originator).
type keyRef struct {
	format  byte
	subject bool
	name    string
}

// sealFor chooses the cipher that encrypts e and what the header must name to find it again.
func (m *Mapper) sealFor(ctx context.Context, e aggregate.Event) (Cipher, keyRef, error) {
	switch {
	case m.keys != nil:
		subject, named, err := m.subjectOf(e)
		if err != nil {
			return nil, keyRef{}, err
		}
		c, err := m.keys.GetOrCreate(ctx, subject)
		if err != nil {
			return nil, keyRef{}, err
		}
		ref := keyRef{format: formatKeyed, subject: true}
		if named && subject != e.OriginatorID.String() {
			ref.name = subject // the originator's own ID is implied, to keep headers short
		}
		return c, ref, nil
	case m.ring != nil:
		id, c, err := m.ring.Current()
		if err != nil {
			return nil, keyRef{}, err
		}
		return c, keyRef{format: formatKeyed, name: id}, nil
	default:
		return m.cipher, keyRef{format: formatVersion}, nil
	}
}

// subjectOf returns the subject of e's data, and whether the data names it: the subject it names, or
// its originator ID.
func (m *Mapper) subjectOf(e aggregate.Event) (subject string, named bool, err error) {
	n, ok := e.Data.(DataSubjectNamer)
	if !ok {
		if t := reflect.TypeOf(e.Data); t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(dataSubjectNamer) {
			return "", false, fmt.Errorf("%v declares DataSubject on its pointer receiver, so its values name no subject: declare it on the value receiver", t)
		}
		return e.OriginatorID.String(), false, nil
	}
	defer func() {
		if r := recover(); r != nil {
			subject, named, err = "", false, fmt.Errorf("DataSubject of %T panicked: %v", e.Data, r)
		}
	}()
	subject = n.DataSubject()
	if err := datakey.ValidateSubject(subject); err != nil {
		return "", false, fmt.Errorf("DataSubject of %T: %w", e.Data, err)
	}
	return subject, true, nil
}

// openFor returns the cipher that decrypts the state of s, whose header is h.
func (m *Mapper) openFor(ctx context.Context, s es.StoredEvent, h header) (Cipher, error) {
	ring := m.ring
	if ring == nil && m.keys != nil {
		ring = m.keys.Ring()
	}
	switch {
	case h.format == formatVersion && m.cipher != nil:
		return m.cipher, nil
	case h.format == formatVersion && ring != nil:
		return anyKey{ring}, nil
	case h.format == formatVersion:
		return nil, ErrNoCipher
	case h.flags&flagSubject != 0:
		subject := h.key
		if subject == "" {
			subject = s.OriginatorID.String()
		}
		if m.keys == nil {
			return nil, fmt.Errorf("%w: it is encrypted with the data key of subject %q, and the mapper has no data keys (WithDataKeys)", ErrNoCipher, subject)
		}
		return m.keys.Get(ctx, subject)
	case ring == nil && m.keys != nil:
		return nil, fmt.Errorf("%w: it is encrypted with key ring key %q, and the mapper's data keys (WithDataKeys) are not wrapped by a key ring: give the ring that wrote it with WithKeyRing", ErrNoCipher, h.key)
	case ring == nil:
		return nil, fmt.Errorf("%w: it is encrypted with key %q, and the mapper has no key ring (WithKeyRing)", ErrNoCipher, h.key)
	default:
		return ring.Key(h.key)
	}
}

// anyKey decrypts format 1 state, which names no key, with whichever key of the ring decrypts it.
// Trying costs one failed authentication per key tried; format 1 state is written only by WithCipher.
type anyKey struct{ ring *cipher.KeyRing }

func (a anyKey) Encrypt([]byte, []byte) ([]byte, error) {
	return nil, errors.New("a key must be chosen to encrypt")
}

func (a anyKey) Decrypt(ciphertext, additionalData []byte) ([]byte, error) {
	ids := a.ring.IDs()
	for _, id := range ids {
		c, err := a.ring.Key(id)
		if err != nil {
			continue // removed meanwhile
		}
		if p, err := c.Decrypt(ciphertext, additionalData); err == nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: the state names no key (format 1), and no key of the ring (%d keys) decrypts it", cipher.ErrDecrypt, len(ids))
}

// appendKeyRef appends the key field of a format 2 header.
func appendKeyRef(dst []byte, ref keyRef) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ref.name)))
	return append(dst, ref.name...)
}

// parseKeyRef reads the key field of a format 2 header into h.
func parseKeyRef(state []byte, h *header) error {
	n, err := readUvarint(state, &h.size, "key field length")
	if err != nil {
		return err
	}
	if n > len(state)-h.size {
		return fmt.Errorf("%w: key field of %d bytes, %d left", ErrMalformed, n, len(state)-h.size)
	}
	h.key = string(state[h.size : h.size+n])
	h.size += n
	if h.flags&flagSubject != 0 {
		if h.key != "" {
			if err := datakey.ValidateSubject(h.key); err != nil {
				return fmt.Errorf("%w: subject in the header: %w", ErrMalformed, err)
			}
		}
		return nil
	}
	if err := cipher.ValidateKeyID(h.key); err != nil {
		return fmt.Errorf("%w: key ID in the header: %w", ErrMalformed, err)
	}
	return nil
}

// StateInfo describes stored state from its header alone, without keys: what esctl shows.
type StateInfo struct {
	Format        int    // format version: 1, or 2 when the state names its key
	SchemaVersion int    // schema version of the event type when it was written
	Compressed    bool   // brotli
	Encrypted     bool   // AES-GCM
	KeyID         string // format 2: the ID of the ring key that encrypted it; "" otherwise
	Subject       string // format 2: the subject whose data key encrypted it; "" otherwise
}

// Inspect reads the header of s's state. It checks neither the checksum nor the encryption: only
// Decode tells whether the state is intact.
func Inspect(s es.StoredEvent) (StateInfo, error) {
	h, err := parseHeader(s.State)
	if err != nil {
		return StateInfo{}, fmt.Errorf("mapper: inspect event %q of originator %s at version %d: %w",
			s.Topic, s.OriginatorID, s.OriginatorVersion, err)
	}
	info := StateInfo{
		Format:        int(h.format),
		SchemaVersion: h.schema,
		Compressed:    h.flags&flagCompressed != 0,
		Encrypted:     h.flags&flagEncrypted != 0,
	}
	switch {
	case h.format != formatKeyed:
	case h.flags&flagSubject == 0:
		info.KeyID = h.key
	case h.key == "":
		info.Subject = s.OriginatorID.String()
	default:
		info.Subject = h.key
	}
	return info, nil
}

// Forgets returns how many subjects the mapper's data keys have forgotten in this process (0 without
// WithDataKeys). A cache of decoded state records it when it decodes, and drops what it decoded before
// the number changed, since that may belong to a subject forgotten since.
func (m *Mapper) Forgets() uint64 {
	if m.keys == nil {
		return 0
	}
	return m.keys.Forgets()
}

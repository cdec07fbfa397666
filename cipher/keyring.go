package cipher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxKeyIDLength bounds a key ID, which is stored in the header of every event it encrypts. It is below
// the length of the shortest base64 key (24 characters), so that an ID is never a key written in the
// wrong place, and errors can name IDs safely.
const MaxKeyIDLength = 23

var (
	// ErrUnknownKey is wrapped by the error for a key ID that is not in a KeyRing: the key that
	// encrypted something has been removed from the ring, or was never added to this process's ring.
	ErrUnknownKey = errors.New("cipher: key not in the key ring")
	// ErrKeyRing is wrapped by the errors of KeyRing's constructors and methods for invalid input: a
	// malformed key ring text, an invalid or duplicate key ID, removing the current key.
	ErrKeyRing = errors.New("cipher: invalid key ring")
)

// KeyRing holds any number of AES keys by ID. One of them, the current key, encrypts; all of them
// decrypt what they encrypted. Rotating keys is adding a new key, which becomes the current one: what
// the older keys encrypted stays readable as long as they stay in the ring.
//
// A KeyRing is safe for concurrent use: keys may be added and removed while other goroutines encrypt
// and decrypt. It never reveals its keys: String, GoString and LogValue give the IDs only, and no
// error of this package contains key material.
type KeyRing struct {
	mu    sync.Mutex // serialises changes
	state atomic.Pointer[ringState]
}

// ringState is one immutable version of a KeyRing's contents, so that reads take no lock.
type ringState struct {
	keys    map[string]*AESGCM
	ids     []string // in the order the keys were added; the last is current
	current string
}

// NewKeyRing returns an empty KeyRing, as the zero KeyRing is; Add keys to it before use.
func NewKeyRing() *KeyRing { return new(KeyRing) }

// ParseKeyRing reads a key ring from its text form: entries "ID:KEY" separated by commas, where KEY is a
// key in standard base64 (as made by GenerateKey) and ID names it (see ValidateKeyID). The last entry is
// the current key, so rotating is appending a new entry:
//
//	1:q0J7…=,2:Hs9V…=
//
// White space around entries is ignored, so the text may be spread over lines. The error names the
// entry (by position and, when it has one, by ID) and never contains key material.
func ParseKeyRing(s string) (*KeyRing, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: no keys (want ID:BASE64,ID:BASE64,…)", ErrKeyRing)
	}
	r := NewKeyRing()
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("%w: entry %d is empty", ErrKeyRing, i+1)
		}
		id, key, ok := strings.Cut(entry, ":")
		if !ok {
			// The entry may be a bare key: do not repeat it.
			return nil, fmt.Errorf("%w: entry %d has no key ID (want ID:BASE64)", ErrKeyRing, i+1)
		}
		id = strings.TrimSpace(id)
		if err := ValidateKeyID(id); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		b, err := ParseKey(key)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %w", ErrKeyRing, id, err)
		}
		err = r.Add(id, b)
		clear(b)
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// ValidateKeyID accepts IDs of 1 to MaxKeyIDLength ASCII letters, digits, '.', '_' and '-': they appear
// in configuration text, headers, logs and database columns, and need no quoting anywhere. Its error
// does not repeat an invalid ID, which may be a key given in the wrong place.
func ValidateKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLength {
		return fmt.Errorf("%w: key ID of %d bytes: must be 1 to %d", ErrKeyRing, len(id), MaxKeyIDLength)
	}
	for i, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: key ID has a character other than letters, digits, '.', '_' and '-' at byte %d", ErrKeyRing, i)
		}
	}
	return nil
}

// Add puts key (16, 24 or 32 bytes) into the ring under id and makes it the current key: this is key
// rotation. It fails if id is invalid or taken already. The ring keeps its own copy of the key.
func (r *KeyRing) Add(id string, key []byte) error {
	if err := ValidateKeyID(id); err != nil {
		return err
	}
	c, err := New(key)
	if err != nil {
		return fmt.Errorf("key %q: %w", id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	if _, ok := old.keys[id]; ok {
		return fmt.Errorf("%w: key ID %q is in the ring already", ErrKeyRing, id)
	}
	next := &ringState{keys: make(map[string]*AESGCM, len(old.keys)+1), ids: append(slices.Clip(old.ids), id), current: id}
	for k, v := range old.keys {
		next.keys[k] = v
	}
	next.keys[id] = c
	r.state.Store(next)
	return nil
}

// Remove takes the key id out of the ring, once nothing it encrypted needs to be read any more. The
// current key cannot be removed (add another first).
func (r *KeyRing) Remove(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	if _, ok := old.keys[id]; !ok {
		return old.unknown(id)
	}
	if id == old.current {
		return fmt.Errorf("%w: key %q is the current key: add a new key before removing it", ErrKeyRing, id)
	}
	next := &ringState{keys: make(map[string]*AESGCM, len(old.keys)-1), current: old.current}
	for _, k := range old.ids {
		if k != id {
			next.ids = append(next.ids, k)
			next.keys[k] = old.keys[k]
		}
	}
	r.state.Store(next)
	return nil
}

// Current returns the ID and the cipher of the current key. It fails with ErrUnknownKey when the ring
// is empty.
func (r *KeyRing) Current() (string, *AESGCM, error) {
	s := r.load()
	if s.current == "" {
		return "", nil, fmt.Errorf("%w: the key ring is empty", ErrUnknownKey)
	}
	return s.current, s.keys[s.current], nil
}

// Key returns the cipher of the key id. Its error wraps ErrUnknownKey and names id and the IDs the ring
// has.
func (r *KeyRing) Key(id string) (*AESGCM, error) {
	s := r.load()
	if c, ok := s.keys[id]; ok {
		return c, nil
	}
	return nil, s.unknown(id)
}

// WrapKey encrypts key (a data key, to be stored) with the ring's current key and returns the key's
// ID with the wrapped key. It authenticates additionalData followed by the ID, so that a wrapped key
// relabelled with another ID of the ring fails to unwrap, even where two IDs hold the same key. With
// UnwrapKey and CurrentKeyID it makes the ring a datakey.Wrapper whose key-encryption keys are held in
// this process. It fails with ErrUnknownKey when the ring is empty; ctx is not used.
func (r *KeyRing) WrapKey(_ context.Context, key, additionalData []byte) (id string, wrapped []byte, err error) {
	id, c, err := r.Current()
	if err != nil {
		return "", nil, err
	}
	wrapped, err = c.Encrypt(key, keyContext(additionalData, id))
	if err != nil {
		return "", nil, err
	}
	return id, wrapped, nil
}

// UnwrapKey decrypts a key wrapped by WrapKey with the ring key id, given the same additionalData. It
// fails with ErrUnknownKey when the ring has no key id, and with ErrDecrypt when wrapped was changed,
// was wrapped by another key, or additionalData differs. ctx is not used.
func (r *KeyRing) UnwrapKey(_ context.Context, id string, wrapped, additionalData []byte) ([]byte, error) {
	c, err := r.Key(id)
	if err != nil {
		return nil, err
	}
	return c.Decrypt(wrapped, keyContext(additionalData, id))
}

// CurrentKeyID returns the ID of the ring's current key, the one WrapKey uses. It fails with
// ErrUnknownKey when the ring is empty. ctx is not used.
func (r *KeyRing) CurrentKeyID(context.Context) (string, error) {
	id, _, err := r.Current()
	return id, err
}

// keyContext is the additional data of a wrapped key: the caller's, then the ring key's ID.
func keyContext(additionalData []byte, id string) []byte {
	b := make([]byte, 0, len(additionalData)+len(id))
	return append(append(b, additionalData...), id...)
}

// IDs returns the IDs of the ring's keys in the order they were added; the last is the current key.
func (r *KeyRing) IDs() []string { return slices.Clone(r.load().ids) }

// Len returns the number of keys in the ring.
func (r *KeyRing) Len() int { return len(r.load().ids) }

// String describes the ring by its key IDs; it never shows keys.
func (r *KeyRing) String() string {
	s := r.load()
	return fmt.Sprintf("KeyRing(keys %s; current %q)", quoteIDs(s.ids), s.current)
}

// GoString is String, so that %#v does not print the keys either.
func (r *KeyRing) GoString() string { return r.String() }

// LogValue logs the key IDs only.
func (r *KeyRing) LogValue() slog.Value {
	s := r.load()
	return slog.GroupValue(slog.Any("ids", slices.Clone(s.ids)), slog.String("current", s.current))
}

func (r *KeyRing) load() *ringState {
	if s := r.state.Load(); s != nil {
		return s
	}
	return &ringState{} // the zero KeyRing is empty
}

func (s *ringState) unknown(id string) error {
	if len(s.ids) == 0 {
		return fmt.Errorf("%w: no key %q: the key ring is empty", ErrUnknownKey, id)
	}
	return fmt.Errorf("%w: no key %q (the ring has %s)", ErrUnknownKey, id, quoteIDs(s.ids))
}

func quoteIDs(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	return "[" + strings.Join(q, " ") + "]"
}

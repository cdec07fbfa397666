package datakey

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/eventsourcing-go/eventsourcing/cipher"
)

// Wrapper wraps (encrypts) and unwraps data keys with key-encryption keys (KEKs) that it holds under
// IDs. A *cipher.KeyRing is one, holding its keys in this process; an adapter of a key management
// service is another, whose KEKs never leave the service (see the package documentation, "Key
// management services").
//
// Keys calls its Wrapper only when a data key is not in its cache: when it makes a subject's data key,
// when it reads one it has not cached (or cached longer ago than WithCacheMaxAge), and in Rewrap. The
// methods must be safe for concurrent use, honour ctx, keep neither the byte slices they are given nor
// return ones they keep, and never put key material into their errors; Keys wraps their errors with
// the subject and the KEK ID.
type Wrapper interface {
	// WrapKey encrypts key, a new data key, with the current KEK, authenticating aad with it, and
	// returns the KEK's ID and the wrapped key. The ID is stored with the wrapped key and passed to
	// UnwrapKey; it appears in logs and errors, so it must not be secret. It must not be empty.
	WrapKey(ctx context.Context, key, aad []byte) (kekID string, wrapped []byte, err error)
	// UnwrapKey decrypts wrapped with the KEK kekID, given the aad it was wrapped with, and returns the
	// data key. It fails with an error wrapping cipher.ErrUnknownKey when it has no KEK kekID (or may
	// not use it), and with one wrapping cipher.ErrDecrypt when wrapped was changed, aad differs, or
	// wrapped was not wrapped by kekID, so that an entry relabelled with another KEK's ID is detected.
	// Rewrap passes over the entries that fail so and stops at any other error (the service cannot be
	// reached, ctx is done).
	UnwrapKey(ctx context.Context, kekID string, wrapped, aad []byte) ([]byte, error)
	// CurrentKeyID returns the ID that WrapKey returns now. Rewrap leaves the data keys wrapped by it
	// as they are.
	CurrentKeyID(ctx context.Context) (string, error)
}

var _ Wrapper = (*cipher.KeyRing)(nil)

// wrapLabel starts the additional data of every wrapped key. It keeps wrapped keys and event states,
// which ring keys may both encrypt, apart: its byte 24 ('y') can never be the format byte that the
// stored state's header has at that place in an event's additional data.
const wrapLabel = "eventsourcing-go data key"

// wrapContext is the additional data that binds a wrapped data key to its subject: the label, then
// the subject with its length. A cipher.KeyRing appends its key's ID, which makes it, byte for byte,
// the additional data of the data keys wrapped before Wrapper existed: the label, the subject with its
// length, and the key ID.
func wrapContext(subject string) []byte {
	b := make([]byte, 0, len(wrapLabel)+binary.MaxVarintLen64+len(subject))
	b = append(b, wrapLabel...)
	b = binary.AppendUvarint(b, uint64(len(subject)))
	return append(b, subject...)
}

// errKeySize is wrapped by the error for an unwrapped data key of the wrong length: an entry that is
// not a data key, which Rewrap passes over like a changed one.
var errKeySize = errors.New("not a data key")

// entryFault reports whether err, of unwrapping an entry, is the entry's own fault (its KEK unknown,
// the entry changed), so that Rewrap may pass over the entry and go on with the others.
func entryFault(err error) bool {
	return errors.Is(err, cipher.ErrUnknownKey) || errors.Is(err, cipher.ErrDecrypt) || errors.Is(err, errKeySize)
}

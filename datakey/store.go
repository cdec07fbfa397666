package datakey

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxSubjectLength bounds a subject, which is stored in the header of every event of the subject.
const MaxSubjectLength = 255

var (
	// ErrForgotten is what errors.Is finds in the error of every use of a forgotten subject's data key:
	// decoding an event or snapshot of the subject, or encoding a new one. The error is a
	// *ForgottenError, which names the subject.
	ErrForgotten = errors.New("datakey: subject forgotten")
	// ErrNoKey is wrapped by Store.Get's error for a subject that has no entry, and by Keys.Get's: the
	// subject never had a data key in this store (or its entry was deleted outright, or the store is
	// not the one the events were written with).
	ErrNoKey = errors.New("datakey: no data key")
	// ErrInvalidSubject is wrapped by the error for a subject that ValidateSubject refuses.
	ErrInvalidSubject = errors.New("datakey: invalid subject")
)

// ForgottenError is the error for a forgotten subject. errors.Is(err, ErrForgotten) matches it, and
// errors.As gives the subject, for example to delete the subject's rows from a read model.
type ForgottenError struct {
	Subject string    // the forgotten subject
	At      time.Time // when it was forgotten, as the key store recorded it
}

// Error names the subject and the time it was forgotten.
func (e *ForgottenError) Error() string {
	return fmt.Sprintf("datakey: subject %q was forgotten at %s: its data key is deleted and its data cannot be decrypted",
		e.Subject, e.At.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrForgotten) true.
func (e *ForgottenError) Is(target error) bool { return target == ErrForgotten }

// ValidateSubject accepts subjects of 1 to MaxSubjectLength bytes of UTF-8 without control characters.
//
// Subjects are stored in plain text (in event headers and in the key store) and outlive forgetting, so
// a subject must be an opaque identifier, such as a customer's UUID, never personal data itself (a name
// or an e-mail address).
func ValidateSubject(s string) error {
	if s == "" || len(s) > MaxSubjectLength {
		return fmt.Errorf("%w: %d bytes: must be 1 to %d", ErrInvalidSubject, len(s), MaxSubjectLength)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: not UTF-8", ErrInvalidSubject)
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: control character at byte %d", ErrInvalidSubject, i)
		}
	}
	return nil
}

// Entry is what a Store keeps for a subject: its data key wrapped (encrypted) by a key-encryption key
// (a key of the key ring, or of a key management service), or, once the subject is forgotten, a
// tombstone without key material.
type Entry struct {
	Subject string
	// KeyID is the ID of the key-encryption key that wrapped the data key, as the Wrapper named it; ""
	// in a tombstone.
	KeyID string
	// Wrapped is the data key as the Wrapper wrapped it, authenticated together with Subject and bound
	// to KeyID, so that an entry changed, copied to another subject or relabelled is detected; nil in a
	// tombstone. A key ring's is the data key encrypted with AES-GCM under the ring key KeyID, with
	// Subject and KeyID as additional data.
	Wrapped []byte
	// ForgottenAt is when the subject was forgotten; zero while it has its data key.
	ForgottenAt time.Time
}

// Forgotten reports whether e is a tombstone.
func (e Entry) Forgotten() bool { return !e.ForgottenAt.IsZero() }

// Rewrapped is a data key wrapped anew (by Keys.Rewrap), to replace the entry of its subject in a Store
// only if that entry is still wrapped by the key PreviousKeyID.
type Rewrapped struct {
	Entry                // the subject, the new wrapping key's ID and the new wrapped key
	PreviousKeyID string // the key ID the entry must still have
}

// Store keeps the data keys of subjects, wrapped. Stores of this module: [MemoryStore], and the SQLite
// and PostgreSQL stores of the db/sqlite and db/postgres packages (in the application's database).
// Other implementations (a cloud key-value store, a secrets manager) pass the same tests:
// datakeytest.Run.
//
// A Store never sees a key in plain text, and needs no transactions across calls: Add and Forget decide
// races between processes, Rewrap is a compare-and-set. Every method must be safe for concurrent use and
// must not keep the byte slices it is given or return ones it keeps.
type Store interface {
	// Get returns the entry of subject: its wrapped data key or its tombstone. It fails with an error
	// wrapping ErrNoKey when the subject has no entry.
	Get(ctx context.Context, subject string) (Entry, error)
	// Add records e, a data key, unless e.Subject has an entry already; it returns the entry the subject
	// has afterwards: e, the key another process added first, or a tombstone.
	Add(ctx context.Context, e Entry) (Entry, error)
	// Forget replaces the entry of subject by a tombstone dated now, deleting the wrapped key. A subject
	// without an entry gets a tombstone too, so that it never gets a key afterwards; forgetting a
	// forgotten subject keeps the first date.
	Forget(ctx context.Context, subject string) error
	// List returns up to limit entries, tombstones included, whose subjects sort after after (as byte
	// strings, the order of Go's string comparison), in that order.
	List(ctx context.Context, after string, limit int) ([]Entry, error)
	// Rewrap replaces the KeyID and Wrapped of each entry whose subject still has a data key wrapped by
	// PreviousKeyID, leaving the others (rewrapped meanwhile, or forgotten) alone, and returns how many
	// it replaced.
	Rewrap(ctx context.Context, keys []Rewrapped) (int, error)
}

// Summary counts the entries of a Store.
type Summary struct {
	Keys      int            // subjects with a data key
	ByKeyID   map[string]int // data keys by the ID of the key-encryption key that wraps them
	Forgotten int            // forgotten subjects (tombstones)
}

// Summarize reads every entry of store and counts them. It needs no keys.
func Summarize(ctx context.Context, store Store) (Summary, error) {
	sum := Summary{ByKeyID: map[string]int{}}
	after := ""
	for {
		page, err := store.List(ctx, after, RewrapBatchSize)
		if err != nil {
			return sum, fmt.Errorf("datakey: summarize: %w", err)
		}
		for _, e := range page {
			if e.Forgotten() {
				sum.Forgotten++
				continue
			}
			sum.Keys++
			sum.ByKeyID[e.KeyID]++
		}
		if len(page) < RewrapBatchSize {
			return sum, nil
		}
		after = page[len(page)-1].Subject
	}
}

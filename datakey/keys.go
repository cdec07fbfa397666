// Package datakey gives every data subject an encryption key of its own, so that forgetting a subject
// is deleting one key (crypto-shredding).
//
// A subject is whoever the data is about: by default an aggregate (its originator ID), or a subject
// an application names, such as a customer whose data spans several aggregates. Its data key is made
// on first use, wrapped (encrypted) by the current key of a cipher.KeyRing and kept in a [Store]; Keys
// caches unwrapped keys in memory. The mapper encrypts each event and snapshot with its subject's data
// key (mapper.WithDataKeys) and records the subject in the stored state's header.
//
// # Forgetting
//
// [Keys.Forget] replaces the subject's entry in the store by a tombstone and drops the key from this
// process's cache at once. From then on every event and snapshot of the subject fails to decode with an
// error matching [ErrForgotten] (a [*ForgottenError] naming the subject), however old, wherever it is
// stored or copied, without rewriting the log; encoding new data for the subject fails the same way.
//
// What forgetting does not reach, and how to handle it:
//
//   - Other processes keep a cached key until it is older than their cache's maximum age
//     ([WithCacheMaxAge], [DefaultCacheMaxAge]); only then do they read the tombstone.
//   - Decoded data: read models, caches of aggregates in other processes, exports, logs. A projection
//     meets the subject's events as errors matching ErrForgotten; the application deletes the subject's
//     rows from its read models itself (errors.As gives the subject).
//   - Copies of the wrapped key: backups of the key store, database files and write-ahead logs that
//     still hold the deleted row. They are useless without the ring key that wrapped them: rotate the
//     key ring (add a key, [Keys.Rewrap]) and remove the old key from the ring and from wherever it is
//     kept, on a schedule shorter than the time within which erasure must be complete. Rewrapping
//     touches no event.
//   - Subjects themselves, event topics, versions, timestamps of the log and sizes are not encrypted.
//
// # Rotation
//
// Adding a key to the ring makes it the one that wraps new data keys; [Keys.Rewrap] rewraps the
// existing ones, after which the old ring key can be removed. Data keys themselves do not change, so
// no event is rewritten. Give every process the new ring before rewrapping: a process whose ring still
// ends with the old key goes on wrapping the keys of new subjects with it (a second Rewrap, once all
// processes have the new ring, catches those).
package datakey

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/internal/lru"
	"github.com/eventsourcing-go/eventsourcing/internal/option"
)

const (
	// DefaultCacheSize is how many unwrapped data keys Keys keeps in memory by default.
	DefaultCacheSize = 10_000
	// DefaultCacheMaxAge is how long a cached data key is used before the store is asked again: the
	// longest another process may go on using a key after the subject was forgotten.
	DefaultCacheMaxAge = time.Minute
	// RewrapBatchSize is how many data keys Rewrap reads and replaces per call to the store.
	RewrapBatchSize = 1000
	// dataKeySize is the length of a data key: AES-256.
	dataKeySize = 32
)

// Option configures Keys. Options record their values; New checks them.
type Option func(*config)

type config struct {
	cacheSize int
	maxAge    time.Duration
	logger    *slog.Logger
}

// WithCacheSize keeps up to n unwrapped data keys in memory (DefaultCacheSize by default); 0 keeps none,
// so every use of a key reads the store. New fails when n is negative.
func WithCacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

// WithCacheMaxAge sets how long a cached key is used before the store is read again
// (DefaultCacheMaxAge by default); it bounds how long this process can go on decrypting the data of a
// subject that another process has forgotten. New fails when d is not positive.
func WithCacheMaxAge(d time.Duration) Option { return func(c *config) { c.maxAge = d } }

// WithLogger logs the making and forgetting of data keys (at Debug: subjects and key IDs, never keys)
// to l; by default to slog.Default() as it is when New runs.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Keys hands out the data keys of subjects: it makes them, wraps them with the key ring's current key,
// keeps them in a Store and caches them unwrapped. It is safe for concurrent use.
type Keys struct {
	ring    *cipher.KeyRing
	store   Store
	cache   *lru.Cache[string, cachedKey] // nil without a cache
	maxAge  time.Duration
	logger  *slog.Logger
	forgets atomic.Uint64 // Forget calls so far; a change means a cached key may belong to a forgotten subject
}

// cachedKey is an unwrapped data key, ready to use, and when it was read from the store.
type cachedKey struct {
	c      *cipher.AESGCM
	loaded time.Time
}

// New returns Keys that wrap data keys with ring's current key and keep them in store.
func New(ring *cipher.KeyRing, store Store, opts ...Option) (*Keys, error) {
	cfg := config{cacheSize: DefaultCacheSize, maxAge: DefaultCacheMaxAge}
	option.Apply(&cfg, opts)
	switch {
	case ring == nil:
		return nil, errors.New("datakey: new: nil key ring")
	case ring.Len() == 0:
		return nil, errors.New("datakey: new: the key ring is empty")
	case store == nil:
		return nil, errors.New("datakey: new: nil store")
	case cfg.cacheSize < 0:
		return nil, fmt.Errorf("datakey: new: WithCacheSize(%d): must not be negative", cfg.cacheSize)
	case cfg.maxAge <= 0:
		return nil, fmt.Errorf("datakey: new: WithCacheMaxAge(%v): must be positive", cfg.maxAge)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	k := &Keys{ring: ring, store: store, maxAge: cfg.maxAge, logger: cfg.logger}
	if cfg.cacheSize > 0 {
		k.cache = lru.New[string, cachedKey](cfg.cacheSize)
	}
	return k, nil
}

// Ring returns the key ring that wraps the data keys.
func (k *Keys) Ring() *cipher.KeyRing { return k.ring }

// Store returns the store of the data keys.
func (k *Keys) Store() Store { return k.store }

// Forgets returns how many subjects this Keys has forgotten. Caches of decoded data compare it with the
// value they saw when they decoded, to drop what may belong to a subject forgotten since.
func (k *Keys) Forgets() uint64 { return k.forgets.Load() }

// Get returns the data key of subject, to decrypt with. It never makes a key: it fails with an error
// wrapping ErrNoKey when the subject has none, with a *ForgottenError when the subject was forgotten,
// with cipher.ErrUnknownKey when the ring lacks the key that wrapped it, and with cipher.ErrDecrypt when
// the store's entry was changed or belongs to another subject.
func (k *Keys) Get(ctx context.Context, subject string) (*cipher.AESGCM, error) {
	if c, ok := k.cached(subject); ok {
		return c, nil
	}
	forgets := k.forgets.Load()
	e, err := k.store.Get(ctx, subject)
	if err != nil {
		k.drop(subject)
		return nil, fmt.Errorf("datakey: get subject %q: %w", subject, err)
	}
	return k.use(subject, e, forgets)
}

// GetOrCreate returns the data key of subject, to encrypt with, making and storing one when the subject
// has none yet. It fails with a *ForgottenError when the subject was forgotten, and as Get otherwise.
func (k *Keys) GetOrCreate(ctx context.Context, subject string) (*cipher.AESGCM, error) {
	if c, ok := k.cached(subject); ok {
		return c, nil
	}
	forgets := k.forgets.Load()
	e, err := k.store.Get(ctx, subject)
	if errors.Is(err, ErrNoKey) {
		e, err = k.create(ctx, subject)
	}
	if err != nil {
		k.drop(subject)
		return nil, fmt.Errorf("datakey: get subject %q: %w", subject, err)
	}
	return k.use(subject, e, forgets)
}

// create makes a data key for subject, wraps it and adds it to the store; it returns the entry the
// store has then (another process's key, if it added one first).
func (k *Keys) create(ctx context.Context, subject string) (Entry, error) {
	if err := ValidateSubject(subject); err != nil {
		return Entry{}, err
	}
	key := make([]byte, dataKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return Entry{}, fmt.Errorf("make data key: %w", err)
	}
	id, wrapper, err := k.ring.Current()
	if err != nil {
		return Entry{}, err
	}
	wrapped, err := wrapper.Encrypt(key, wrapContext(subject, id))
	if err != nil {
		return Entry{}, fmt.Errorf("wrap data key: %w", err)
	}
	e, err := k.store.Add(ctx, Entry{Subject: subject, KeyID: id, Wrapped: wrapped})
	if err != nil {
		return Entry{}, err
	}
	k.logger.DebugContext(ctx, "datakey: data key made", "subject", subject, "wrapped_by", id)
	return e, nil
}

// use unwraps e and caches the key, unless a Forget ran since forgets was read.
func (k *Keys) use(subject string, e Entry, forgets uint64) (*cipher.AESGCM, error) {
	if e.Forgotten() {
		k.drop(subject)
		return nil, &ForgottenError{Subject: subject, At: e.ForgottenAt}
	}
	if e.Subject != subject {
		return nil, fmt.Errorf("datakey: the store returned the entry of subject %q for subject %q", e.Subject, subject)
	}
	c, err := k.unwrap(e)
	if err != nil {
		return nil, err
	}
	if k.cache != nil {
		k.cache.Put(subject, cachedKey{c: c, loaded: time.Now()})
		// A Forget that ran meanwhile may have dropped the cache's entry before it was put: drop it
		// again. (Forget counts before it drops, so one of the two drops comes last.)
		if k.forgets.Load() != forgets {
			k.cache.Remove(subject)
		}
	}
	return c, nil
}

// unwrap decrypts the data key of e with the ring key that wrapped it.
func (k *Keys) unwrap(e Entry) (*cipher.AESGCM, error) {
	wrapper, err := k.ring.Key(e.KeyID)
	if err != nil {
		return nil, fmt.Errorf("datakey: data key of subject %q is wrapped by key %q: %w", e.Subject, e.KeyID, err)
	}
	key, err := wrapper.Decrypt(e.Wrapped, wrapContext(e.Subject, e.KeyID))
	if err != nil {
		return nil, fmt.Errorf("datakey: %w", authFailure(e, err))
	}
	defer clear(key)
	if len(key) != dataKeySize {
		return nil, fmt.Errorf("datakey: data key of subject %q (wrapped by key %q) has %d bytes, not %d", e.Subject, e.KeyID, len(key), dataKeySize)
	}
	return cipher.New(key)
}

// authFailure is the error for the data key of e, which the ring key e.KeyID failed to unwrap with
// err. Most often the ring's key of that ID is another key than the one that wrapped it (a ring made
// anew, or another application's); else the store's entry was changed.
func authFailure(e Entry, err error) error {
	return fmt.Errorf("data key of subject %q (wrapped by key %q) fails authentication: the ring's key %q is not the key that wrapped it "+
		"(a key ring made anew, or another application's?), or the key store's entry was changed or belongs to another subject: %w",
		e.Subject, e.KeyID, e.KeyID, err)
}

// wrapLabel starts the additional data of every wrapped key. It keeps wrapped keys and event states,
// which ring keys may both encrypt, apart: its byte 24 ('y') can never be the format byte that the
// stored state's header has at that place in an event's additional data.
const wrapLabel = "eventsourcing-go data key"

// wrapContext is the additional data of subject's data key wrapped by keyID: the label, the subject
// with its length, and the key ID. Changing either, or copying the entry to another subject, makes
// unwrapping fail.
func wrapContext(subject, keyID string) []byte {
	b := make([]byte, 0, len(wrapLabel)+binary.MaxVarintLen64+len(subject)+len(keyID))
	b = append(b, wrapLabel...)
	b = binary.AppendUvarint(b, uint64(len(subject)))
	b = append(b, subject...)
	return append(b, keyID...)
}

// cached returns the cached key of subject when it is younger than the maximum age.
func (k *Keys) cached(subject string) (*cipher.AESGCM, bool) {
	if k.cache == nil {
		return nil, false
	}
	ck, ok := k.cache.Get(subject)
	if !ok || time.Since(ck.loaded) >= k.maxAge {
		return nil, false
	}
	return ck.c, true
}

func (k *Keys) drop(subject string) {
	if k.cache != nil {
		k.cache.Remove(subject)
	}
}

// Forget deletes the data key of subject from the store, leaving a tombstone, and from this process's
// cache: every event and snapshot of the subject becomes unreadable for good, and new ones cannot be
// written. Forgetting a subject twice, or one that never had a key, is not an error. See the package
// documentation for what forgetting does not reach.
func (k *Keys) Forget(ctx context.Context, subject string) error {
	if err := ValidateSubject(subject); err != nil {
		return fmt.Errorf("datakey: forget: %w", err)
	}
	if err := k.store.Forget(ctx, subject); err != nil {
		return fmt.Errorf("datakey: forget subject %q: %w", subject, err)
	}
	k.forgets.Add(1)
	k.drop(subject)
	k.logger.DebugContext(ctx, "datakey: subject forgotten", "subject", subject)
	return nil
}

// RewrapResult counts what Rewrap did.
type RewrapResult struct {
	KeyID     string // the ring's current key, which wraps the rewrapped data keys now
	Rewrapped int    // data keys rewrapped with KeyID
	Current   int    // data keys that were wrapped by KeyID already
	Forgotten int    // tombstones passed over
	Failed    int    // data keys left as they were because they could not be unwrapped
}

// Rewrap wraps every data key of the store that is not wrapped by the ring's current key with the
// current key, so that the ring's older keys can be removed; events are not touched. Keys made or
// forgotten meanwhile are handled correctly: a replacement is made only where the store's entry is
// still the one that was read.
//
// A data key that cannot be unwrapped (its ring key is missing, or its entry fails authentication) is
// left as it is, counted in Failed, and reported in the error, which names up to ten subjects; Rewrap
// goes on with the others.
func (k *Keys) Rewrap(ctx context.Context) (RewrapResult, error) {
	id, wrapper, err := k.ring.Current()
	if err != nil {
		return RewrapResult{}, fmt.Errorf("datakey: rewrap: %w", err)
	}
	res := RewrapResult{KeyID: id}
	var failures []error
	batch := make([]Rewrapped, 0, RewrapBatchSize)
	after := ""
	for {
		page, err := k.store.List(ctx, after, RewrapBatchSize)
		if err != nil {
			return res, fmt.Errorf("datakey: rewrap: list data keys after %q: %w", after, err)
		}
		batch = batch[:0]
		for _, e := range page {
			switch {
			case e.Forgotten():
				res.Forgotten++
				continue
			case e.KeyID == id:
				res.Current++
				continue
			}
			r, err := k.rewrap(e, id, wrapper)
			if err != nil {
				res.Failed++
				if len(failures) < 10 {
					failures = append(failures, err)
				}
				continue
			}
			batch = append(batch, r)
		}
		if len(batch) > 0 {
			n, err := k.store.Rewrap(ctx, batch)
			if err != nil {
				return res, fmt.Errorf("datakey: rewrap: replace %d data keys: %w", len(batch), err)
			}
			res.Rewrapped += n
		}
		if len(page) < RewrapBatchSize {
			break
		}
		after = page[len(page)-1].Subject
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("datakey: rewrap: %d data keys could not be rewrapped (the first %d follow): %w",
			res.Failed, len(failures), errors.Join(failures...))
	}
	return res, nil
}

// rewrap unwraps e's data key and wraps it with wrapper, the ring key id.
func (k *Keys) rewrap(e Entry, id string, wrapper *cipher.AESGCM) (Rewrapped, error) {
	old, err := k.ring.Key(e.KeyID)
	if err != nil {
		return Rewrapped{}, fmt.Errorf("data key of subject %q is wrapped by key %q: %w", e.Subject, e.KeyID, err)
	}
	key, err := old.Decrypt(e.Wrapped, wrapContext(e.Subject, e.KeyID))
	if err != nil {
		return Rewrapped{}, authFailure(e, err)
	}
	defer clear(key)
	wrapped, err := wrapper.Encrypt(key, wrapContext(e.Subject, id))
	if err != nil {
		return Rewrapped{}, fmt.Errorf("wrap data key of subject %q: %w", e.Subject, err)
	}
	return Rewrapped{Entry: Entry{Subject: e.Subject, KeyID: id, Wrapped: wrapped}, PreviousKeyID: e.KeyID}, nil
}

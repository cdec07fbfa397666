// Package datakey gives every data subject an encryption key of its own, so that forgetting a subject
// is deleting one key (crypto-shredding).
//
// A subject is whoever the data is about: by default an aggregate (its originator ID), or a subject
// an application names, such as a customer whose data spans several aggregates. Its data key is made
// on first use, wrapped (encrypted) by a key-encryption key (KEK) and kept in a [Store]; Keys caches
// unwrapped keys in memory. The KEKs are held by a [Wrapper]: the keys of a cipher.KeyRing, in the
// process, or those of a key management service (below). The mapper encrypts each event and snapshot
// with its subject's data key (mapper.WithDataKeys) and records the subject in the stored state's
// header.
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
//     still hold the deleted row. They are useless without the KEK that wrapped them: rotate the KEK
//     (add a key to the ring, or make a new key current in the key management service;
//     [Keys.Rewrap]) and destroy the old one, on a schedule shorter than the time within which erasure
//     must be complete. Rewrapping touches no event.
//   - Subjects themselves, event topics, versions, timestamps of the log and sizes are not encrypted.
//
// # Rotation
//
// Adding a key to the ring makes it the one that wraps new data keys; [Keys.Rewrap] rewraps the
// existing ones, after which the old ring key can be removed. Data keys themselves do not change, so
// no event is rewritten. Give every process the new ring before rewrapping: a process whose ring still
// ends with the old key goes on wrapping the keys of new subjects with it (a second Rewrap, once all
// processes have the new ring, catches those). With a key management service, make the new KEK the
// current one of every process's Wrapper, then Rewrap, in the same way.
//
// # Key management services
//
// To keep the KEKs in a key management service (AWS KMS, Google Cloud KMS, HashiCorp Vault's transit
// engine, an HSM), so that they never enter the process, give [New] an adapter of the service's client
// that implements [Wrapper]: WrapKey calls the service's encrypt operation with the current KEK,
// UnwrapKey its decrypt operation with the KEK the entry names, CurrentKeyID says which KEK is current.
// The library sends the service a data key to wrap (32 random bytes) or a wrapped one to unwrap, with
// additional data to authenticate with it: "eventsourcing-go data key", the subject's length and the
// subject. A service that takes additional data as text (an encryption context) can be given it in
// base64. The service sees, and may log, the subjects; they are opaque identifiers (see
// [ValidateSubject]).
//
// Keys calls the service only when a data key is not in its cache: once per new subject, once per
// subject read by a process that has not cached its key (or cached it longer ago than
// [WithCacheMaxAge]), and twice per data key in Rewrap. The data keys it caches are unwrapped, in this
// process's memory, for up to WithCacheMaxAge each: a larger cache and age make fewer calls to the
// service, a smaller age makes a revoked KEK or a forgotten subject take effect sooner in every
// process. Errors of the service are never cached, and a data key whose wrapping fails is not stored.
package datakey

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
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
// so every use of a key reads the store and has the Wrapper unwrap it. New fails when n is negative.
func WithCacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

// WithCacheMaxAge sets how long a cached key is used before the store is read again
// (DefaultCacheMaxAge by default); it bounds how long this process can go on decrypting the data of a
// subject that another process has forgotten. New fails when d is not positive.
func WithCacheMaxAge(d time.Duration) Option { return func(c *config) { c.maxAge = d } }

// WithLogger logs the making and forgetting of data keys (at Debug: subjects and key IDs, never keys)
// to l; by default to slog.Default() as it is when New runs.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Keys hands out the data keys of subjects: it makes them, has its Wrapper wrap them with the current
// key-encryption key, keeps them in a Store and caches them unwrapped. It is safe for concurrent use.
type Keys struct {
	wrapper Wrapper
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

// New returns Keys that have w wrap the data keys and keep them in store. w is usually a
// *cipher.KeyRing, whose current key wraps new data keys, or an adapter of a key management service.
// New fails if w is nil or an empty key ring.
func New(w Wrapper, store Store, opts ...Option) (*Keys, error) {
	cfg := config{cacheSize: DefaultCacheSize, maxAge: DefaultCacheMaxAge}
	option.Apply(&cfg, opts)
	ring, isRing := w.(*cipher.KeyRing)
	switch {
	case isRing && ring == nil:
		return nil, errors.New("datakey: new: nil key ring")
	case isRing && ring.Len() == 0:
		return nil, errors.New("datakey: new: the key ring is empty")
	case isNil(w):
		return nil, errors.New("datakey: new: nil wrapper")
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
	k := &Keys{wrapper: w, store: store, maxAge: cfg.maxAge, logger: cfg.logger}
	if cfg.cacheSize > 0 {
		k.cache = lru.New[string, cachedKey](cfg.cacheSize)
	}
	return k, nil
}

// isNil reports whether w is nil or a nil pointer.
func isNil(w Wrapper) bool {
	if w == nil {
		return true
	}
	v := reflect.ValueOf(w)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Ring returns the key ring that wraps the data keys, or nil when the Wrapper is not a
// *cipher.KeyRing. The mapper reads with it the state that WithCipher or WithKeyRing wrote, unless it is
// given a ring of its own for that (mapper.WithKeyRing beside mapper.WithDataKeys).
func (k *Keys) Ring() *cipher.KeyRing {
	ring, _ := k.wrapper.(*cipher.KeyRing)
	return ring
}

// Wrapper returns what wraps the data keys: the Wrapper given to New.
func (k *Keys) Wrapper() Wrapper { return k.wrapper }

// Store returns the store of the data keys.
func (k *Keys) Store() Store { return k.store }

// Forgets returns how many subjects this Keys has forgotten. Caches of decoded data compare it with the
// value they saw when they decoded, to drop what may belong to a subject forgotten since.
func (k *Keys) Forgets() uint64 { return k.forgets.Load() }

// Get returns the data key of subject, to decrypt with. It never makes a key: it fails with an error
// wrapping ErrNoKey when the subject has none, with a *ForgottenError when the subject was forgotten,
// with cipher.ErrUnknownKey when the Wrapper lacks the key that wrapped it, with cipher.ErrDecrypt when
// the store's entry was changed or belongs to another subject, and with the Wrapper's error otherwise.
// An error is never cached: the next call asks the store and the Wrapper again.
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
	return k.use(ctx, subject, e, forgets)
}

// GetOrCreate returns the data key of subject, to encrypt with, making and storing one when the subject
// has none yet. It fails with a *ForgottenError when the subject was forgotten, and as Get otherwise;
// when the Wrapper fails to wrap a new key, nothing is stored.
func (k *Keys) GetOrCreate(ctx context.Context, subject string) (*cipher.AESGCM, error) {
	if c, ok := k.cached(subject); ok {
		return c, nil
	}
	forgets := k.forgets.Load()
	e, err := k.store.Get(ctx, subject)
	if errors.Is(err, ErrNoKey) {
		var c *cipher.AESGCM
		if e, c, err = k.create(ctx, subject); c != nil {
			return k.keep(subject, c, forgets), nil
		}
	}
	if err != nil {
		k.drop(subject)
		return nil, fmt.Errorf("datakey: get subject %q: %w", subject, err)
	}
	return k.use(ctx, subject, e, forgets)
}

// create makes a data key for subject, wraps it and adds it to the store; it returns the entry the
// store has then, and the key when that entry is the one it added, which needs no unwrapping (nil when
// another process added a key first, or the subject was forgotten meanwhile).
func (k *Keys) create(ctx context.Context, subject string) (Entry, *cipher.AESGCM, error) {
	if err := ValidateSubject(subject); err != nil {
		return Entry{}, nil, err
	}
	key := make([]byte, dataKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return Entry{}, nil, fmt.Errorf("make data key: %w", err)
	}
	id, wrapped, err := k.wrap(ctx, subject, key)
	if err != nil {
		return Entry{}, nil, err
	}
	e, err := k.store.Add(ctx, Entry{Subject: subject, KeyID: id, Wrapped: wrapped})
	if err != nil {
		return Entry{}, nil, err
	}
	if e.Forgotten() || e.Subject != subject || e.KeyID != id || !bytes.Equal(e.Wrapped, wrapped) {
		return e, nil, nil
	}
	c, err := cipher.New(key)
	if err != nil {
		return Entry{}, nil, err
	}
	k.logger.DebugContext(ctx, "datakey: data key made", "subject", subject, "wrapped_by", id)
	return e, c, nil
}

// wrap has the Wrapper wrap key, the data key of subject, and checks what it returns.
func (k *Keys) wrap(ctx context.Context, subject string, key []byte) (kekID string, wrapped []byte, err error) {
	kekID, wrapped, err = k.wrapper.WrapKey(ctx, key, wrapContext(subject))
	switch {
	case err != nil:
		return "", nil, fmt.Errorf("wrap the data key: %w", err)
	case kekID == "":
		return "", nil, errors.New("wrap the data key: the wrapper returned no key ID")
	case len(wrapped) == 0:
		return "", nil, fmt.Errorf("wrap the data key: the wrapper returned no wrapped key (key %q)", kekID)
	}
	return kekID, wrapped, nil
}

// use unwraps e and caches the key, unless a Forget ran since forgets was read.
func (k *Keys) use(ctx context.Context, subject string, e Entry, forgets uint64) (*cipher.AESGCM, error) {
	if e.Forgotten() {
		k.drop(subject)
		return nil, &ForgottenError{Subject: subject, At: e.ForgottenAt}
	}
	if e.Subject != subject {
		return nil, fmt.Errorf("datakey: the store returned the entry of subject %q for subject %q", e.Subject, subject)
	}
	key, err := k.unwrap(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("datakey: %w", err)
	}
	c, err := cipher.New(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	return k.keep(subject, c, forgets), nil
}

// keep caches c, the data key of subject, unless a Forget ran since forgets was read, and returns it.
func (k *Keys) keep(subject string, c *cipher.AESGCM, forgets uint64) *cipher.AESGCM {
	if k.cache != nil {
		k.cache.Put(subject, cachedKey{c: c, loaded: time.Now()})
		// A Forget that ran meanwhile may have dropped the cache's entry before it was put: drop it
		// again. (Forget counts before it drops, so one of the two drops comes last.)
		if k.forgets.Load() != forgets {
			k.cache.Remove(subject)
		}
	}
	return c
}

// unwrap has the Wrapper unwrap the data key of e; the caller clears the key. Its error names the
// subject and the key that wrapped it.
func (k *Keys) unwrap(ctx context.Context, e Entry) ([]byte, error) {
	key, err := k.wrapper.UnwrapKey(ctx, e.KeyID, e.Wrapped, wrapContext(e.Subject))
	switch {
	case errors.Is(err, cipher.ErrUnknownKey):
		return nil, fmt.Errorf("data key of subject %q is wrapped by key %q: %w", e.Subject, e.KeyID, err)
	case errors.Is(err, cipher.ErrDecrypt):
		return nil, k.authFailure(e, err)
	case err != nil:
		return nil, fmt.Errorf("unwrap the data key of subject %q (wrapped by key %q): %w", e.Subject, e.KeyID, err)
	case len(key) != dataKeySize:
		clear(key)
		return nil, fmt.Errorf("data key of subject %q (wrapped by key %q) has %d bytes, not %d: %w", e.Subject, e.KeyID, len(key), dataKeySize, errKeySize)
	}
	return key, nil
}

// authFailure is the error for the data key of e, which the key e.KeyID failed to unwrap with err.
// Most often the Wrapper's key of that ID is another key than the one that wrapped it (a key ring made
// anew, or another application's); else the store's entry was changed.
func (k *Keys) authFailure(e Entry, err error) error {
	holder := "the wrapper's"
	if k.Ring() != nil {
		holder = "the ring's"
	}
	return fmt.Errorf("data key of subject %q (wrapped by key %q) fails authentication: %s key %q is not the key that wrapped it "+
		"(a key ring made anew, or another application's?), or the key store's entry was changed or belongs to another subject: %w",
		e.Subject, e.KeyID, holder, e.KeyID, err)
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
	KeyID     string // the Wrapper's current key, which wraps the rewrapped data keys now
	Rewrapped int    // data keys rewrapped with KeyID and replaced in the store
	Current   int    // data keys that were wrapped by KeyID already
	Forgotten int    // tombstones passed over
	Failed    int    // data keys left as they were because they could not be unwrapped
}

// Rewrap wraps every data key of the store that is not wrapped by the Wrapper's current key with the
// current key, so that the older keys can be retired; events are not touched. Keys made or forgotten
// meanwhile are handled correctly: a replacement is made only where the store's entry is still the one
// that was read.
//
// A data key that cannot be unwrapped because of its entry (its key is unknown to the Wrapper, or the
// entry fails authentication) is left as it is, counted in Failed, and reported in the error, which
// names up to ten subjects; Rewrap goes on with the others. Any other failure (of the store, of the
// Wrapper, or ctx done) stops Rewrap: the data keys it has rewrapped by then are stored and counted in
// the result, the others are left as they were, and running Rewrap again goes on where it stopped.
func (k *Keys) Rewrap(ctx context.Context) (RewrapResult, error) {
	id, err := k.wrapper.CurrentKeyID(ctx)
	if err != nil {
		return RewrapResult{}, fmt.Errorf("datakey: rewrap: current key: %w", err)
	}
	res := RewrapResult{KeyID: id}
	var failures []error
	failed := func() error {
		if res.Failed == 0 {
			return nil
		}
		return fmt.Errorf("datakey: rewrap: %d data keys could not be rewrapped (the first %d follow): %w",
			res.Failed, len(failures), errors.Join(failures...))
	}
	batch := make([]Rewrapped, 0, RewrapBatchSize)
	after := ""
	for {
		page, err := k.store.List(ctx, after, RewrapBatchSize)
		if err != nil {
			return res, errors.Join(fmt.Errorf("datakey: rewrap: list data keys after %q: %w", after, err), failed())
		}
		batch = batch[:0]
		var stop error
		for _, e := range page {
			switch {
			case e.Forgotten():
				res.Forgotten++
				continue
			case e.KeyID == id:
				res.Current++
				continue
			}
			r, passOver, err := k.rewrap(ctx, e)
			if passOver {
				res.Failed++
				if len(failures) < 10 {
					failures = append(failures, err)
				}
				continue
			}
			if err != nil {
				stop = err
				break
			}
			batch = append(batch, r)
		}
		// What was rewrapped before a stop is stored all the same, unless ctx is done.
		if len(batch) > 0 && ctx.Err() == nil {
			n, err := k.store.Rewrap(ctx, batch)
			if err != nil {
				return res, errors.Join(fmt.Errorf("datakey: rewrap: replace %d data keys: %w", len(batch), err), stop, failed())
			}
			res.Rewrapped += n
		}
		if stop != nil {
			return res, errors.Join(fmt.Errorf("datakey: rewrap: stopped after rewrapping %d data keys, leaving the others as they were (rewrap again to go on): %w",
				res.Rewrapped, stop), failed())
		}
		if len(page) < RewrapBatchSize {
			break
		}
		after = page[len(page)-1].Subject
	}
	return res, failed()
}

// rewrap has the Wrapper unwrap e's data key and wrap it with its current key. On failure, passOver
// tells whether it is the entry's fault (Rewrap goes on with the others) or not (Rewrap stops).
func (k *Keys) rewrap(ctx context.Context, e Entry) (r Rewrapped, passOver bool, err error) {
	key, err := k.unwrap(ctx, e)
	if err != nil {
		return Rewrapped{}, ctx.Err() == nil && entryFault(err), err
	}
	defer clear(key)
	id, wrapped, err := k.wrap(ctx, e.Subject, key)
	if err != nil {
		return Rewrapped{}, false, fmt.Errorf("subject %q: %w", e.Subject, err)
	}
	return Rewrapped{Entry: Entry{Subject: e.Subject, KeyID: id, Wrapped: wrapped}, PreviousKeyID: e.KeyID}, false, nil
}

package datakey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/datakey/datakeytest"
	"github.com/eventsourcing-go/eventsourcing/memory"
)

// fakeKMS stands in for a key management service: it makes and holds key-encryption keys (KEKs) that
// its clients never see, and wraps and unwraps data keys with them on request. Its wrapped keys name
// the KEK that wrapped them and are authenticated together with that name, as a real service's are.
type fakeKMS struct {
	mu   sync.Mutex
	keks map[string]*cipher.AESGCM
}

func newFakeKMS() *fakeKMS { return &fakeKMS{keks: map[string]*cipher.AESGCM{}} }

// kek returns the KEK id, making it on first use.
func (s *fakeKMS) kek(id string) (*cipher.AESGCM, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.keks[id]; ok {
		return c, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	c, err := cipher.New(key)
	if err != nil {
		return nil, err
	}
	s.keks[id] = c
	return c, nil
}

// client returns a client of the service that may use the KEKs ids, the last one current.
func (s *fakeKMS) client(t *testing.T, ids ...string) datakeytest.Wrapper {
	t.Helper()
	c := &kmsClient{kms: s, allowed: map[string]bool{}}
	for _, id := range ids {
		if err := c.AddKey(id); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// kmsClient is a datakey.Wrapper that has a fakeKMS wrap and unwrap: what an application's adapter of
// its key management service is. It counts its calls, and fails on demand.
type kmsClient struct {
	kms *fakeKMS

	mu         sync.Mutex
	allowed    map[string]bool
	current    string
	failWrap   error
	failUnwrap error
	failAfter  int64 // UnwrapKey fails with failUnwrap once it has been called this many times (0: at once)
	onUnwrap   func(n int64)

	wraps, unwraps, currents atomic.Int64
}

var errKMSDown = errors.New("fake KMS: service unavailable")

// AddKey implements datakeytest.Wrapper.
func (c *kmsClient) AddKey(id string) error {
	if _, err := c.kms.kek(id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.allowed[id] = true
	c.current = id
	return nil
}

func (c *kmsClient) fail(wrap, unwrap error, after int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failWrap, c.failUnwrap, c.failAfter = wrap, unwrap, after
}

// WrapKey implements datakey.Wrapper.
func (c *kmsClient) WrapKey(ctx context.Context, key, aad []byte) (string, []byte, error) {
	c.wraps.Add(1)
	if err := ctx.Err(); err != nil {
		return "", nil, fmt.Errorf("fake KMS: encrypt: %w", err)
	}
	c.mu.Lock()
	id, fail := c.current, c.failWrap
	c.mu.Unlock()
	if fail != nil {
		return "", nil, fmt.Errorf("fake KMS: encrypt with key %q: %w", id, fail)
	}
	kek, err := c.kms.kek(id)
	if err != nil {
		return "", nil, err
	}
	blob := binary.AppendUvarint(nil, uint64(len(id)))
	blob = append(blob, id...)
	wrapped, err := kek.AppendEncrypt(blob, key, append(append([]byte(id), 0), aad...))
	if err != nil {
		return "", nil, err
	}
	return id, wrapped, nil
}

// UnwrapKey implements datakey.Wrapper.
func (c *kmsClient) UnwrapKey(ctx context.Context, id string, wrapped, aad []byte) ([]byte, error) {
	n := c.unwraps.Add(1)
	c.mu.Lock()
	allowed, fail, after, hook := c.allowed[id], c.failUnwrap, c.failAfter, c.onUnwrap
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fake KMS: decrypt: %w", err)
	}
	if fail != nil && n > after {
		return nil, fmt.Errorf("fake KMS: decrypt with key %q: %w", id, fail)
	}
	if !allowed {
		return nil, fmt.Errorf("fake KMS: key %q does not exist or may not be used: %w", id, cipher.ErrUnknownKey)
	}
	l, k := binary.Uvarint(wrapped)
	if k <= 0 || uint64(len(wrapped)-k) < l || string(wrapped[k:k+int(l)]) != id {
		return nil, fmt.Errorf("fake KMS: the ciphertext was not made by key %q: %w", id, cipher.ErrDecrypt)
	}
	kek, err := c.kms.kek(id)
	if err != nil {
		return nil, err
	}
	return kek.Decrypt(wrapped[k+int(l):], append(append([]byte(id), 0), aad...))
}

// CurrentKeyID implements datakey.Wrapper.
func (c *kmsClient) CurrentKeyID(ctx context.Context) (string, error) {
	c.currents.Add(1)
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("fake KMS: describe key: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current, nil
}

// The scenarios of every store pass with data keys wrapped by a key management service.
func TestKMSWrapper(t *testing.T) {
	datakeytest.Run(t, func(t *testing.T) datakeytest.Backend {
		kms := newFakeKMS()
		return datakeytest.Backend{
			Store:     datakey.NewMemoryStore(),
			Events:    memory.NewProcessRecorder(),
			Snapshots: memory.NewAggregateRecorder(),
			Wrapper:   kms.client,
		}
	})
}

func newKMSKeys(t *testing.T, w datakey.Wrapper, s datakey.Store, opts ...datakey.Option) *datakey.Keys {
	t.Helper()
	k, err := datakey.New(w, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewRefusesNilWrapper(t *testing.T) {
	store := datakey.NewMemoryStore()
	for name, w := range map[string]datakey.Wrapper{"nil": nil, "nil pointer": (*kmsClient)(nil)} {
		if k, err := datakey.New(w, store); err == nil || k != nil || !strings.Contains(err.Error(), "nil wrapper") {
			t.Errorf("%s: New = %v, %v; want an error naming the nil wrapper", name, k, err)
		}
	}
	keys := newKMSKeys(t, newFakeKMS().client(t, "k1"), store)
	if keys.Ring() != nil || keys.Wrapper() == nil {
		t.Fatalf("Ring = %v, Wrapper = %v; want no ring and the wrapper", keys.Ring(), keys.Wrapper())
	}
	ring := testRing(t)
	if keys := newKeys(t, store); keys.Ring() == nil || keys.Ring().String() != ring.String() {
		t.Fatalf("Ring of Keys on a key ring: %v", keys.Ring())
	}
}

// The service is asked only on a cache miss: a new subject costs one WrapKey, a subject another
// process made costs one UnwrapKey, and cached keys cost nothing.
func TestKMSCalledOnCacheMissOnly(t *testing.T) {
	ctx := context.Background()
	kms, store := newFakeKMS(), datakey.NewMemoryStore()
	w := kms.client(t, "k1").(*kmsClient)
	keys := newKMSKeys(t, w, store)
	for range 3 {
		if _, err := keys.GetOrCreate(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Get(ctx, "s"); err != nil {
			t.Fatal(err)
		}
	}
	if w.wraps.Load() != 1 || w.unwraps.Load() != 0 {
		t.Fatalf("one process, one subject: %d wraps, %d unwraps; want 1 and 0", w.wraps.Load(), w.unwraps.Load())
	}
	other := kms.client(t, "k1").(*kmsClient)
	otherKeys := newKMSKeys(t, other, store)
	for range 3 {
		if _, err := otherKeys.GetOrCreate(ctx, "s"); err != nil {
			t.Fatal(err)
		}
	}
	if other.wraps.Load() != 0 || other.unwraps.Load() != 1 {
		t.Fatalf("another process: %d wraps, %d unwraps; want 0 and 1", other.wraps.Load(), other.unwraps.Load())
	}
	e, err := store.Get(ctx, "s")
	if err != nil || e.KeyID != "k1" {
		t.Fatalf("entry %+v %v", e, err)
	}
}

// A failed wrap stores nothing, caches nothing, and says which subject it was for.
func TestKMSWrapFails(t *testing.T) {
	ctx := context.Background()
	store := datakey.NewMemoryStore()
	w := newFakeKMS().client(t, "k1").(*kmsClient)
	keys := newKMSKeys(t, w, store)
	w.fail(errKMSDown, nil, 0)
	for range 2 {
		_, err := keys.GetOrCreate(ctx, "s")
		if !errors.Is(err, errKMSDown) || !strings.Contains(err.Error(), `subject "s"`) {
			t.Fatalf("GetOrCreate with the service down: %v, want errKMSDown naming the subject", err)
		}
	}
	if w.wraps.Load() != 2 {
		t.Fatalf("%d wraps for 2 calls: a failure was cached", w.wraps.Load())
	}
	if page, err := store.List(ctx, "", 10); err != nil || len(page) != 0 {
		t.Fatalf("a failed wrap stored %+v %v", page, err)
	}
	if _, err := keys.Get(ctx, "s"); !errors.Is(err, datakey.ErrNoKey) {
		t.Fatalf("Get after a failed wrap: %v, want ErrNoKey", err)
	}

	w.fail(nil, nil, 0)
	c, err := keys.GetOrCreate(ctx, "s")
	if err != nil {
		t.Fatalf("GetOrCreate once the service is back: %v", err)
	}
	ct, _ := c.Encrypt([]byte("m"), nil)
	again, err := newKMSKeys(t, w, store).Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := again.Decrypt(ct, nil); err != nil || string(pt) != "m" {
		t.Fatalf("the stored key is another: %v", err)
	}
}

// badWrapper returns what no Wrapper may: an empty key ID, or nothing wrapped.
type badWrapper struct {
	datakey.Wrapper
	id string
}

func (b badWrapper) WrapKey(ctx context.Context, key, aad []byte) (string, []byte, error) {
	if b.id == "" {
		return "", []byte{1}, nil
	}
	return b.id, nil, nil
}

func TestKMSWrapReturnsNothing(t *testing.T) {
	ctx := context.Background()
	store := datakey.NewMemoryStore()
	for _, w := range []badWrapper{{Wrapper: testRing(t)}, {Wrapper: testRing(t), id: "k1"}} {
		if _, err := newKMSKeys(t, w, store).GetOrCreate(ctx, "s"); err == nil || !strings.Contains(err.Error(), "the wrapper returned no") {
			t.Fatalf("%+v: GetOrCreate = %v, want an error", w.id, err)
		}
	}
	if page, _ := store.List(ctx, "", 10); len(page) != 0 {
		t.Fatalf("stored %+v", page)
	}
}

// keyOfS returns a fake key management service and a store that holds the data key of subject "s",
// made through a client of the service whose current key is kekID.
func keyOfS(t *testing.T, kekID string) (*fakeKMS, *datakey.MemoryStore) {
	t.Helper()
	kms, store := newFakeKMS(), datakey.NewMemoryStore()
	if _, err := newKMSKeys(t, kms.client(t, kekID), store).GetOrCreate(context.Background(), "s"); err != nil {
		t.Fatal(err)
	}
	return kms, store
}

// A failed unwrap is not cached: the next Get asks the service again, and the entry stays as it was.
func TestKMSUnwrapFails(t *testing.T) {
	ctx := context.Background()
	kms, store := keyOfS(t, "k1")
	before, _ := store.Get(ctx, "s")
	w := kms.client(t, "k1").(*kmsClient)
	keys := newKMSKeys(t, w, store)
	w.fail(nil, errKMSDown, 0)
	for range 2 {
		_, err := keys.Get(ctx, "s")
		if !errors.Is(err, errKMSDown) || !strings.Contains(err.Error(), `subject "s"`) || !strings.Contains(err.Error(), `key "k1"`) {
			t.Fatalf("Get with the service down: %v, want errKMSDown naming the subject and the key", err)
		}
		if errors.Is(err, cipher.ErrDecrypt) || errors.Is(err, cipher.ErrUnknownKey) {
			t.Fatalf("a failing service passed off as a bad entry: %v", err)
		}
	}
	if _, err := keys.GetOrCreate(ctx, "s"); !errors.Is(err, errKMSDown) {
		t.Fatalf("GetOrCreate with the service down: %v", err)
	}
	after, _ := store.Get(ctx, "s")
	if after.KeyID != before.KeyID || !bytes.Equal(after.Wrapped, before.Wrapped) {
		t.Fatal("a failed unwrap changed the entry")
	}
	w.fail(nil, nil, 0)
	if _, err := keys.Get(ctx, "s"); err != nil {
		t.Fatalf("Get once the service is back: %v", err)
	}
	if n := w.unwraps.Load(); n != 4 {
		t.Fatalf("%d unwraps for 3 failed calls and 1 that succeeded: a failure was cached", n)
	}
}

// A data key wrapped by a KEK the service does not give this client fails with cipher.ErrUnknownKey,
// naming the KEK.
func TestKMSUnknownKey(t *testing.T) {
	ctx := context.Background()
	kms, store := keyOfS(t, "old")
	_, err := newKMSKeys(t, kms.client(t, "new"), store).Get(ctx, "s")
	if !errors.Is(err, cipher.ErrUnknownKey) || !strings.Contains(err.Error(), `key "old"`) || !strings.Contains(err.Error(), `"s"`) {
		t.Fatalf("Get without the KEK: %v, want cipher.ErrUnknownKey naming it and the subject", err)
	}
}

// ctxBlindStore ignores the context, so that the Wrapper is the first to see a cancelled one.
type ctxBlindStore struct{ datakey.Store }

func (s ctxBlindStore) Get(_ context.Context, subject string) (datakey.Entry, error) {
	return s.Store.Get(context.Background(), subject)
}

func (s ctxBlindStore) List(_ context.Context, after string, limit int) ([]datakey.Entry, error) {
	return s.Store.List(context.Background(), after, limit)
}

// The Wrapper is given the caller's context: a cancelled one fails with context.Canceled, stores
// nothing and caches nothing.
func TestKMSContextCancelled(t *testing.T) {
	ctx := context.Background()
	kms, mem := newFakeKMS(), datakey.NewMemoryStore()
	store := ctxBlindStore{mem}
	if _, err := newKMSKeys(t, kms.client(t, "k1"), store).GetOrCreate(ctx, "made"); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	keys := newKMSKeys(t, kms.client(t, "k1"), store)
	if _, err := keys.Get(cancelled, "made"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v, want context.Canceled", err)
	}
	if _, err := keys.GetOrCreate(cancelled, "new"); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetOrCreate: %v, want context.Canceled", err)
	}
	if _, err := mem.Get(ctx, "new"); !errors.Is(err, datakey.ErrNoKey) {
		t.Fatalf("a cancelled GetOrCreate stored a key: %v", err)
	}
	if _, err := keys.Rewrap(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Rewrap: %v, want context.Canceled", err)
	}
	if _, err := keys.Get(ctx, "made"); err != nil {
		t.Fatalf("Get after the cancelled calls: %v", err)
	}
}

// makeSubjects gives n subjects data keys wrapped by w's current key.
func makeSubjects(t *testing.T, w datakey.Wrapper, store datakey.Store, n int) {
	t.Helper()
	eachSubject(t, w, store, n, (*datakey.Keys).GetOrCreate)
}

// eachSubject calls get, a method of Keys without a cache over w and store, for each of n subjects.
func eachSubject(t *testing.T, w datakey.Wrapper, store datakey.Store, n int, get func(*datakey.Keys, context.Context, string) (*cipher.AESGCM, error)) {
	t.Helper()
	keys := newKMSKeys(t, w, store, datakey.WithCacheSize(0))
	for i := range n {
		if _, err := get(keys, context.Background(), fmt.Sprintf("subject-%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func byKey(t *testing.T, store datakey.Store) map[string]int {
	t.Helper()
	sum, err := datakey.Summarize(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	return sum.ByKeyID
}

// rotatedSubjects returns a fake key management service, a store with the data keys of n subjects
// wrapped by its key k1, and a client of it whose current key is now k2.
func rotatedSubjects(t *testing.T, n int) (*fakeKMS, *datakey.MemoryStore, *kmsClient) {
	t.Helper()
	kms, store := newFakeKMS(), datakey.NewMemoryStore()
	w := kms.client(t, "k1").(*kmsClient)
	makeSubjects(t, w, store, n)
	if err := w.AddKey("k2"); err != nil {
		t.Fatal(err)
	}
	return kms, store, w
}

// Rewrap stops at the first failure of the service, keeps what it rewrapped before, and says so;
// rewrapping again goes on where it stopped. No data key is lost.
func TestKMSRewrapStops(t *testing.T) {
	ctx := context.Background()
	const n = 2*datakey.RewrapBatchSize + 500
	kms, store, w := rotatedSubjects(t, n)
	keys := newKMSKeys(t, w, store)

	const done = datakey.RewrapBatchSize + 200 // into the second page, whose first part is stored
	w.fail(nil, errKMSDown, done)
	res, err := keys.Rewrap(ctx)
	want := datakey.RewrapResult{KeyID: "k2", Rewrapped: done}
	if !errors.Is(err, errKMSDown) || res != want || !strings.Contains(err.Error(), fmt.Sprintf("stopped after rewrapping %d", done)) {
		t.Fatalf("Rewrap with the service failing = %+v, %v; want %+v and errKMSDown", res, err, want)
	}
	if got := byKey(t, store); got["k2"] != done || got["k1"] != n-done {
		t.Fatalf("after the stop: %v", got)
	}
	if u := w.unwraps.Load(); u != done+1 {
		t.Fatalf("%d unwraps: Rewrap went on after the service failed", u)
	}

	w.fail(nil, nil, 0)
	res, err = keys.Rewrap(ctx)
	if want := (datakey.RewrapResult{KeyID: "k2", Rewrapped: n - done, Current: done}); err != nil || res != want {
		t.Fatalf("second Rewrap = %+v, %v; want %+v", res, err, want)
	}
	checkAllUnwrap(t, kms.client(t, "k2"), store, n)

	// A failing wrap stops Rewrap too, leaving the entries as they were: it is not the entries' fault.
	if err := w.AddKey("k3"); err != nil {
		t.Fatal(err)
	}
	w.fail(errKMSDown, nil, 0)
	wraps := w.wraps.Load()
	res, err = keys.Rewrap(ctx)
	if !errors.Is(err, errKMSDown) || res.Failed != 0 || res.Rewrapped != 0 || w.wraps.Load() != wraps+1 {
		t.Fatalf("Rewrap with wrapping failing = %+v, %v (%d wraps); want a stop at once", res, err, w.wraps.Load()-wraps)
	}
	if got := byKey(t, store); got["k2"] != n {
		t.Fatalf("after a failed wrap: %v", got)
	}
}

// A context cancelled while Rewrap runs stops it; what it stored before stays, nothing is lost.
func TestKMSRewrapCancelled(t *testing.T) {
	const n = 2*datakey.RewrapBatchSize + 500
	kms, store, w := rotatedSubjects(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.onUnwrap = func(n int64) {
		if n == datakey.RewrapBatchSize+100 {
			cancel()
		}
	}
	res, err := newKMSKeys(t, w, store).Rewrap(ctx)
	if !errors.Is(err, context.Canceled) || res.Rewrapped != datakey.RewrapBatchSize || res.Failed != 0 {
		t.Fatalf("cancelled Rewrap = %+v, %v; want the first page rewrapped and context.Canceled", res, err)
	}
	if got := byKey(t, store); got["k2"] != datakey.RewrapBatchSize || got["k1"] != n-datakey.RewrapBatchSize {
		t.Fatalf("after the cancelled Rewrap: %v", got)
	}
	checkAllUnwrap(t, kms.client(t, "k1", "k2"), store, n)
}

// checkAllUnwrap fails unless w unwraps the data keys of the n subjects of makeSubjects.
func checkAllUnwrap(t *testing.T, w datakey.Wrapper, store datakey.Store, n int) {
	t.Helper()
	eachSubject(t, w, store, n, (*datakey.Keys).Get)
}

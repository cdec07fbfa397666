package datakey_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
)

const ringKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func testRing(t testing.TB) *cipher.KeyRing {
	t.Helper()
	r, err := cipher.ParseKeyRing("1:" + ringKey)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newKeys(t testing.TB, s datakey.Store, opts ...datakey.Option) *datakey.Keys {
	t.Helper()
	k, err := datakey.New(testRing(t), s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// countingStore counts the Gets that reach the store, and can fail on demand.
type countingStore struct {
	datakey.Store
	gets atomic.Int64
	fail error
}

func (s *countingStore) Get(ctx context.Context, subject string) (datakey.Entry, error) {
	s.gets.Add(1)
	if s.fail != nil {
		return datakey.Entry{}, s.fail
	}
	return s.Store.Get(ctx, subject)
}

func (s *countingStore) List(ctx context.Context, after string, limit int) ([]datakey.Entry, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	return s.Store.List(ctx, after, limit)
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	store := datakey.NewMemoryStore()
	tests := []struct {
		name  string
		ring  *cipher.KeyRing
		store datakey.Store
		opts  []datakey.Option
		want  string
	}{
		{"nil ring", nil, store, nil, "nil key ring"},
		{"empty ring", cipher.NewKeyRing(), store, nil, "key ring is empty"},
		{"nil store", testRing(t), nil, nil, "nil store"},
		{"negative cache", testRing(t), store, []datakey.Option{datakey.WithCacheSize(-1)}, "WithCacheSize(-1)"},
		{"zero max age", testRing(t), store, []datakey.Option{datakey.WithCacheMaxAge(0)}, "WithCacheMaxAge(0s)"},
	}
	for _, tt := range tests {
		k, err := datakey.New(tt.ring, tt.store, tt.opts...)
		if err == nil || k != nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, %v; want an error naming %q", tt.name, k, err, tt.want)
		}
	}
	if _, err := datakey.New(testRing(t), store, nil, datakey.WithCacheSize(0), nil); err != nil {
		t.Fatalf("nil options: %v", err)
	}
}

// Get never makes a key; GetOrCreate makes one, once, however many goroutines ask at the same time.
func TestGetOrCreate(t *testing.T) {
	ctx := context.Background()
	store := datakey.NewMemoryStore()
	keys := newKeys(t, store)
	if _, err := keys.Get(ctx, "s"); !errors.Is(err, datakey.ErrNoKey) || !strings.Contains(err.Error(), `"s"`) {
		t.Fatalf("Get of a new subject: %v, want ErrNoKey naming it", err)
	}
	if page, _ := store.List(ctx, "", 10); len(page) != 0 {
		t.Fatalf("Get made a key: %+v", page)
	}

	const n = 8
	start := make(chan struct{})
	got := make([]*cipher.AESGCM, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			var err error
			// Each goroutine a process of its own: no shared cache.
			if got[i], err = newKeys(t, store).GetOrCreate(ctx, "s"); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	ct, _ := got[0].Encrypt([]byte("m"), nil)
	for i := range n {
		if pt, err := got[i].Decrypt(ct, nil); err != nil || string(pt) != "m" {
			t.Fatalf("goroutine %d got another key: %v", i, err)
		}
	}
	e, err := store.Get(ctx, "s")
	if err != nil || e.KeyID != "1" || len(e.Wrapped) != 32+cipher.Overhead {
		t.Fatalf("stored entry %+v %v", e, err)
	}

	for _, bad := range []string{"", strings.Repeat("x", datakey.MaxSubjectLength+1), "a\nb", "\xff"} {
		if _, err := keys.GetOrCreate(ctx, bad); !errors.Is(err, datakey.ErrInvalidSubject) {
			t.Errorf("GetOrCreate(%q): %v, want ErrInvalidSubject", bad, err)
		}
		if err := keys.Forget(ctx, bad); !errors.Is(err, datakey.ErrInvalidSubject) {
			t.Errorf("Forget(%q): %v, want ErrInvalidSubject", bad, err)
		}
	}
}

// The cache serves keys without the store, up to its size and maximum age.
func TestCache(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: datakey.NewMemoryStore()}
	keys := newKeys(t, store, datakey.WithCacheSize(2))
	for _, s := range []string{"a", "b", "a", "b", "a"} {
		if _, err := keys.GetOrCreate(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.gets.Load(); n != 2 {
		t.Fatalf("%d store reads for 2 subjects, want 2", n)
	}
	if _, err := keys.Get(ctx, "c"); !errors.Is(err, datakey.ErrNoKey) {
		t.Fatal(err)
	}
	if _, err := keys.GetOrCreate(ctx, "c"); err != nil { // evicts b, the least recently used
		t.Fatal(err)
	}
	before := store.gets.Load()
	for _, s := range []string{"a", "c", "b"} {
		if _, err := keys.Get(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.gets.Load() - before; n != 1 {
		t.Fatalf("%d store reads, want 1 (for the evicted key)", n)
	}

	for name, opt := range map[string]datakey.Option{"no cache": datakey.WithCacheSize(0), "expired": datakey.WithCacheMaxAge(time.Nanosecond)} {
		store.gets.Store(0)
		keys := newKeys(t, store, opt)
		for range 3 {
			if _, err := keys.Get(ctx, "a"); err != nil {
				t.Fatal(err)
			}
		}
		if n := store.gets.Load(); n != 3 {
			t.Errorf("%s: %d store reads for 3 Gets, want 3", name, n)
		}
	}

	store.fail = errors.New("store down")
	if _, err := newKeys(t, store).Get(ctx, "a"); !errors.Is(err, store.fail) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("store failure: %v", err)
	}
	if _, err := newKeys(t, store).Rewrap(ctx); !errors.Is(err, store.fail) {
		t.Fatalf("store failure: %v", err)
	}
	if _, err := datakey.Summarize(ctx, store); !errors.Is(err, store.fail) {
		t.Fatalf("store failure: %v", err)
	}
}

// A Forget drops the key from the cache at once, even when it races with a Get that is filling the
// cache; other processes see it once their cached key is older than the maximum age.
func TestForgetDropsCachedKey(t *testing.T) {
	ctx := context.Background()
	store := datakey.NewMemoryStore()
	other := newKeys(t, store, datakey.WithCacheMaxAge(time.Hour))
	if _, err := other.GetOrCreate(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	keys := newKeys(t, store)
	if _, err := keys.Get(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := keys.Forget(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if keys.Forgets() != 1 {
		t.Fatalf("Forgets = %d", keys.Forgets())
	}
	_, err := keys.Get(ctx, "s")
	var fe *datakey.ForgottenError
	if !errors.Is(err, datakey.ErrForgotten) || !errors.As(err, &fe) || fe.Subject != "s" || fe.At.IsZero() {
		t.Fatalf("Get after Forget: %v", err)
	}
	if _, err := keys.GetOrCreate(ctx, "s"); !errors.Is(err, datakey.ErrForgotten) {
		t.Fatalf("GetOrCreate after Forget: %v", err)
	}
	// The documented limit: another process's cache keeps the key up to its maximum age.
	if _, err := other.Get(ctx, "s"); err != nil {
		t.Fatalf("another process within its cache's maximum age: %v", err)
	}
	if _, err := newKeys(t, store, datakey.WithCacheMaxAge(time.Nanosecond)).Get(ctx, "s"); !errors.Is(err, datakey.ErrForgotten) {
		t.Fatalf("another process past its maximum age: %v", err)
	}

	// Gets and Forgets of the same subjects at once: once Forget has returned, no Get succeeds.
	for i := range 1000 {
		subject := fmt.Sprint("race-", i)
		if _, err := keys.GetOrCreate(ctx, subject); err != nil {
			t.Fatal(err)
		}
		keys := newKeys(t, store) // empty cache: the Get below fills it
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			keys.Get(ctx, subject)
		})
		wg.Go(func() {
			<-start
			if err := keys.Forget(ctx, subject); err != nil {
				t.Error(err)
			}
		})
		close(start)
		wg.Wait()
		if _, err := keys.Get(ctx, subject); !errors.Is(err, datakey.ErrForgotten) {
			t.Fatalf("round %d: Get after a racing Forget: %v", i, err)
		}
	}
}

// Rewrap replaces the wrapping of every data key by the ring's current key, and nothing else.
func TestRewrap(t *testing.T) {
	ctx := context.Background()
	store := datakey.NewMemoryStore()
	ring := testRing(t)
	keys, err := datakey.New(ring, store)
	if err != nil {
		t.Fatal(err)
	}
	subjects := make([]string, 2*datakey.RewrapBatchSize+7) // several pages
	cts := map[string][]byte{}
	for i := range subjects {
		subjects[i] = fmt.Sprintf("subject-%05d", i)
		c, err := keys.GetOrCreate(ctx, subjects[i])
		if err != nil {
			t.Fatal(err)
		}
		cts[subjects[i]], _ = c.Encrypt([]byte(subjects[i]), nil)
	}
	if err := keys.Forget(ctx, subjects[3]); err != nil {
		t.Fatal(err)
	}
	key2, _ := cipher.GenerateKey(256)
	k2, _ := cipher.ParseKey(key2)
	if err := ring.Add("2", k2); err != nil {
		t.Fatal(err)
	}
	res, err := keys.Rewrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := datakey.RewrapResult{KeyID: "2", Rewrapped: len(subjects) - 1, Forgotten: 1}
	if res != want {
		t.Fatalf("Rewrap = %+v, want %+v", res, want)
	}
	if err := ring.Remove("1"); err != nil {
		t.Fatal(err)
	}
	fresh, err := datakey.New(ring, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subjects {
		c, err := fresh.Get(ctx, s)
		if s == subjects[3] {
			if !errors.Is(err, datakey.ErrForgotten) {
				t.Fatalf("forgotten subject: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := c.Decrypt(cts[s], nil); err != nil || string(pt) != s {
			t.Fatalf("%s: the data key changed: %v", s, err)
		}
	}
}

// Keys never logs, nor puts into errors, key material: neither the ring's keys nor data keys.
func TestNoKeyMaterialInLogsOrErrors(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	store := datakey.NewMemoryStore()
	ring := testRing(t)
	keys, err := datakey.New(ring, store, datakey.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	var outputs []string
	note := func(err error) {
		if err != nil {
			outputs = append(outputs, err.Error())
		}
	}
	_, err = keys.GetOrCreate(ctx, "a")
	note(err)
	e, _ := store.Get(ctx, "a")
	e.Wrapped[0] ^= 1
	store.Rewrap(ctx, []datakey.Rewrapped{{Entry: e, PreviousKeyID: "1"}})
	_, err = newKeys(t, store).Get(ctx, "a")
	note(err)
	if err := keys.Forget(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	_, err = keys.Get(ctx, "a")
	note(err)
	_, err = keys.Rewrap(ctx)
	note(err)
	_, err = keys.GetOrCreate(ctx, "b")
	note(err)
	if len(outputs) < 2 || !strings.Contains(logs.String(), "subject=a") || !strings.Contains(logs.String(), "wrapped_by=1") {
		t.Fatalf("expected errors and logs: %q %s", outputs, logs.String())
	}
	raw, _ := base64.StdEncoding.DecodeString(ringKey)
	secrets := []string{ringKey, ringKey[:16], string(raw)}
	for _, out := range append(outputs, logs.String()) {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("%q contains key material", out)
			}
		}
	}
}

// A ring whose key has the ID of the one that wrapped a data key, but other bytes (a ring made anew,
// or another application's) is what a new user most often meets: the error says so, beside the
// possibility that the store's entry was tampered with.
func TestWrongRingKeyIsNamed(t *testing.T) {
	ctx := context.Background()
	store := datakey.NewMemoryStore()
	if _, err := newKeys(t, store).GetOrCreate(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	other, err := cipher.GenerateKey(256)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := cipher.ParseKeyRing("1:" + other)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := datakey.New(ring, store)
	if err != nil {
		t.Fatal(err)
	}
	const want = `the ring's key "1" is not the key that wrapped it`
	if _, err := keys.Get(ctx, "s"); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Get: %v; want an error saying %q", err, want)
	}
	// Rewrapping with key 2 unwraps with key 1 first.
	if err := ring.Add("2", make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Rewrap(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Rewrap: %v; want an error saying %q", err, want)
	}
}

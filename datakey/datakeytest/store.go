// Package datakeytest is the conformance suite of data key stores: every datakey.Store of this module
// runs it, and so can a third party's. Run tests the store's contract and, with the application's
// event recorders of the same backend, the whole of key rotation, rewrapping, forgetting and tamper
// detection through the mapper and the repository.
//
// The data keys of those scenarios are wrapped by key rings, or, given Backend.Wrapper, by the
// datakey.Wrapper of a key management service (or a stand-in for one), which passes the same
// scenarios.
package datakeytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/datakey"
)

// Backend is what a test runs on: a fresh, empty data key store, and the recorders of the
// application's events and snapshots, preferably in the same database.
type Backend struct {
	Store     datakey.Store
	Events    es.AggregateRecorder
	Snapshots es.AggregateRecorder
	// Wrapper, when set, returns a Wrapper holding the key-encryption keys kekIDs, the last one
	// current, for the data key scenarios. The Wrappers it returns during one test hold the same key
	// under the same ID, as the processes of one application share their key management service. When
	// nil, the scenarios use cipher.KeyRings.
	Wrapper func(t *testing.T, kekIDs ...string) Wrapper
}

// Wrapper is a datakey.Wrapper whose key-encryption keys the scenarios rotate.
type Wrapper interface {
	datakey.Wrapper
	// AddKey adds the key-encryption key kekID and makes it the current one. The key is the one the
	// test's other Wrappers hold under kekID (a new one if none does).
	AddKey(kekID string) error
}

// Run runs every test of the suite; open must return a fresh Backend for each call, cleaned up when its
// test ends.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	t.Run("Store", func(t *testing.T) { TestStore(t, func(t *testing.T) datakey.Store { return open(t).Store }) })
	t.Run("Rotation", func(t *testing.T) { TestRotation(t, open) })
	t.Run("Rewrap", func(t *testing.T) { TestRewrap(t, open) })
	t.Run("Forgetting", func(t *testing.T) { TestForgetting(t, open) })
	t.Run("Tampering", func(t *testing.T) { TestTampering(t, open) })
}

// TestStore checks the contract of datakey.Store.
func TestStore(t *testing.T, open func(t *testing.T) datakey.Store) {
	ctx := context.Background()
	entry := func(subject, keyID string, wrapped ...byte) datakey.Entry {
		return datakey.Entry{Subject: subject, KeyID: keyID, Wrapped: wrapped}
	}

	t.Run("Get", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, "nobody"); !errors.Is(err, datakey.ErrNoKey) {
			t.Fatalf("Get of an unknown subject: %v, want ErrNoKey", err)
		}
		long := strings.Repeat("é", datakey.MaxSubjectLength/2) // 254 bytes of UTF-8
		for _, e := range []datakey.Entry{entry("a", "1", 1, 2, 3), entry(long, "key-2", bytes.Repeat([]byte{0xff}, 60)...), entry("Ä/b c", "1", 0)} {
			got, err := s.Add(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "Add", got, e)
			got, err = s.Get(ctx, e.Subject)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "Get", got, e)
		}
		// Subjects are compared exactly.
		if _, err := s.Get(ctx, "A"); !errors.Is(err, datakey.ErrNoKey) {
			t.Fatalf("Get(\"A\") after Add(\"a\"): %v", err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Get(cancelled, "a"); err == nil {
			t.Error("Get with a cancelled context succeeded")
		}
	})

	t.Run("AddKeepsTheFirst", func(t *testing.T) {
		s := open(t)
		first := entry("s", "1", 1)
		if _, err := s.Add(ctx, first); err != nil {
			t.Fatal(err)
		}
		got, err := s.Add(ctx, entry("s", "2", 2))
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "second Add", got, first)
	})

	t.Run("ConcurrentAdd", func(t *testing.T) {
		s := open(t)
		const n = 8
		start := make(chan struct{})
		got := make([]datakey.Entry, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.Add(ctx, entry("race", fmt.Sprint(i), byte(i)))
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			mustEqual(t, fmt.Sprintf("Add %d", i), got[i], got[0])
		}
		stored, err := s.Get(ctx, "race")
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "Get after the race", stored, got[0])
	})

	t.Run("Forget", func(t *testing.T) {
		s := open(t)
		if _, err := s.Add(ctx, entry("a", "1", 1, 2)); err != nil {
			t.Fatal(err)
		}
		for _, subject := range []string{"a", "never-had-a-key"} {
			if err := s.Forget(ctx, subject); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, subject)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Forgotten() || got.Subject != subject || got.KeyID != "" || got.Wrapped != nil {
				t.Fatalf("entry after Forget: %+v, want a tombstone", got)
			}
			// Forgetting again keeps the first date; adding a key afterwards gets the tombstone.
			if err := s.Forget(ctx, subject); err != nil {
				t.Fatal(err)
			}
			again, err := s.Get(ctx, subject)
			if err != nil || !again.ForgottenAt.Equal(got.ForgottenAt) {
				t.Fatalf("second Forget: %+v %v, want the date %v kept", again, err, got.ForgottenAt)
			}
			added, err := s.Add(ctx, entry(subject, "2", 9))
			if err != nil || !added.Forgotten() {
				t.Fatalf("Add after Forget returned %+v %v, want the tombstone", added, err)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		s := open(t)
		subjects := []string{"b", "a", "ab", "B", "é", "z", "a\u00a0"}
		for i, sub := range subjects {
			if _, err := s.Add(ctx, entry(sub, "1", byte(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Forget(ctx, "z"); err != nil {
			t.Fatal(err)
		}
		want := slices.Sorted(slices.Values(subjects)) // byte order
		var all []string
		for after := ""; ; {
			page, err := s.List(ctx, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				all = append(all, e.Subject)
				if e.Subject == "z" != e.Forgotten() {
					t.Errorf("List: %+v", e)
				}
			}
			if len(page) < 3 {
				break
			}
			after = page[len(page)-1].Subject
		}
		if !slices.Equal(all, want) {
			t.Fatalf("List pages: %q, want %q", all, want)
		}
		if page, err := s.List(ctx, want[len(want)-2], 10); err != nil || len(page) != 1 || page[0].Subject != want[len(want)-1] {
			t.Fatalf("List after the last but one: %+v %v", page, err)
		}
		if page, err := s.List(ctx, "", 0); err != nil || len(page) != 0 {
			t.Fatalf("List with limit 0: %+v %v", page, err)
		}
	})

	t.Run("Rewrap", func(t *testing.T) {
		s := open(t)
		for _, sub := range []string{"a", "b", "c"} {
			if _, err := s.Add(ctx, entry(sub, "1", 1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Forget(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		n, err := s.Rewrap(ctx, []datakey.Rewrapped{
			{Entry: entry("a", "2", 2, 2), PreviousKeyID: "1"},
			{Entry: entry("b", "3", 3, 3), PreviousKeyID: "0"}, // rewrapped meanwhile: left alone
			{Entry: entry("c", "2", 2, 2), PreviousKeyID: "1"}, // forgotten: never resurrected
			{Entry: entry("d", "2", 2, 2), PreviousKeyID: "1"}, // unknown: not added
		})
		if err != nil || n != 1 {
			t.Fatalf("Rewrap = %d, %v; want 1", n, err)
		}
		for _, want := range []datakey.Entry{entry("a", "2", 2, 2), entry("b", "1", 1)} {
			got, err := s.Get(ctx, want.Subject)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "after Rewrap", got, want)
		}
		if got, err := s.Get(ctx, "c"); err != nil || !got.Forgotten() {
			t.Fatalf("forgotten subject after Rewrap: %+v %v", got, err)
		}
		if _, err := s.Get(ctx, "d"); !errors.Is(err, datakey.ErrNoKey) {
			t.Fatalf("unknown subject after Rewrap: %v", err)
		}
		if n, err := s.Rewrap(ctx, nil); err != nil || n != 0 {
			t.Fatalf("empty Rewrap = %d, %v", n, err)
		}
	})

	t.Run("NoAliasing", func(t *testing.T) {
		s := open(t)
		in := entry("a", "1", 1, 2, 3)
		if _, err := s.Add(ctx, in); err != nil {
			t.Fatal(err)
		}
		in.Wrapped[0] = 9
		got, err := s.Get(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		got.Wrapped[1] = 9
		again, err := s.Get(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "after changing slices given and returned", again, entry("a", "1", 1, 2, 3))
	})
}

func mustEqual(t *testing.T, what string, got, want datakey.Entry) {
	t.Helper()
	if got.Subject != want.Subject || got.KeyID != want.KeyID || !bytes.Equal(got.Wrapped, want.Wrapped) || got.Forgotten() != want.Forgotten() {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

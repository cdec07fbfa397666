package cipher_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/cipher"
)

func TestParseKeyRing(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	ring, err := cipher.ParseKeyRing(" 1:" + k1 + ",\n\t2:" + k2 + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := ring.IDs(); fmt.Sprint(got) != "[1 2]" || ring.Len() != 2 {
		t.Fatalf("IDs = %v", got)
	}
	id, cur, err := ring.Current()
	if err != nil || id != "2" {
		t.Fatalf("Current = %q, %v", id, err)
	}
	one, err := cipher.ParseKeyRing("1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	// Each ID decrypts what its key encrypted, and only that.
	_, c1, _ := one.Current()
	ct, _ := c1.Encrypt([]byte("x"), nil)
	r1, _ := ring.Key("1")
	if pt, err := r1.Decrypt(ct, nil); err != nil || string(pt) != "x" {
		t.Fatalf("key 1: %q %v", pt, err)
	}
	if _, err := cur.Decrypt(ct, nil); !errors.Is(err, cipher.ErrDecrypt) {
		t.Fatalf("key 2 decrypted key 1's message: %v", err)
	}
}

// Every malformed key ring is an error naming the entry, and never showing a key.
func TestParseKeyRingErrors(t *testing.T) {
	k := mustKey(t)
	short := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX" // 24 bytes, no padding: looks like an ID
	tests := []struct {
		text, want string
	}{
		{"", "no keys"},
		{" \n", "no keys"},
		{k, "entry 1 has no key ID"},
		{"1:" + k + "," + k, "entry 2 has no key ID"},
		{"1:" + k + ",", "entry 2 is empty"},
		{":" + k, "key ID of 0 bytes"},
		{"a b:" + k, "at byte 1"},
		{k + ":1", "key ID"},
		{short + ":1", "key ID of 32 bytes"},
		{"1:" + k + ",1:" + mustKey(t), `"1" is in the ring already`},
		{"1:" + k[:10], `key "1": cipher: key is not standard base64`},
		{"1:" + k[:len(k)-4] + "====", `key "1"`},
		{"1:AAAA", `key "1": cipher: key of 3 bytes`},
	}
	for _, tt := range tests {
		_, err := cipher.ParseKeyRing(tt.text)
		if err == nil || !errors.Is(err, cipher.ErrKeyRing) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseKeyRing(%q) = %v, want ErrKeyRing naming %q", tt.text, err, tt.want)
			continue
		}
		for _, secret := range []string{k, k[:20], short} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains key material", err)
			}
		}
	}
}

func TestKeyRingRotation(t *testing.T) {
	ring := cipher.NewKeyRing()
	if _, _, err := ring.Current(); !errors.Is(err, cipher.ErrUnknownKey) {
		t.Fatalf("empty ring: %v", err)
	}
	if _, err := ring.Key("1"); !errors.Is(err, cipher.ErrUnknownKey) || !strings.Contains(err.Error(), `"1"`) {
		t.Fatalf("empty ring: %v", err)
	}
	key := func() []byte {
		b, err := cipher.ParseKey(mustKey(t))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	k1 := key()
	if err := ring.Add("1", k1); err != nil {
		t.Fatal(err)
	}
	_, c1, _ := ring.Current()
	ct, _ := c1.Encrypt([]byte("old"), []byte("ad"))
	clear(k1) // the ring has its own copy
	if err := ring.Add("2", key()); err != nil {
		t.Fatal(err)
	}
	if id, _, _ := ring.Current(); id != "2" {
		t.Fatalf("current %q after rotation", id)
	}
	old, err := ring.Key("1")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := old.Decrypt(ct, []byte("ad")); err != nil || string(pt) != "old" {
		t.Fatalf("after rotation: %q %v", pt, err)
	}
	if err := ring.Remove("2"); !errors.Is(err, cipher.ErrKeyRing) || !strings.Contains(err.Error(), "current") {
		t.Fatalf("removed the current key: %v", err)
	}
	if err := ring.Remove("3"); !errors.Is(err, cipher.ErrUnknownKey) {
		t.Fatalf("removed an unknown key: %v", err)
	}
	if err := ring.Remove("1"); err != nil {
		t.Fatal(err)
	}
	_, err = ring.Key("1")
	if !errors.Is(err, cipher.ErrUnknownKey) || err.Error() != `cipher: key not in the key ring: no key "1" (the ring has ["2"])` {
		t.Fatalf("removed key: %v", err)
	}
	for _, bad := range []struct {
		id  string
		key []byte
	}{{"", key()}, {"x/y", key()}, {"3", []byte("short")}, {"2", key()}} {
		if err := ring.Add(bad.id, bad.key); err == nil {
			t.Errorf("Add(%q) accepted", bad.id)
		}
	}
	if fmt.Sprint(ring.IDs()) != "[2]" {
		t.Fatalf("failed Adds changed the ring: %v", ring.IDs())
	}
}

// The ring's text forms and log value show IDs, never keys.
func TestKeyRingNeverShowsKeys(t *testing.T) {
	k := mustKey(t)
	ring, err := cipher.ParseKeyRing("old:" + k)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("ring", "ring", ring)
	raw, _ := cipher.ParseKey(k)
	for _, s := range []string{fmt.Sprint(ring), fmt.Sprintf("%v %+v %#v %s", ring, ring, ring, ring), logs.String()} {
		if strings.Contains(s, k) || bytes.Contains([]byte(s), raw) || !strings.Contains(s, "old") {
			t.Errorf("%q shows key material or misses the ID", s)
		}
	}
	if !strings.Contains(logs.String(), "ring.current=old") {
		t.Errorf("log: %s", logs.String())
	}
}

// Keys may be added and removed while other goroutines encrypt and decrypt (run with -race).
func TestKeyRingConcurrentUse(t *testing.T) {
	ring, err := cipher.ParseKeyRing("0:" + mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			<-start
			for range 200 {
				id, c, err := ring.Current()
				if err != nil {
					t.Error(err)
					return
				}
				ct, _ := c.Encrypt([]byte("m"), nil)
				k, err := ring.Key(id)
				if err != nil {
					continue // removed meanwhile
				}
				if _, err := k.Decrypt(ct, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		<-start
		for i := 1; i <= 50; i++ {
			b, _ := cipher.ParseKey(mustKey(t))
			if err := ring.Add(fmt.Sprint(i), b); err != nil {
				t.Error(err)
			}
			if err := ring.Remove(fmt.Sprint(i - 1)); err != nil {
				t.Error(err)
			}
		}
	})
	close(start)
	wg.Wait()
	if ring.Len() != 1 {
		t.Fatalf("ring has %v", ring.IDs())
	}
}

// WrapKey wraps with the current key, bound to the additional data and to the key's ID; UnwrapKey
// undoes it with the key the ID names.
func TestKeyRingWrapKey(t *testing.T) {
	ctx := context.Background()
	k1 := mustKey(t)
	ring, err := cipher.ParseKeyRing("1:" + k1 + ",same:" + k1) // one key under two IDs
	if err != nil {
		t.Fatal(err)
	}
	if id, err := ring.CurrentKeyID(ctx); err != nil || id != "same" {
		t.Fatalf("CurrentKeyID = %q, %v", id, err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	id, wrapped, err := ring.WrapKey(ctx, key, []byte("aad"))
	if err != nil || id != "same" || len(wrapped) != len(key)+cipher.Overhead {
		t.Fatalf("WrapKey = %q, %d bytes, %v", id, len(wrapped), err)
	}
	// The wrapped key is the key encrypted under the additional data followed by the ID.
	c, _ := ring.Key("same")
	if got, err := c.Decrypt(wrapped, []byte("aadsame")); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("decrypt with the documented additional data: %v", err)
	}
	if got, err := ring.UnwrapKey(ctx, "same", wrapped, []byte("aad")); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("UnwrapKey = %v", err)
	}
	for name, try := range map[string]func() ([]byte, error){
		"other additional data": func() ([]byte, error) { return ring.UnwrapKey(ctx, "same", wrapped, []byte("aaD")) },
		"relabelled, same key":  func() ([]byte, error) { return ring.UnwrapKey(ctx, "1", wrapped, []byte("aad")) },
	} {
		if got, err := try(); !errors.Is(err, cipher.ErrDecrypt) || got != nil {
			t.Errorf("%s: %v, want cipher.ErrDecrypt", name, err)
		}
	}
	if _, err := ring.UnwrapKey(ctx, "9", wrapped, []byte("aad")); !errors.Is(err, cipher.ErrUnknownKey) || !strings.Contains(err.Error(), `"9"`) {
		t.Errorf("unknown key: %v, want cipher.ErrUnknownKey naming it", err)
	}
	empty := cipher.NewKeyRing()
	if _, _, err := empty.WrapKey(ctx, key, nil); !errors.Is(err, cipher.ErrUnknownKey) {
		t.Errorf("WrapKey of an empty ring: %v", err)
	}
	if _, err := empty.CurrentKeyID(ctx); !errors.Is(err, cipher.ErrUnknownKey) {
		t.Errorf("CurrentKeyID of an empty ring: %v", err)
	}
}

package cipher_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/cipher"
)

func mustCipher(t testing.TB, bits int) *cipher.AESGCM {
	t.Helper()
	key, err := cipher.GenerateKey(bits)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cipher.NewFromBase64(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	for _, bits := range []int{128, 192, 256} {
		c := mustCipher(t, bits)
		for _, n := range []int{0, 1, 15, 16, 17, 200, 4096} {
			plaintext := bytes.Repeat([]byte{'x'}, n)
			ad := []byte("originator|1|topic")
			ct, err := c.Encrypt(plaintext, ad)
			if err != nil {
				t.Fatalf("%d bits, %d bytes: Encrypt: %v", bits, n, err)
			}
			if len(ct) != n+cipher.Overhead || cap(ct) != len(ct) {
				t.Errorf("%d bits, %d bytes: ciphertext len %d cap %d, want both %d",
					bits, n, len(ct), cap(ct), n+cipher.Overhead)
			}
			got, err := c.Decrypt(ct, ad)
			if err != nil {
				t.Fatalf("%d bits, %d bytes: Decrypt: %v", bits, n, err)
			}
			if !bytes.Equal(got, plaintext) {
				t.Errorf("%d bits, %d bytes: round trip changed the plaintext", bits, n)
			}
		}
	}
}

func TestFreshNonce(t *testing.T) {
	c := mustCipher(t, 256)
	a, _ := c.Encrypt([]byte("same"), nil)
	b, _ := c.Encrypt([]byte("same"), nil)
	if bytes.Equal(a[:cipher.NonceSize], b[:cipher.NonceSize]) || bytes.Equal(a, b) {
		t.Fatal("two encryptions of the same plaintext share a nonce")
	}
}

func TestDecryptFailures(t *testing.T) {
	c := mustCipher(t, 256)
	other := mustCipher(t, 256)
	ad := []byte("ad")
	ct, err := c.Encrypt([]byte("a secret event"), ad)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    *cipher.AESGCM
		ct   []byte
		ad   []byte
	}{
		{"wrong key", other, ct, ad},
		{"wrong additional data", c, ct, []byte("other")},
		{"missing additional data", c, ct, nil},
		{"empty", c, nil, ad},
		{"nonce only", c, ct[:cipher.NonceSize], ad},
		{"one byte short of overhead", c, ct[:cipher.Overhead-1], ad},
		{"appended byte", c, append(bytes.Clone(ct), 0), ad},
	}
	for i := range ct {
		tampered := bytes.Clone(ct)
		tampered[i] ^= 0x01
		tests = append(tests, struct {
			name string
			c    *cipher.AESGCM
			ct   []byte
			ad   []byte
		}{"flipped byte", c, tampered, ad})
	}
	for n := range len(ct) {
		tests = append(tests, struct {
			name string
			c    *cipher.AESGCM
			ct   []byte
			ad   []byte
		}{"truncated", c, ct[:n], ad})
	}
	for _, tt := range tests {
		got, err := tt.c.Decrypt(tt.ct, tt.ad)
		if !errors.Is(err, cipher.ErrDecrypt) {
			t.Errorf("%s (%d bytes): err = %v, want ErrDecrypt", tt.name, len(tt.ct), err)
		}
		if got != nil {
			t.Errorf("%s: returned plaintext %q along with the error", tt.name, got)
		}
	}
}

func TestKeys(t *testing.T) {
	for _, bits := range []int{128, 192, 256} {
		s, err := cipher.GenerateKey(bits)
		if err != nil {
			t.Fatalf("GenerateKey(%d): %v", bits, err)
		}
		key, err := cipher.ParseKey(s + "\n")
		if err != nil || len(key)*8 != bits {
			t.Fatalf("ParseKey(GenerateKey(%d)) = %d bytes, %v", bits, len(key), err)
		}
	}
	if a, b := mustKey(t), mustKey(t); a == b {
		t.Error("GenerateKey returned the same key twice")
	}
	for _, bits := range []int{0, 64, 100, 255, 512, -256} {
		if _, err := cipher.GenerateKey(bits); !errors.Is(err, cipher.ErrKeySize) {
			t.Errorf("GenerateKey(%d): err = %v, want ErrKeySize", bits, err)
		}
	}
	for _, n := range []int{0, 1, 8, 15, 17, 31, 33, 64} {
		raw := make([]byte, n)
		if _, err := cipher.New(raw); !errors.Is(err, cipher.ErrKeySize) {
			t.Errorf("New(%d bytes): err = %v, want ErrKeySize", n, err)
		}
		if _, err := cipher.NewFromBase64(base64.StdEncoding.EncodeToString(raw)); !errors.Is(err, cipher.ErrKeySize) {
			t.Errorf("NewFromBase64(%d bytes): err = %v, want ErrKeySize", n, err)
		}
	}
	secret := "not base64 at all!"
	_, err := cipher.ParseKey(secret)
	if err == nil || errors.Is(err, cipher.ErrKeySize) {
		t.Fatalf("ParseKey(junk): err = %v, want a base64 error", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q repeats the key", err)
	}
	// URL-safe base64 is not what CIPHER_KEY uses; refusing it avoids silently using a different key.
	if _, err := cipher.ParseKey(base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32))); err == nil {
		t.Error("ParseKey accepted URL-safe base64")
	}
}

func mustKey(t *testing.T) string {
	s, err := cipher.GenerateKey(256)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConcurrentUse(t *testing.T) {
	c := mustCipher(t, 256)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			msg := []byte{byte(g), 1, 2, 3}
			for range 200 {
				ct, err := c.Encrypt(msg, msg)
				if err != nil {
					t.Error(err)
					return
				}
				pt, err := c.Decrypt(ct, msg)
				if err != nil || !bytes.Equal(pt, msg) {
					t.Errorf("concurrent round trip: %q, %v", pt, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkEncrypt(b *testing.B) {
	benchmarkCipher(b, func(c *cipher.AESGCM, msg, ad []byte) func() ([]byte, error) {
		return func() ([]byte, error) { return c.Encrypt(msg, ad) }
	})
}

func BenchmarkDecrypt(b *testing.B) {
	benchmarkCipher(b, func(c *cipher.AESGCM, msg, ad []byte) func() ([]byte, error) {
		ct, _ := c.Encrypt(msg, ad)
		return func() ([]byte, error) { return c.Decrypt(ct, ad) }
	})
}

// benchmarkCipher measures the operation that prepare returns for a 200-byte message with 40 bytes of
// associated data.
func benchmarkCipher(b *testing.B, prepare func(c *cipher.AESGCM, msg, ad []byte) func() ([]byte, error)) {
	c := mustCipher(b, 256)
	msg := bytes.Repeat([]byte{'x'}, 200)
	op := prepare(c, msg, make([]byte, 40))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := op(); err != nil {
			b.Fatal(err)
		}
	}
}

// The append forms write after what dst holds, and agree with Encrypt and Decrypt.
func TestAppend(t *testing.T) {
	c := mustCipher(t, 256)
	header := []byte("hdr")
	msg := []byte("an event")
	dst := make([]byte, 0, len(header)+len(msg)+c.Overhead())
	out, err := c.AppendEncrypt(append(dst, header...), msg, header)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, header) || len(out) != cap(dst) || &out[0] != &dst[:1][0] {
		t.Fatalf("AppendEncrypt did not append in place: %d bytes, cap %d", len(out), cap(out))
	}
	pt, err := c.Decrypt(out[len(header):], header)
	if err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("Decrypt(AppendEncrypt) = %q, %v", pt, err)
	}
	reuse := []byte("keep:")
	pt, err = c.AppendDecrypt(reuse, out[len(header):], header)
	if err != nil || string(pt) != "keep:an event" {
		t.Fatalf("AppendDecrypt = %q, %v", pt, err)
	}
	if pt, err := c.AppendDecrypt(reuse, out[len(header):], nil); !errors.Is(err, cipher.ErrDecrypt) || pt != nil {
		t.Fatalf("AppendDecrypt with wrong additional data = %q, %v", pt, err)
	}
}

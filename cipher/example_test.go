package cipher_test

import (
	"fmt"
	"log"

	"github.com/eventsourcing-go/eventsourcing/cipher"
)

// Keys are kept as base64 text, for example in a CIPHER_KEY environment variable. The additional data
// binds a ciphertext to its context: decrypting it anywhere else fails.
func Example() {
	key, err := cipher.GenerateKey(256) // once, then store it as a secret
	if err != nil {
		log.Fatal(err)
	}
	c, err := cipher.NewFromBase64(key)
	if err != nil {
		log.Fatal(err)
	}

	ct, err := c.Encrypt([]byte(`{"amount":100}`), []byte("account-1/version-7"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ciphertext bytes:", len(ct))

	pt, err := c.Decrypt(ct, []byte("account-1/version-7"))
	fmt.Println(string(pt), err)

	_, err = c.Decrypt(ct, []byte("account-2/version-7"))
	fmt.Println(err)
	// Output:
	// ciphertext bytes: 42
	// {"amount":100} <nil>
	// cipher: message authentication failed: wrong key, or message or additional data changed
}

// A key ring is configured as text, for example in an environment variable: IDs and base64 keys, the
// last one current. Rotating adds a key; what older keys encrypted stays readable while they are in
// the ring.
func ExampleParseKeyRing() {
	ring, err := cipher.ParseKeyRing("2026-01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		log.Fatal(err)
	}
	id, c, _ := ring.Current()
	ct, _ := c.Encrypt([]byte("secret"), nil)

	key, _ := cipher.GenerateKey(256)
	next, _ := cipher.ParseKey(key)
	if err := ring.Add("2026-07", next); err != nil { // rotation
		log.Fatal(err)
	}
	old, _ := ring.Key(id)
	pt, err := old.Decrypt(ct, nil)
	fmt.Println(string(pt), err)
	fmt.Println(ring) // IDs only, never keys

	_, err = ring.Key("2025-07")
	fmt.Println(err)
	// Output:
	// secret <nil>
	// KeyRing(keys ["2026-01" "2026-07"]; current "2026-07")
	// cipher: key not in the key ring: no key "2025-07" (the ring has ["2026-01" "2026-07"])
}

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

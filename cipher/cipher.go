// Package cipher encrypts stored event state with AES-GCM.
//
// Event state is written once and read many times, often years later and by other processes, so the
// format is deliberately plain: every message carries its own fresh 12-byte random nonce followed by the
// ciphertext and the 16-byte GCM tag (nonce || ciphertext || tag). Nothing else is needed to decrypt it
// but the key. Keys are given as standard base64 text, the same form as the CIPHER_KEY setting of the
// Python eventsourcing library, so they can live in environment variables and secret stores.
//
// Random nonces are safe for up to about 2^32 messages per key (the NIST limit for 96-bit random nonces);
// rotate keys well before an application writes that many events. A [KeyRing] holds keys by ID, so that
// they can be rotated: the newest encrypts, all of them decrypt.
package cipher

import (
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const (
	// NonceSize is the length of the random nonce that starts every encrypted message.
	NonceSize = 12
	// TagSize is the length of the GCM authentication tag that ends every encrypted message.
	TagSize = 16
	// Overhead is how many bytes encryption adds to a plaintext: the nonce and the tag.
	Overhead = NonceSize + TagSize
)

var (
	// ErrDecrypt is wrapped by every error of Decrypt: a wrong key, a tampered or truncated ciphertext,
	// or additional data that differs from the data given to Encrypt. GCM cannot tell these apart, and
	// telling them apart would help an attacker, so they share one sentinel.
	ErrDecrypt = errors.New("cipher: message authentication failed")
	// ErrKeySize is wrapped by the error for a key that is not 16, 24 or 32 bytes long.
	ErrKeySize = errors.New("cipher: key must be 16, 24 or 32 bytes (AES-128, AES-192 or AES-256)")
)

// AESGCM encrypts and decrypts messages with AES in Galois/Counter Mode. It is safe for concurrent use:
// its state is fixed when it is built, and each Encrypt draws its own nonce.
type AESGCM struct {
	// aead is built once in New, because expanding the AES key schedule and the GHASH tables costs more
	// than encrypting a small event. It is crypto/cipher's random-nonce GCM, which draws the nonce from
	// crypto/rand and lays out messages as nonce || ciphertext || tag.
	aead stdcipher.AEAD
}

// New returns an AES-GCM cipher with key, which must be 16, 24 or 32 bytes long for AES-128, AES-192 or
// AES-256. Prefer 32 bytes: the key size costs little at event sizes.
func New(key []byte) (*AESGCM, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("cipher: key of %d bytes: %w", len(key), ErrKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cipher: %w", err)
	}
	aead, err := stdcipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("cipher: %w", err)
	}
	return &AESGCM{aead: aead}, nil
}

// NewFromBase64 returns an AES-GCM cipher with a key given as standard base64 text, as made by
// GenerateKey. It is the usual way to build the cipher from configuration.
func NewFromBase64(s string) (*AESGCM, error) {
	key, err := ParseKey(s)
	if err != nil {
		return nil, err
	}
	return New(key)
}

// ParseKey decodes a key given as standard base64 text (with padding) and checks its length. Leading and
// trailing white space is ignored, since keys read from files and environment variables often end with a
// newline. The error never contains the key.
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		// The base64 error only gives an offset, never key material.
		return nil, fmt.Errorf("cipher: key is not standard base64: %w", err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	default:
		return nil, fmt.Errorf("cipher: key of %d bytes: %w", len(key), ErrKeySize)
	}
}

// GenerateKey returns a new random key of bits bits (128, 192 or 256) as standard base64 text, ready for
// NewFromBase64 or a CIPHER_KEY setting.
func GenerateKey(bits int) (string, error) {
	switch bits {
	case 128, 192, 256:
	default:
		return "", fmt.Errorf("cipher: key size of %d bits: %w", bits, ErrKeySize)
	}
	key := make([]byte, bits/8)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("cipher: generate key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// Encrypt returns nonce || ciphertext || tag for plaintext, with a fresh random nonce. additionalData is
// authenticated but not encrypted nor included in the output: Decrypt succeeds only when given the same
// additional data, which binds the ciphertext to its context (for events: originator, version, topic).
//
// The output is allocated once, at its exact size, and never aliases plaintext or additionalData.
func (c *AESGCM) Encrypt(plaintext, additionalData []byte) ([]byte, error) {
	return c.AppendEncrypt(make([]byte, 0, len(plaintext)+Overhead), plaintext, additionalData)
}

// AppendEncrypt is Encrypt appending to dst: it returns dst extended by nonce || ciphertext || tag. It
// lets a caller put a header in front of the message without copying the message, or reuse a buffer;
// with len(plaintext)+Overhead bytes spare in dst, it does not allocate.
//
// The spare capacity of dst must not overlap plaintext or additionalData: as with crypto/cipher's
// AEAD.Seal, overlapping buffers panic.
func (c *AESGCM) AppendEncrypt(dst, plaintext, additionalData []byte) ([]byte, error) {
	return c.aead.Seal(dst, nil, plaintext, additionalData), nil
}

// Decrypt authenticates and decrypts a message made by Encrypt. Any failure (wrong key, a changed or
// truncated message, different additional data) returns an error wrapping ErrDecrypt and no plaintext.
func (c *AESGCM) Decrypt(ciphertext, additionalData []byte) ([]byte, error) {
	// A fresh destination cannot overlap the inputs.
	return c.AppendDecrypt(make([]byte, 0, max(len(ciphertext)-Overhead, 0)), ciphertext, additionalData)
}

// AppendDecrypt is Decrypt appending the plaintext to dst, so that a caller can decrypt into a reused
// buffer. On failure it returns nil, and the spare capacity of dst may have been overwritten. The spare
// capacity of dst must not overlap ciphertext or additionalData (overlapping buffers panic).
func (c *AESGCM) AppendDecrypt(dst, ciphertext, additionalData []byte) ([]byte, error) {
	if len(ciphertext) < Overhead {
		return nil, fmt.Errorf("%w: message of %d bytes is shorter than nonce and tag (%d bytes)",
			ErrDecrypt, len(ciphertext), Overhead)
	}
	plaintext, err := c.aead.Open(dst, nil, ciphertext, additionalData)
	if err != nil {
		return nil, fmt.Errorf("%w: wrong key, or message or additional data changed", ErrDecrypt)
	}
	return plaintext, nil
}

// Overhead returns how many bytes encryption adds to a plaintext, the constant Overhead, for callers
// that size buffers through an interface.
func (c *AESGCM) Overhead() int { return Overhead }

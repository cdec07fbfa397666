package datakey_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"sync"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// kekWrapper adapts a key management service's client to datakey.Wrapper: the versions of one of the
// service's keys are the key-encryption keys, and its primary version wraps new data keys.
type kekWrapper struct {
	svc *keyService // in an application: the client of AWS KMS, Google Cloud KMS, Vault …
	key string      // the service's key
}

func (w kekWrapper) WrapKey(ctx context.Context, key, aad []byte) (string, []byte, error) {
	return w.svc.Encrypt(ctx, w.key, key, aad)
}

func (w kekWrapper) UnwrapKey(ctx context.Context, kekID string, wrapped, aad []byte) ([]byte, error) {
	key, err := w.svc.Decrypt(ctx, kekID, wrapped, aad)
	// The service's errors for what is the entry's fault, translated for datakey (Rewrap passes over
	// such entries, and stops at any other error).
	switch {
	case errors.Is(err, errNoSuchVersion):
		return nil, fmt.Errorf("%w: %w", cipher.ErrUnknownKey, err)
	case errors.Is(err, errInvalidCiphertext):
		return nil, fmt.Errorf("%w: %w", cipher.ErrDecrypt, err)
	}
	return key, err
}

func (w kekWrapper) CurrentKeyID(ctx context.Context) (string, error) {
	return w.svc.Primary(ctx, w.key)
}

// Profile is an event of the example.
type Profile struct{ Name string }

// Data keys wrapped by a key management service: the key-encryption keys never leave it, and the
// process only ever sees data keys.
func Example_keyManagementService() {
	ctx := context.Background()
	svc := &keyService{}
	svc.Rotate("app-kek") // made in the service: version app-kek/1
	store := datakey.NewMemoryStore()
	keys, err := datakey.New(kekWrapper{svc: svc, key: "app-kek"}, store)
	if err != nil {
		log.Fatal(err)
	}
	reg := mapper.NewRegistry()
	mapper.Register[Profile](reg, "crm.Profile")
	m, err := mapper.New(reg, mapper.WithDataKeys(keys))
	if err != nil {
		log.Fatal(err)
	}
	id := uuid.MustParse("0193a4c2-5b1e-7c3d-9e8f-0a1b2c3d4e5f")
	stored, err := m.EncodeContext(ctx, aggregate.Event{OriginatorID: id, OriginatorVersion: 1, Data: Profile{Name: "Ada"}})
	if err != nil {
		log.Fatal(err)
	}
	e, _ := store.Get(ctx, id.String())
	fmt.Println("wrapped by", e.KeyID)

	svc.Rotate("app-kek") // a new primary version, app-kek/2
	res, err := keys.Rewrap(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rewrapped", res.Rewrapped, "with", res.KeyID)

	// Another process, with a cache of its own, has the service unwrap the key.
	other, _ := datakey.New(kekWrapper{svc: svc, key: "app-kek"}, store)
	om, _ := mapper.New(reg, mapper.WithDataKeys(other))
	ev, err := om.DecodeContext(ctx, stored)
	fmt.Println(ev.Data.(Profile).Name, err)
	// Output:
	// wrapped by app-kek/1
	// rewrapped 1 with app-kek/2
	// Ada <nil>
}

var (
	errNoSuchVersion     = errors.New("key service: no such key version")
	errInvalidCiphertext = errors.New("key service: invalid ciphertext")
)

// keyService stands in for a key management service: it keeps versioned keys that its clients never
// see, and encrypts and decrypts with them.
type keyService struct {
	mu       sync.Mutex
	versions map[string]*cipher.AESGCM // by version name: key/1, key/2 …
	primary  map[string]string         // key → its primary version
	count    map[string]int
}

// Rotate makes a new version of key, the primary one.
func (s *keyService) Rotate(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.versions == nil {
		s.versions, s.primary, s.count = map[string]*cipher.AESGCM{}, map[string]string{}, map[string]int{}
	}
	material := make([]byte, 32)
	rand.Read(material)
	c, _ := cipher.New(material)
	s.count[key]++
	v := fmt.Sprintf("%s/%d", key, s.count[key])
	s.versions[v], s.primary[key] = c, v
}

func (s *keyService) Primary(ctx context.Context, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.primary[key]; ok {
		return v, ctx.Err()
	}
	return "", errNoSuchVersion
}

// Encrypt encrypts with the primary version of key, binding the ciphertext to the version.
func (s *keyService) Encrypt(ctx context.Context, key string, plaintext, aad []byte) (string, []byte, error) {
	v, err := s.Primary(ctx, key)
	if err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	c := s.versions[v]
	s.mu.Unlock()
	ct, err := c.Encrypt(plaintext, append([]byte(v+"\x00"), aad...))
	return v, ct, err
}

func (s *keyService) Decrypt(ctx context.Context, version string, ciphertext, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	c, ok := s.versions[version]
	s.mu.Unlock()
	if !ok {
		return nil, errNoSuchVersion
	}
	p, err := c.Decrypt(ciphertext, append([]byte(version+"\x00"), aad...))
	if err != nil {
		return nil, errInvalidCiphertext
	}
	return p, nil
}

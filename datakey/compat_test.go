package datakey_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/cipher"
	"github.com/eventsourcing-go/eventsourcing/datakey"
)

// goldenRing is the key ring that wrapped goldenEntries.
const goldenRing = "1:" + ringKey + ",2026-07:HxwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgEAAAE="

// goldenEntries are data key entries as Keys stored them before data keys could be wrapped by a
// Wrapper other than the key ring, each with a message its data key encrypted (additional data "aad").
// They were made by that code and must unwrap, byte for byte as they are, for ever.
var goldenEntries = []struct {
	Subject, KeyID, Wrapped, Sealed string
}{
	{Subject: "0193a4c2-5b1e-7c3d-9e8f-0a1b2c3d4e5f", KeyID: "1", Wrapped: "7AUXUetjy3S3VPIKcpLnVxt/rXrpSJXTT8xpm3znamYacvad/7f15ajO4ZPA22iEG2ggQof6ffX3szoQ", Sealed: "rYx6dDSWWmSCMDmDks+gExEHE6U+SU6uPMUw+TzAjvUWSuJIcye/9YcLG/FgWGkg4OWVf5gY6g=="},
	{Subject: "customer-7f3c", KeyID: "2026-07", Wrapped: "756gYX+2ptrchierYBkBPliWmkXroMIbABSfJZqnDx0WC6ieLQ592/TLfzGYY8CNto2il/zX4wKgMdeh", Sealed: "wPDRaAWfbbnTN318c3/XAltHesCMvjHgDI29Glb7wznVXdplE7/QMfYju5Fd0OZgXNE261gFeA=="},
	{Subject: "é/ü subject", KeyID: "2026-07", Wrapped: "9kyWsxtUIZYMtCvgFB8qUqeQqrJ+TX1DGkb+S4jdG7j/3WMY4Tv4dxB/GweSRNvRV3cwxrfmg/YV46Lg", Sealed: "foJXk4c34b9UIPuJO6gvsPNfZS83tGUfvuNX8I8W4AIVNcGDsHvwCDhHGclsAxdlWb9039cCsA=="},
}

const goldenPlaintext = "written before KMS wrappers"

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Entries that the key ring wrapped before Wrapper existed still unwrap, and rewrap.
func TestGoldenEntriesUnwrap(t *testing.T) {
	ctx := context.Background()
	ring, err := cipher.ParseKeyRing(goldenRing)
	if err != nil {
		t.Fatal(err)
	}
	store := datakey.NewMemoryStore()
	for _, g := range goldenEntries {
		if _, err := store.Add(ctx, datakey.Entry{Subject: g.Subject, KeyID: g.KeyID, Wrapped: b64(t, g.Wrapped)}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string) {
		t.Helper()
		keys, err := datakey.New(ring, store)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range goldenEntries {
			c, err := keys.Get(ctx, g.Subject)
			if err != nil {
				t.Fatalf("%s: %s: %v", what, g.Subject, err)
			}
			if pt, err := c.Decrypt(b64(t, g.Sealed), []byte("aad")); err != nil || string(pt) != goldenPlaintext {
				t.Fatalf("%s: %s: the data key changed: %q %v", what, g.Subject, pt, err)
			}
		}
	}
	check("as stored")

	keys, err := datakey.New(ring, store)
	if err != nil {
		t.Fatal(err)
	}
	res, err := keys.Rewrap(ctx)
	if want := (datakey.RewrapResult{KeyID: "2026-07", Rewrapped: 1, Current: 2}); err != nil || res != want {
		t.Fatalf("Rewrap = %+v, %v; want %+v", res, err, want)
	}
	check("after rewrapping")
}

// What the key ring wraps now is what it wrapped before Wrapper existed: the data key encrypted by the
// ring key under the additional data "eventsourcing-go data key", the subject's length as a uvarint,
// the subject, and the key ID; so that earlier releases read the entries of this one.
func TestRingWrapsAsBefore(t *testing.T) {
	ctx := context.Background()
	ring, err := cipher.ParseKeyRing(goldenRing)
	if err != nil {
		t.Fatal(err)
	}
	store := datakey.NewMemoryStore()
	keys, err := datakey.New(ring, store)
	if err != nil {
		t.Fatal(err)
	}
	const subject = "é/ü subject"
	c, err := keys.GetOrCreate(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	e, err := store.Get(ctx, subject)
	if err != nil || e.KeyID != "2026-07" {
		t.Fatalf("entry %+v %v", e, err)
	}
	aad := []byte("eventsourcing-go data key")
	aad = binary.AppendUvarint(aad, uint64(len(subject)))
	aad = append(append(aad, subject...), e.KeyID...)
	kek, err := ring.Key(e.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := kek.Decrypt(e.Wrapped, aad)
	if err != nil || len(raw) != 32 {
		t.Fatalf("the entry does not unwrap as before: %d bytes, %v", len(raw), err)
	}
	old, err := cipher.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt([]byte("m"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := old.Decrypt(ct, nil); err != nil || string(pt) != "m" {
		t.Fatalf("the data key unwrapped as before is another key: %v", err)
	}
}

package mapper_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// codecs are the codecs the package offers, by name.
var codecs = map[string]mapper.Codec{"StdJSON": mapper.StdJSON{}, "JSONv2": mapper.JSONv2{}}

// readers returns a mapper per codec, and one with the default codec, that read every fixture setting.
func readers(t *testing.T) map[string]*mapper.Mapper {
	out := map[string]*mapper.Mapper{"default": newMapper(t, readingRegistry(), mapper.WithKeyRing(testRing(t)))}
	for name, c := range codecs {
		out[name] = newMapper(t, readingRegistry(), mapper.WithKeyRing(testRing(t)), mapper.WithCodec(c))
	}
	return out
}

// TestReadsStoredEvents: events stored before codecs could be chosen decode with every codec.
func TestReadsStoredEvents(t *testing.T) {
	checkDecodesFixtures(t, loadFixtures(t, fixturesFile), readers(t))
}

// TestWritesStoredBytes: every codec writes the JSON stored before codecs could be chosen, so that
// earlier releases read what this one writes. The plain setting shows the JSON as it is (the other
// settings' bytes follow from it, or are random). JSONv2 writes the replacement character for
// invalid UTF-8 as UTF-8 where encoding/json escapes it as \ufffd: the same string either way.
func TestWritesStoredBytes(t *testing.T) {
	stored := map[string][]byte{}
	for _, f := range loadFixtures(t, fixturesFile) {
		if f.Setting == "plain" {
			stored[f.Case] = plainJSON(t, f.State)
		}
	}
	for name, c := range codecs {
		for _, f := range encodeFixtures(t, mapper.WithCodec(c)) {
			if f.Setting != "plain" {
				continue
			}
			got, want := plainJSON(t, f.State), stored[f.Case]
			if name == "JSONv2" {
				want = bytes.ReplaceAll(want, []byte(`\ufffd`), []byte("\ufffd"))
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s writes %s as\n%s\nwhere it was stored as\n%s", name, f.Case, got, want)
			}
		}
	}
}

// plainJSON returns the JSON envelope of the state of a plain setting: after the 3 bytes of header,
// before the 4 of CRC.
func plainJSON(t *testing.T, state []byte) []byte {
	t.Helper()
	if len(state) < 7 || state[0] != 1 || state[1] != 0x04 {
		t.Fatalf("state %q is not unencrypted format 1", state)
	}
	return state[3 : len(state)-4]
}

// TestCodecsReadEachOther: what each codec writes, in every setting, every codec reads.
func TestCodecsReadEachOther(t *testing.T) {
	for name, c := range codecs {
		t.Run("written by "+name, func(t *testing.T) {
			checkDecodesFixtures(t, encodeFixtures(t, mapper.WithCodec(c)), readers(t))
		})
	}
}

// faultyCodec is StdJSON, except that it fails or panics where its fields say.
type faultyCodec struct {
	mapper.StdJSON
	marshalErr, unmarshalErr error
	panics                   bool
	calls                    int
}

func (c *faultyCodec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	c.calls++
	if c.panics {
		panic("codec boom")
	}
	if c.marshalErr != nil {
		return dst, c.marshalErr
	}
	return c.StdJSON.AppendMarshal(dst, v)
}

func (c *faultyCodec) Unmarshal(data []byte, v any) error {
	c.calls++
	if c.panics {
		panic("codec boom")
	}
	if c.unmarshalErr != nil {
		return c.unmarshalErr
	}
	return c.StdJSON.Unmarshal(data, v)
}

// TestCodecFailures: the Mapper uses the codec it is given for the data, both ways; the codec's errors
// come back wrapped, and its panics as errors.
func TestCodecFailures(t *testing.T) {
	errMarshal, errUnmarshal := errors.New("marshal failed"), errors.New("unmarshal failed")
	c := &faultyCodec{}
	m := newMapper(t, newRegistry(), mapper.WithCodec(c))
	stored := mustEncode(t, m, event(deposit()))
	if _, err := m.Decode(stored); err != nil || c.calls != 2 {
		t.Fatalf("round trip: %v, %d codec calls; want no error, 2 calls", err, c.calls)
	}

	c.marshalErr = errMarshal
	if _, err := m.Encode(event(deposit())); !errors.Is(err, errMarshal) {
		t.Errorf("Encode with a failing codec: %v, want an error wrapping %v", err, errMarshal)
	}
	c.unmarshalErr = errUnmarshal
	_, err := m.Decode(stored)
	if !errors.Is(err, errUnmarshal) {
		t.Errorf("Decode with a failing codec: %v, want an error wrapping %v", err, errUnmarshal)
	}
	mustNameEvent(t, err, topicDeposited, testID, 7)

	c.panics = true
	if _, err := m.Encode(event(deposit())); err == nil || !strings.Contains(err.Error(), "codec boom") {
		t.Errorf("Encode with a panicking codec: %v, want an error naming the panic", err)
	}
	_, err = m.Decode(stored)
	if err == nil || !strings.Contains(err.Error(), "codec boom") {
		t.Errorf("Decode with a panicking codec: %v, want an error naming the panic", err)
	}
	mustNameEvent(t, err, topicDeposited, testID, 7)
}

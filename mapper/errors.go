package mapper

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// These sentinel errors are wrapped by the errors of this package, which say "mapper:" and give the
// context; test for them with errors.Is.
var (
	// ErrUnknownTopic is wrapped by the error for a stored event whose topic is neither registered nor
	// an alias: usually a type that was renamed without an Alias, or registered by another program.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrUnregistered is wrapped by the error for encoding (or asking the topic of) a value whose type
	// is not registered.
	ErrUnregistered = errors.New("type not registered")
	// ErrMalformed is wrapped by the error for stored state that cannot be read: an unknown format
	// version or flag, a truncated header, a failed checksum, a broken compressed stream, or a payload
	// that is not the mapper's JSON envelope.
	ErrMalformed = errors.New("malformed stored state")
	// ErrNoCipher is wrapped by the error for an encrypted event read by a Mapper without the means to
	// decrypt it: without a cipher, or with a single key (WithCipher) for state that names a key ring's
	// key, or without data keys for state encrypted with a subject's data key.
	ErrNoCipher = errors.New("event is encrypted and the mapper has no cipher")
	// ErrMissingUpcaster is wrapped by the error for an event stored at an older schema version when a
	// step from there to the current version has no Upcaster.
	ErrMissingUpcaster = errors.New("missing upcaster")
	// ErrSchemaVersion is wrapped by the error for an event stored at a schema version newer than the
	// registered one: it was written by a newer release of the program, which an older one cannot read
	// safely.
	ErrSchemaVersion = errors.New("schema version newer than registered")
)

// DecodeError is the error of every failed Decode. It names the stored event, so that a bad record can
// be found among millions, and wraps the cause: errors.Is works with ErrUnknownTopic, ErrMalformed,
// ErrNoCipher, ErrMissingUpcaster, ErrSchemaVersion, cipher.ErrDecrypt, cipher.ErrUnknownKey,
// datakey.ErrForgotten and datakey.ErrNoKey, and errors.As with the encoding/json error types and
// *datakey.ForgottenError.
type DecodeError struct {
	Topic             string    // the topic as stored
	OriginatorID      uuid.UUID // the originator as stored
	OriginatorVersion int64     // the version as stored
	Err               error     // the cause
}

// Error describes the failure and the event it happened to.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("mapper: decode event %q of originator %s at version %d: %v",
		e.Topic, e.OriginatorID, e.OriginatorVersion, e.Err)
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

package aggregate

import (
	"time"

	"github.com/google/uuid"
)

// Event is the envelope of a domain event: which originator it belongs to, its position in the
// originator's sequence, when it happened, and the domain event itself, a plain struct value whose type
// is registered with the mapper.
type Event struct {
	OriginatorID      uuid.UUID
	OriginatorVersion int64
	Timestamp         time.Time // UTC
	Data              any       // the domain event, a value of a registered type
}

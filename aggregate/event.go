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
	// OriginatorTopic names the type of the aggregate the stream belongs to: the topic under which
	// that type is registered with the mapper. Repositories set it on the first event of every stream
	// they start (version 1) and check it when they load one, so that a stream is never loaded as an
	// aggregate of another type. It is empty on later events, and on streams recorded without it.
	OriginatorTopic string
	Data            any // the domain event, a value of a registered type
}

package mapper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	es "github.com/eventsourcing-go/eventsourcing"
)

// RawEvent is a stored event decoded without its Go type: its data is the JSON it was stored as.
type RawEvent struct {
	OriginatorID      uuid.UUID
	OriginatorVersion int64
	Topic             string          // the topic as stored
	Timestamp         time.Time       // UTC
	AggregateTopic    string          // the aggregate type the first event of a stream names; "" else
	SchemaVersion     int             // the schema version the data was stored at; no upcaster has run
	Data              json.RawMessage // the event's data, compact JSON
}

// DecodeRaw checks, decrypts and decompresses the state of s like Decode, but returns its data as the
// JSON it was stored as, without unmarshalling it: the topic need not be registered. It is for tools
// that show stored events without the application's types (esctl). Its errors are those of Decode
// (a *DecodeError), except that an unknown topic is not one.
func (m *Mapper) DecodeRaw(ctx context.Context, s es.StoredEvent) (RawEvent, error) {
	buf := m.scratch.Get().(*decodeBuffer)
	defer m.putScratch(buf)
	fail := func(err error) (RawEvent, error) {
		return RawEvent{}, &DecodeError{Topic: s.Topic, OriginatorID: s.OriginatorID, OriginatorVersion: s.OriginatorVersion, Err: err}
	}
	h, payload, err := m.open(ctx, s, buf)
	if err != nil {
		return fail(err)
	}
	ts, aggregateTopic, data, err := parseEnvelope(payload, m.reg.internTopic)
	if err != nil {
		return fail(err)
	}
	if !json.Valid(data) {
		return fail(fmt.Errorf("%w: event data is not JSON", ErrMalformed))
	}
	return RawEvent{
		OriginatorID:      s.OriginatorID,
		OriginatorVersion: s.OriginatorVersion,
		Topic:             s.Topic,
		Timestamp:         ts,
		AggregateTopic:    aggregateTopic,
		SchemaVersion:     h.schema,
		Data:              bytes.Clone(data), // data may live in the pooled buffer
	}, nil
}

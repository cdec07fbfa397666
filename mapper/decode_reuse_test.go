package mapper_test

import (
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/eventsourcing-go/eventsourcing/aggregate"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

type listed struct {
	Items []string       `json:"items"`
	Tags  map[string]int `json:"tags"`
	Note  *string        `json:"note"`
}

// Decoding reuses the memory it unmarshals into: a decoded event shares nothing with the ones decoded
// after it, with either codec.
func TestDecodedEventsShareNothing(t *testing.T) {
	for _, c := range []mapper.Codec{mapper.JSONv2{}, mapper.StdJSON{}} {
		r := mapper.NewRegistry()
		mapper.Register[listed](r, "Listed")
		m, err := mapper.New(r, mapper.WithCodec(c))
		if err != nil {
			t.Fatal(err)
		}
		id, note := uuid.New(), "first"
		values := []listed{{Items: []string{"a", "b"}, Tags: map[string]int{"x": 1}, Note: &note}, {Items: []string{"c"}}, {}}
		var decoded []any
		for i, v := range values {
			s, err := m.Encode(aggregate.Event{OriginatorID: id, OriginatorVersion: int64(i + 1), Data: v})
			if err != nil {
				t.Fatal(err)
			}
			e, err := m.Decode(s)
			if err != nil {
				t.Fatal(err)
			}
			decoded = append(decoded, e.Data)
		}
		for i, d := range decoded {
			if !reflect.DeepEqual(d, values[i]) {
				t.Errorf("%T: event %d decoded as %+v, then reads %+v", c, i+1, values[i], d)
			}
		}
	}
}

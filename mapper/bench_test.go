package mapper_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	es "github.com/eventsourcing-go/eventsourcing"
	"github.com/eventsourcing-go/eventsourcing/datakey"
	"github.com/eventsourcing-go/eventsourcing/db/sqlite"
	"github.com/eventsourcing-go/eventsourcing/internal/benchkit"
	"github.com/eventsourcing-go/eventsourcing/internal/sqlitetest"
	"github.com/eventsourcing-go/eventsourcing/mapper"
)

// The benchmarks use MoneyDeposited (the small event of the benchmark domain) in each setting, and
// report the stored state's size per event.

func BenchmarkEncode(b *testing.B) {
	for _, s := range settings() {
		b.Run(s.name, func(b *testing.B) { benchmarkEncode(b, newMapper(b, newRegistry(), s.opts(b)...), deposit()) })
	}
}

// benchmarkEncode encodes data with m, and reports the stored state's size.
func benchmarkEncode(b *testing.B, m *mapper.Mapper, data any) {
	e := event(data)
	var stored es.StoredEvent
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if stored, err = m.Encode(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(stored.State)), "bytes/event")
}

func BenchmarkDecode(b *testing.B) {
	for _, s := range settings() {
		b.Run(s.name, func(b *testing.B) {
			m := newMapper(b, newRegistry(), s.opts(b)...)
			stored := mustEncode(b, m, event(deposit()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Decode(stored); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(stored.State)), "bytes/event")
		})
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	// The floor: encoding/json alone on the same struct, measured in the same run, so that the
	// mapper's own cost is the difference.
	b.Run("json-baseline", func(b *testing.B) {
		data, err := json.Marshal(deposit())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		benchkit.Run(b, benchkit.JSONOp("json", deposit()), "events")
		b.ReportMetric(float64(len(data)), "bytes/event")
	})
	for _, s := range settings() {
		b.Run(s.name, func(b *testing.B) {
			m := newMapper(b, newRegistry(), s.opts(b)...)
			b.ReportAllocs()
			benchkit.Run(b, benchkit.RoundTripOp(s.name, m, event(deposit())), "events")
			b.ReportMetric(float64(len(mustEncode(b, m, event(deposit())).State)), "bytes/event")
		})
	}
}

// BenchmarkCodecs measures each codec alone, AppendMarshal and Unmarshal of the data of the small and
// the large event, beside encoding/json/v2 with its own semantics (v2-semantics), which writes other
// JSON (nil slices as [], U+2028 unescaped) and reads it otherwise (names match case-sensitively), so
// that it cannot replace the others under stored events: it is here for what those semantics cost.
func BenchmarkCodecs(b *testing.B) {
	all := map[string]mapper.Codec{"StdJSON": mapper.StdJSON{}, "JSONv2": mapper.JSONv2{}, "v2-semantics": v2Semantics{}}
	for _, ev := range []struct {
		name string
		data any
	}{{"200B", deposit()}, {"2KB", order()}} {
		for _, name := range []string{"StdJSON", "JSONv2", "v2-semantics"} {
			b.Run(ev.name+"/"+name, func(b *testing.B) {
				c := all[name]
				var buf []byte
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if buf, err = c.AppendMarshal(buf[:0], ev.data); err != nil {
						b.Fatal(err)
					}
					p := reflect.New(reflect.TypeOf(ev.data))
					if err := c.Unmarshal(buf, p.Interface()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// v2Semantics is encoding/json/v2 with its default options.
type v2Semantics struct{}

func (v2Semantics) AppendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := jsonv2.Marshal(v)
	return append(dst, b...), err
}

func (v2Semantics) Unmarshal(data []byte, v any) error { return jsonv2.Unmarshal(data, v) }

// BenchmarkRoundTripParallel shows that the mapper does not serialise goroutines.
func BenchmarkRoundTripParallel(b *testing.B) {
	m := newMapper(b, newRegistry(), mapper.WithCipher(mustCipher(b, testKey)))
	e := event(deposit())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := roundTrip(m, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUpcast decodes an event stored two schema versions ago, through two upcasters.
func BenchmarkUpcast(b *testing.B) {
	v1 := mapper.NewRegistry()
	mapper.Register[CustomerRegisteredV1](v1, topicCustomer)
	stored := mustEncode(b, newMapper(b, v1), event(CustomerRegisteredV1{Name: "Ada Lovelace", Ref: 42}))
	m := newMapper(b, fuzzRegistry())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Decode(stored); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompressionQuality measures what each brotli quality costs per event and what it saves, on a
// small (about 200 bytes of JSON) and a large (about 2 KB) event; "none" is the mapper without
// compression. It is the measurement behind DefaultCompressionQuality. Decoding cost hardly depends on
// the quality, so only encoding is measured; run with -bench=CompressionQuality.
func BenchmarkCompressionQuality(b *testing.B) {
	events := []struct {
		name string
		data any
	}{{"200B", deposit()}, {"2KB", order()}}
	for _, ev := range events {
		for q := -1; q <= 11; q++ {
			name, opts := "none", []mapper.Option(nil)
			if q >= 0 {
				name, opts = fmt.Sprintf("q%d", q), []mapper.Option{mapper.WithCompression(q)}
			}
			b.Run(ev.name+"/"+name, func(b *testing.B) { benchmarkEncode(b, newMapper(b, newRegistry(), opts...), ev.data) })
		}
	}
}

// BenchmarkKeys measures encode+decode of one MoneyDeposited with each way of choosing keys, in one run:
// the single key (WithCipher, the baseline), a key ring, and per-subject data keys, both from the
// cache and, with the cache off, from the key store (in memory, and in a SQLite file) for every use
// (see benchkit.KeyOps; cmd/esbench reports the same cases).
func BenchmarkKeys(b *testing.B) {
	ctx := context.Background()
	db := sqlitetest.OpenMigrated(b, filepath.Join(b.TempDir(), "keys.db"))
	store, err := sqlite.NewKeyStore(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	ops, err := benchkit.KeyOps(ctx, benchkit.KeyStore{Name: "memory", Store: datakey.NewMemoryStore()}, benchkit.KeyStore{Name: "SQLite", Store: store})
	if err != nil {
		b.Fatal(err)
	}
	name := strings.NewReplacer(", ", "/", " ", "-")
	for _, op := range ops {
		b.Run(name.Replace(op.Name), func(b *testing.B) {
			b.ReportAllocs()
			benchkit.Run(b, op, "roundtrips")
		})
	}
}

// Package mapper turns domain events into stored events and back.
//
// Recorders store opaque bytes under a topic; this package decides what those bytes are. An event is
// a plain Go struct registered in a [Registry] under a stable topic. [Mapper.Encode] writes its
// timestamp and data as compact JSON, compresses the JSON with brotli when that makes it smaller
// ([WithCompression]), and encrypts it with AES-GCM ([WithCipher]), bound to the event it belongs to.
// [Mapper.Decode] reverses the steps, whatever the Mapper's own settings: a small header in front of
// every stored state says which steps were taken, so an application can turn compression or encryption
// on later and still read what it wrote before.
//
// # JSON
//
// The data of events and snapshots becomes JSON through the Mapper's [Codec]. [DefaultCodec] is
// [JSONv2], the implementation of encoding/json/v2 set to the semantics of encoding/json; [StdJSON] is
// encoding/json itself. They write the same JSON and read it into the same values, so either reads
// what the other wrote; [WithCodec] chooses one, or a codec of the application's own.
//
// # Keys
//
// [WithCipher] encrypts with one key. [WithKeyRing] encrypts with the current key of a cipher.KeyRing
// and names the key's ID in the header, so that keys can be rotated: add a key to the ring, and older
// events stay readable while their keys are in it. [WithDataKeys] encrypts each event and snapshot with
// the data key of its subject (package datakey): its aggregate, or a subject the event names
// ([DataSubjectNamer]). Forgetting the subject deletes the key, and with it every event and snapshot of
// the subject, without rewriting anything: decoding them fails with an error matching
// datakey.ErrForgotten. Each option reads what the ones before it in this list wrote; data keys that a
// key management service wraps need WithKeyRing beside them for that.
//
// # Topics
//
// Topics are explicit names, not Go type names, so that types can be renamed and moved freely. When a
// topic itself must change, the old one stays readable through [Alias]. Aggregate snapshots are
// registered and stored the same way as events.
//
// # Schema evolution
//
// JSON tolerates added and removed fields: an old event decodes into today's struct with the new
// fields at their zero values. For anything else (a renamed, split or retyped field) raise the type's
// [SchemaVersion] and register an [Registry.Upcaster] per step. Decoding an event stored at an older
// version rewrites its JSON object step by step before unmarshalling it; events at the current version
// skip all that and unmarshal directly.
//
// # Errors
//
// Decode never panics, on any input. Every failure is a [*DecodeError] naming the topic, originator and
// version of the stored event and wrapping the cause, which errors.Is can test against the sentinels of
// this package, cipher.ErrDecrypt, cipher.ErrUnknownKey (the key ID the state names is not in the
// ring) and datakey.ErrForgotten. Stored state is protected against corruption and misplacement:
// encrypted state by the GCM tag, plain state by a CRC-32C, both covering the originator, version,
// topic and header, so that a damaged record, or one copied to another event, is reported rather than
// decoded into wrong data.
package mapper

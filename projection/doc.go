// Package projection follows the notification log of an application and keeps what is derived from it
// (read models and the state of other applications) exactly once, across crashes and restarts.
//
// # Why tracking, and why in the same transaction
//
// A subscription delivers each notification once per subscription, but a consumer that crashes
// between changing its state and remembering how far it got either loses an event or applies it twice
// after a restart. So a [Runner] never remembers its position anywhere else than in the consumer's own
// store, in the transaction that applies the event: each notification's effects and its tracking record
// ([eventsourcing.Tracking]) commit together or not at all. A restarted runner resumes after the highest
// tracked notification, and a notification delivered again (a replay, a second instance of the same
// consumer) fails to insert its tracking record with [eventsourcing.ErrConflict], so its effects are rolled
// back and it is skipped.
//
// Two consumers are built on that one mechanism:
//
//   - A projection keeps a read model in a [TrackingStore]: a [MemoryStore] on memory, or a SQL database
//     through [SQL], where the projection writes its tables in the transaction ([SQLTx]) in which the
//     recorder also inserts the tracking record ([SQLTracker]).
//   - A process application (a [Policy] run by [NewProcess]) reacts to an upstream application's events by
//     changing its own aggregates, and saves their new events with the tracking record in one
//     InsertEvents call ([eventsourcing.WithTracking]) on its own [eventsourcing.ProcessRecorder].
//
// A [System] wires applications into leader → follower pipes and runs one process runner per pipe.
//
// # One tracking mark, one consumer
//
// The tracking mark of an upstream application in a store belongs to one consumer. Two different
// projections (say, with different topic filters) tracking the same upstream in the same store would
// take each other's marks for their own, and one would skip events it never saw. Give each projection
// its own store (its own database, schema or [MemoryStore]); several instances of the same projection
// may share one, and then process each event once between them.
//
// # Back-pressure
//
// The runner pulls: it processes a notification, commits it, and only then asks the subscription for
// the next one ([eventsourcing.ApplicationRecorder.Subscribe] returns a pull-based iterator). Nothing
// queues between the upstream log and the consumer, so a slow consumer does not make memory grow: it
// falls behind in the upstream log, which is durable, and catches up at its own pace. The recorders read
// the log in pages (memory: 500 notifications), so a consumer holds at most one page in memory.
package projection

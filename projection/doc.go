// Package projection follows the notification log of an application and keeps what is derived from it
// (read models and the state of other applications) exactly once, across crashes and restarts, in
// batches.
//
// # Why tracking, and why in the same transaction
//
// A subscription delivers each notification once per subscription, but a consumer that crashes
// between changing its state and remembering how far it got either loses events or applies them twice
// after a restart. So a [Runner] never remembers its position anywhere else than in the consumer's own
// store, in the transaction that applies the events: a batch's effects and its tracking record
// ([eventsourcing.Tracking]) commit together or not at all. A restarted runner resumes after its
// tracked mark.
//
// Recording the mark is a compare-and-set on the mark the batch started after. A second instance of
// the same consumer (or a stale one) that read the same notifications fails to record its batch with
// [eventsourcing.ErrConflict], so its effects are rolled back; it reads the mark the other left and
// carries on after it. Between them, the instances process every event once.
//
// Two consumers are built on that one mechanism:
//
//   - A projection keeps a read model in a [TrackingStore]: a [MemoryStore] on memory, or a SQL database
//     through [SQL], where the projection writes its tables in the transaction ([SQLTx]) in which the
//     recorder also records the tracking ([SQLTracker]).
//   - A process application (a [Policy] run by [NewProcess]) reacts to an upstream application's events by
//     changing its own aggregates, and saves their new events with the tracking record in one
//     InsertEvents call ([eventsourcing.WithTracking]) on its own [eventsourcing.ProcessRecorder].
//
// A [System] wires applications into leader → follower pipes and runs one process runner per pipe.
//
// # Batches
//
// A runner processes the notifications that are at hand in one transaction, up to a bound on their
// number and on the time spent gathering them ([WithBatch]). A batch is all or nothing: its events'
// effects and its tracking commit together, so a projection's author writes for one event or for a
// batch ([NewBatchRunner]) and never sees half a batch committed. Batching never delays an event: a
// caught-up runner processes what arrives at once, and batches grow only while notifications wait, when
// catching up or under load, where one transaction per batch instead of one per event is what lets a
// projection keep up with its log. When a batch fails, the runner narrows it down, commits the events
// before the failing one, and stops with an [*Error] naming exactly that event.
//
// # Consumers and their names
//
// Every runner has a name (a process application's is its application's name), and the store keeps a
// mark per name and upstream, so any number of projections and process applications share one
// database, each with its own marks. Instances of the same projection share its name. A name must not
// change: a renamed projection is a new one, which starts from the first notification.
//
// # Rebuilds and lag
//
// A projection with a reset function ([WithReset]) can be rebuilt: [Runner.Rebuild] (or deleting its
// mark, as `esctl tracking rebuild` does, also while it runs) makes it start from the first
// notification, clearing the old read model in the transaction of its first batch, so readers see the
// old model until the new one replaces it. [Runner.Status] reports how far a runner is behind its
// upstream.
//
// # Back-pressure
//
// The runner pulls: it reads the subscription ([eventsourcing.ApplicationRecorder.Subscribe] returns a
// pull-based iterator) into a buffer of one batch, and takes the next batch from it only once the
// last one has committed. So a slow consumer does not make memory grow: it falls behind in the
// upstream log, which is durable, and catches up at its own pace, holding at most two batches and the
// recorder's page in memory.
package projection

// Package postgres implements the recorders of package eventsourcing on PostgreSQL (13 or later),
// over database/sql with pgx's stdlib driver (github.com/jackc/pgx/v5/stdlib).
//
// The schema comes from schema.Migrate(ctx, db, schema.Postgres, schema.WithSchema(name)); give the
// recorders the same name with [WithSchema], so that several applications can share one database, each
// in its own schema. [NewProcessRecorder] returns the recorder of an application (events, notification
// log, tracking); [NewSnapshotRecorder] the store of its snapshots. Both check, when made, that the
// database answers and that the schema has been migrated.
//
// # One round trip per append
//
// An append is one statement, outside any explicit transaction, so it is its own transaction. Events
// with no tracking record (the common case) are one INSERT, which takes the notification IDs from the
// migration's events_take_ids (a batch goes as arrays, through unnest); events with a tracking record,
// and every append of a recorder made [WithLockTimeout], go through the function events_append, which
// records both and returns the first notification ID of the batch. Conflicts
// (a version recorded already, or a tracking mark that is not the prior one) are errors wrapping
// eventsourcing.ErrConflict.
//
// # The notification log and its ordering
//
// A notification ID is taken when its row is inserted but becomes visible when its transaction
// commits, and transactions commit in any order: a reader that has seen ID 11 might later find 10
// appear, and a subscription that moved past it would never deliver it. The recorders guarantee that
// this never happens (no late fills) in one of two ways, chosen per schema: [OrderingXID] (the
// default) lets appends commit concurrently and holds readers back instead, [OrderingTableLock]
// serialises appends as the Python eventsourcing library does. [Ordering] explains both and their
// trade-offs; BENCHMARKS.md measures them. Both are proven by the package's torture test (concurrent
// writers whose commits are delayed at random, some rolled back, against a reader tailing the log)
// and by its controls, which show that the test catches late fills when the ordering is missing or
// misused.
//
// # Subscriptions
//
// [ProcessRecorder.Subscribe] reads the log page by page and then follows it. Appends wake the
// subscriptions of their own recorder directly, and those of other processes through a NOTIFY sent
// after the commit by a background goroutine (never inside the append's transaction: NOTIFY takes a
// database-wide lock at commit, which would serialise the appends). Each recorder LISTENs on a
// connection of its own once something subscribes (opened with the settings of the pool's
// connections, but outside the pool, so it takes nothing from the application and holds up no
// clean-up of the *sql.DB), and reopens it when it fails. Because a
// notification can be lost, and because other drivers and standbys cannot LISTEN, a caught-up
// subscription also polls ([WithPollInterval]).
//
// # Standbys and read-only recorders
//
// Readers may run on hot standbys (streaming replicas), with a recorder made [WithReadOnly]: its
// constructor writes nothing, and its reads and subscriptions keep the ordering's guarantee there as
// on the primary (see [OrderingXID] for what differs). A standby has no LISTEN, and the primary's
// notifications do not reach it: subscriptions there find new events by polling, so they see an
// append the standby has replayed within a poll interval.
//
// # Connection pool
//
// database/sql keeps two idle connections by default. An application with many concurrent appends
// should raise that (db.SetMaxIdleConns), or connections will be opened and closed all the time. A
// recorder with subscriptions has one more connection to the server, for its listener, outside the
// pool.
package postgres

// Package sqlite provides the SQLite recorders: a [ProcessRecorder] (events, the notification log,
// tracking records and subscriptions) and a [SnapshotRecorder] (a snapshot store), over any *sql.DB of a
// SQLite driver. It imports no driver: the *sql.DB brings its own. Package
// [github.com/eventsourcing-go/eventsourcing/db/sqlite/ncruces] opens one with
// github.com/ncruces/go-sqlite3 (pure Go, no cgo); github.com/mattn/go-sqlite3 and modernc.org/sqlite
// are tested too (errors are classified by SQLite's messages, which every driver passes on).
//
// Create the tables with schema.Migrate(ctx, db, schema.SQLite) first. One database file holds one
// application.
//
// # Writes
//
// SQLite lets one connection write at a time; connections that try at once wait on the file lock and,
// past the busy timeout, fail with "database is locked". A recorder therefore keeps one connection for
// itself and writes only through it. A call that finds it idle commits at once, on the caller's
// goroutine, with no timer and nothing handed over: the same work as a hand-written transaction. Calls
// that arrive while a transaction is in progress queue, and a writer goroutine commits everything
// queued in the next transaction, each batch inside a savepoint of its own (group commit; a batch of one
// statement needs none). A batch that conflicts rolls back to its savepoint alone and its caller gets an
// error wrapping eventsourcing.ErrConflict; the other batches commit. Under concurrency one sync of the
// log serves many callers: after a transaction the writer lets its callers queue again (for a fraction
// of the transaction's time, never sleeping) before it takes the next, so that callers that save in a
// loop share every sync rather than taking turns. The durability of a commit is [WithSynchronous]'s
// choice.
//
// # Reads and subscriptions
//
// Reads go through the pool. In WAL mode (which the recorders switch a database file to) readers see the
// last committed state and neither wait for the writer nor hold it up. Because SQLite serialises
// writers, notification IDs become visible in increasing order, so a subscription that reads on from the
// last ID it saw never skips one. A subscription wakes when its recorder commits, and polls for commits
// made elsewhere.
package sqlite

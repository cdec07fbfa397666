// Package projectiontest is the conformance suite of the projection package's SQL tracker contract
// ([TestSQLTracker]): a SQL recorder's tracked transactions are atomic with the projection's writes,
// their tracking is a compare-and-set per consumer, and projection runners over it process every
// event exactly once, in batches, across restarts, instances and rebuilds.
//
// Like recordertest, it asserts nothing about speed: its waits fail only after a generous timeout.
package projectiontest

import "time"

// waitTimeout bounds every wait. Reaching it is a failure, never a measurement.
const waitTimeout = 60 * time.Second

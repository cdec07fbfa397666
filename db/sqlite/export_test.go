package sqlite

// Commits returns how many transactions r's writer has committed, so that benchmarks can report how
// many events group commit puts into one transaction.
func Commits(r *ProcessRecorder) int64 { return r.w.commits.Load() }

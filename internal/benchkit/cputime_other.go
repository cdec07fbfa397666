//go:build !unix

package benchkit

import "time"

// CPUTime is the CPU time the process has used: 0 here, where it cannot be read.
func CPUTime() time.Duration { return 0 }

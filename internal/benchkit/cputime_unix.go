//go:build unix

package benchkit

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time the process has used, in user and system mode; 0 where it cannot be read.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

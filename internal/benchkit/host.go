package benchkit

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

// Host describes the machine for a report: its processor, memory and operating system, as Linux's
// /proc tells (elsewhere the architecture, "unknown" and the operating system's name).
func Host() (cpu, memory, osName string) {
	cpu, memory, osName = runtime.GOARCH, "unknown", runtime.GOOS
	if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindStringSubmatch(readFile("/proc/cpuinfo")); m != nil {
		cpu = strings.TrimSpace(m[1])
	}
	if f := strings.Fields(readFile("/proc/meminfo")); len(f) > 1 && f[0] == "MemTotal:" {
		if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
			memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	if v := strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")); v != "" {
		osName = "Linux " + v
	}
	return cpu, memory, osName
}

// LoadAvg returns the machine's load averages over 1, 5 and 15 minutes, "unknown" where /proc does not
// tell.
func LoadAvg() string {
	if f := strings.Fields(readFile("/proc/loadavg")); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func readFile(name string) string {
	b, _ := os.ReadFile(name)
	return string(b)
}

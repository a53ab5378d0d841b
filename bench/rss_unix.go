//go:build unix && !linux

package bench

import (
	"fmt"
	"runtime"
	"syscall"
)

// PeakRSS returns the process's peak resident set size in bytes: getrusage's
// ru_maxrss (bytes on macOS and iOS, KiB on the BSDs).
func PeakRSS() (int64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("bench: peak RSS: getrusage: %w", err)
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss), nil
	}
	return int64(ru.Maxrss) << 10, nil
}

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// PeakRSS returns the process's peak resident set size in bytes: VmHWM
// from /proc/self/status.
func PeakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("bench: peak RSS: %w", err)
	}
	return parseVmHWM(b)
}

// parseVmHWM reads the "VmHWM:   123456 kB" line of a /proc/PID/status file.
func parseVmHWM(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == "VmHWM:" && string(f[2]) == "kB" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bench: peak RSS: VmHWM %q: %w", f[1], err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("bench: peak RSS: no VmHWM line in /proc/self/status")
}

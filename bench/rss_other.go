//go:build !unix

package bench

import (
	"fmt"
	"runtime"
)

// PeakRSS is not measured on this system: it returns 0 and an error.
func PeakRSS() (int64, error) {
	return 0, fmt.Errorf("bench: peak RSS is not measured on %s", runtime.GOOS)
}

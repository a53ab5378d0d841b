//go:build !amd64 || purego

package layers

// wgAVX512 is false on this build: there are no assembly kernels.
var wgAVX512 = false

// The row transforms are the Go code on this build (see
// winograd_amd64.go for the assembly).
var (
	wgInRows   = wgInRowsGo
	wgOutRows  = wgOutRowsGo
	wgInRows4  = wgInRowsGo4
	wgOutRows4 = wgOutRowsGo4
)

// wgInGather has no kernel on this build: it reports false.
func wgInGather(v, x []float32, ts []wgTile, c0, c1, h, w, ld, plane int) bool { return false }

// wgOutScatter has no kernel on this build: it reports false.
func wgOutScatter(y, m []float32, ts []wgTile, o0, o1, h, w, ld, plane int, b []float32) bool {
	return false
}

// wgFilterRows has no kernel on this build: it reports false.
func wgFilterRows(u, w []float32, o, c, lo, hi int) bool { return false }

// wgInRun4 has no kernel on this build: it reports false.
func wgInRun4(q, x []float32, ts []wgTile, c0, c1, h, w, ld, plane int) bool { return false }

// wgOutRun4 has no kernel on this build: it reports false.
func wgOutRun4(y, q []float32, ts []wgTile, o0, o1, h, w, ld, plane int, b []float32) bool {
	return false
}

// wgFilter4Rows has no kernel on this build: it reports false.
func wgFilter4Rows(u, w []float32, o, c, lo, hi int, rotate bool) bool { return false }

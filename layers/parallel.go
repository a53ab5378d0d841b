package layers

// parallelMin is the number of elements under which an elementwise or
// per-channel pass stays on one goroutine: starting and joining a goroutine
// costs a few microseconds, as long as ~16K float32 additions take.
const parallelMin = 1 << 16

// splitRows runs fn(lo, hi) over the rows [0, rows) of a pass that touches
// rows·rowLen elements: on one goroutine when that is under parallelMin,
// otherwise in contiguous chunks via splitWork. Each row is handled whole by
// one call, so a per-row reduction keeps one fixed order whatever the split.
func splitRows(rows, rowLen int, fn func(lo, hi int)) {
	if rows*rowLen < parallelMin {
		fn(0, rows)
		return
	}
	splitWork(rows, func(_, lo, hi int) { fn(lo, hi) })
}

package layers

import (
	"sync"
	"sync/atomic"
)

// parallelMin is the number of elements under which an elementwise or
// per-channel pass stays on one goroutine: starting and joining a goroutine
// costs a few microseconds, as long as ~16K float32 additions take.
const parallelMin = 1 << 16

// Chunking of a parallel pass: it is cut into chunksPerWorker chunks per
// worker, fewer when a chunk would hold under chunkMin elements (taking a
// chunk costs one atomic add).
const (
	chunksPerWorker = 8
	chunkMin        = 1 << 14
)

// splitRows runs fn(lo, hi) over the rows [0, rows) of a pass that touches
// rows·rowLen elements: on one goroutine when that is under parallelMin,
// otherwise on splitWorkers(rows) goroutines, the calling one included,
// which take contiguous chunks of rows in turn until none is left. On a
// shared, virtualised machine one CPU often starts a pass a millisecond late
// or runs it half as fast as the other; fixed halves then leave one CPU
// idle for the difference, chunks taken in turn do not. Each row is handled
// whole by one call, so a per-row reduction keeps one fixed order whatever
// the split: results never depend on the number of CPUs or on which
// goroutine took which chunk.
func splitRows(rows, rowLen int, fn func(lo, hi int)) {
	if rows*rowLen < parallelMin {
		fn(0, rows)
		return
	}
	splitChunks(rows, rowLen, splitWorkers(rows), fn)
}

// splitChunks is splitRows's parallel pass on workers goroutines.
func splitChunks(rows, rowLen, workers int, fn func(lo, hi int)) {
	chunks := min(rows, workers*chunksPerWorker, max(workers, rows*rowLen/chunkMin))
	if workers <= 1 || chunks <= 1 {
		fn(0, rows)
		return
	}
	var next atomic.Int64
	work := func() {
		for c := int(next.Add(1)) - 1; c < chunks; c = int(next.Add(1)) - 1 {
			fn(c*rows/chunks, (c+1)*rows/chunks)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

package layers

import (
	"runtime"
	"sync"

	"github.com/gozoo/gozoo/internal/parallel"
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
	splitChunks(rows, rowLen, chunkMin, splitWorkers(rows), fn)
}

// splitChunks runs fn over [0, rows) on workers goroutines, the calling one
// included, in chunksFor(rows, rowLen, minChunk, workers) chunks taken in
// turn.
func splitChunks(rows, rowLen, minChunk, workers int, fn func(lo, hi int)) {
	parallel.Run(rows, chunksFor(rows, rowLen, minChunk, workers), workers, func(_, lo, hi int) { fn(lo, hi) })
}

// chunksFor is the number of chunks a pass over rows rows of rowLen units
// each is cut into on workers goroutines: chunksPerWorker per worker, fewer
// when a chunk would hold under minChunk units, at least one per worker,
// at most one per row.
func chunksFor(rows, rowLen, minChunk, workers int) int {
	return max(1, min(rows, workers*chunksPerWorker, max(workers, rows*rowLen/minChunk)))
}

// splitImages runs fn(worker, lo, hi) over the n images of a batch on
// splitWorkers(n) goroutines, in up to chunksPerWorker chunks per worker
// taken in turn (parallel.Run); worker indexes a per-goroutine scratch.
func splitImages(n int, fn func(worker, lo, hi int)) {
	workers := splitWorkers(n)
	parallel.Run(n, chunksFor(n, 1, 1, workers), workers, fn)
}

// splitFixed runs fn(worker, lo, hi) over [0, n) cut into contiguous,
// non-empty chunks, one per worker and goroutine, as many as there are
// CPUs (splitWorkers): worker k always gets [k·n/workers, (k+1)·n/workers).
// Only for per-worker partial sums, whose order of summation must not
// depend on timing; everything else goes through parallel.Run.
func splitFixed(n int, fn func(worker, lo, hi int)) {
	workers := splitWorkers(n)
	if workers == 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for k := 1; k < workers; k++ {
		wg.Go(func() { fn(k, k*n/workers, (k+1)*n/workers) })
	}
	fn(0, 0, n/workers)
	wg.Wait()
}

// splitWorkers is the number of workers a split uses for n items: as many
// as there are CPUs, at most 8 (which bounds the scratch memory the
// workers allocate) and at most n.
func splitWorkers(n int) int { return max(1, min(n, runtime.GOMAXPROCS(0), 8)) }

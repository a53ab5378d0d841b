package layers

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
	splitDynamic(rows, chunksFor(rows, rowLen, minChunk, workers), workers, func(_, lo, hi int) { fn(lo, hi) })
}

// chunksFor is the number of chunks a pass over rows rows of rowLen units
// each is cut into on workers goroutines: chunksPerWorker per worker, fewer
// when a chunk would hold under minChunk units, at least one per worker,
// at most one per row.
func chunksFor(rows, rowLen, minChunk, workers int) int {
	return max(1, min(rows, workers*chunksPerWorker, max(workers, rows*rowLen/minChunk)))
}

// splitDynamic runs fn(worker, lo, hi) over [0, n) cut into chunks
// contiguous chunks (chunkAt): the same boundaries on every run, the larger
// chunks first, so that the last ones taken are the small ones. workers
// goroutines, the calling one (worker 0) included, take the chunks in
// order from a shared counter until none is left, so which worker gets
// which chunk depends on timing: fn must write only what its own items
// determine. With one worker (or chunk), fn(0, 0, n) runs once on the
// calling goroutine. worker, in [0, workers), tells one goroutine's scratch
// from another's; no two calls with the same worker run at once.
//
// The other workers are splitPool's goroutines, which stay awake a while
// between splits (splitSpin; a goroutine started for a split waited
// ~0.1 ms for the other vCPU to wake, ~700 times per vgg16_bn training
// step); a split that finds the pool busy (nested or concurrent splits)
// starts goroutines of its own. splitDynamic returns once every chunk is
// done, without waiting for workers that took none.
func splitDynamic(n, chunks, workers int, fn func(worker, lo, hi int)) {
	chunks = min(chunks, n)
	workers = min(workers, chunks)
	if workers <= 1 {
		fn(0, 0, n)
		return
	}
	j := &splitJob{fn: fn, n: n, chunks: chunks, workers: workers, fin: make(chan struct{})}
	if splitPool.TryLock() {
		splitPool.post(j)
		j.run(0)
		j.wait()
		splitPool.Unlock()
		return
	}
	for k := 1; k < workers; k++ {
		go j.run(k)
	}
	j.run(0)
	j.wait()
}

// splitJob is one splitDynamic call: its chunks, the next one to take and
// how many are done.
type splitJob struct {
	fn                 func(worker, lo, hi int)
	n, chunks, workers int
	next, done         atomic.Int64
	fin                chan struct{} // closed when every chunk is done
}

// run takes and does chunks as worker k until none is left.
func (j *splitJob) run(k int) {
	for c := int(j.next.Add(1)) - 1; c < j.chunks; c = int(j.next.Add(1)) - 1 {
		j.fn(k, chunkAt(c, j.n, j.chunks), chunkAt(c+1, j.n, j.chunks))
		if int(j.done.Add(1)) == j.chunks {
			close(j.fin)
		}
	}
}

// wait returns when every chunk of j is done.
func (j *splitJob) wait() {
	if int(j.done.Load()) < j.chunks {
		<-j.fin
	}
}

// splitSpin is how long a pool worker keeps polling for the next split
// before it sleeps: 4 of 5 gaps between the splits of a vgg16_bn step
// were shorter (many under 10 µs, between the phases of one
// convolution), while a sleeping vCPU took ~0.1 ms to wake. Polls of
// 200 µs gained nothing more on a quiet machine, and while another
// process held a CPU they made inference ~10% slower than no pool (the
// poll takes CPU time from the caller then; docs/performance-nongemm.md,
// step 7).
const splitSpin = 50 * time.Microsecond

// splitPool is the workers 1, 2, … of splitDynamic, started on first use
// and never stopped. Its lock is held by the split in progress.
var splitPool pool

// pool is a set of worker goroutines that run the chunks of the posted
// job.
type pool struct {
	sync.Mutex
	job     atomic.Pointer[splitJob]
	gen     atomic.Uint64 // bumped at every post
	workers []*poolWorker
}

// poolWorker is one worker's parking place.
type poolWorker struct {
	asleep atomic.Bool
	wake   chan struct{} // buffered 1
}

// post makes j the current job, starts the workers it lacks and wakes the
// sleeping ones. The caller holds p's lock.
func (p *pool) post(j *splitJob) {
	for len(p.workers) < j.workers-1 {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.loop(len(p.workers), w, p.gen.Load())
	}
	p.job.Store(j)
	p.gen.Add(1)
	for _, w := range p.workers[:j.workers-1] {
		if w.asleep.Load() {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// loop is worker k: it runs its share of every job posted after seen,
// polling for the next one for splitSpin, then sleeping until woken.
func (p *pool) loop(k int, w *poolWorker, seen uint64) {
	for {
		for deadline := time.Now().Add(splitSpin); p.gen.Load() == seen; {
			if time.Now().Before(deadline) {
				runtime.Gosched()
				continue
			}
			w.asleep.Store(true)
			if p.gen.Load() == seen {
				<-w.wake
			}
			w.asleep.Store(false)
			deadline = time.Now().Add(splitSpin)
		}
		seen = p.gen.Load()
		if j := p.job.Load(); k < j.workers {
			j.run(k)
		}
	}
}

// chunkAt is where chunk c of [0, n) cut into chunks begins: each chunk
// holds n/chunks items, and the first n%chunks one more.
func chunkAt(c, n, chunks int) int { return c*(n/chunks) + min(c, n%chunks) }

// splitImages runs fn(worker, lo, hi) over the n images of a batch on
// splitWorkers(n) goroutines, in up to chunksPerWorker chunks per worker
// taken in turn (splitDynamic); worker indexes a per-goroutine scratch.
func splitImages(n int, fn func(worker, lo, hi int)) {
	workers := splitWorkers(n)
	splitDynamic(n, chunksFor(n, 1, 1, workers), workers, fn)
}

// splitFixed runs fn(worker, lo, hi) over [0, n) cut into contiguous,
// non-empty chunks, one per worker and goroutine, as many as there are
// CPUs (splitWorkers): worker k always gets [k·n/workers, (k+1)·n/workers).
// Only for per-worker partial sums, whose order of summation must not
// depend on timing; everything else goes through splitDynamic.
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

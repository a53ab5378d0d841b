// Package parallel hands out the chunks of a split loop to the CPUs:
// contiguous chunks with boundaries fixed in advance (ChunkAt), taken in
// turn from a shared counter by a small pool of workers that poll for the
// next split a while before they sleep. layers, internal/sgemm and train's
// solvers all split their work through Run, so a CPU that starts late or
// runs slow takes fewer chunks instead of holding the others idle.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Run runs fn(worker, lo, hi) over [0, n) cut into chunks
// contiguous chunks (ChunkAt): the same boundaries on every run, the larger
// chunks first, so that the last ones taken are the small ones. workers
// goroutines, the calling one (worker 0) included, take the chunks in
// order from a shared counter until none is left, so which worker gets
// which chunk depends on timing: fn must write only what its own items
// determine. With one worker (or chunk), fn(0, 0, n) runs once on the
// calling goroutine. worker, in [0, workers), tells one goroutine's scratch
// from another's; no two calls with the same worker run at once.
//
// The other workers are workerPool's goroutines, which stay awake a while
// between splits (spin; a goroutine started for a split waited
// ~0.1 ms for the other vCPU to wake, ~700 times per vgg16_bn training
// step); a split that finds the pool busy (nested or concurrent splits)
// starts goroutines of its own. Run returns once every chunk is
// done, without waiting for workers that took none.
func Run(n, chunks, workers int, fn func(worker, lo, hi int)) {
	chunks = min(chunks, n)
	workers = min(workers, chunks)
	if workers <= 1 {
		fn(0, 0, n)
		return
	}
	j := &job{fn: fn, n: n, chunks: chunks, workers: workers, fin: make(chan struct{})}
	if workerPool.TryLock() {
		workerPool.post(j)
		j.run(0)
		j.wait()
		workerPool.Unlock()
		return
	}
	for k := 1; k < workers; k++ {
		go j.run(k)
	}
	j.run(0)
	j.wait()
}

// job is one Run call: its chunks, the next one to take and
// how many are done.
type job struct {
	fn                 func(worker, lo, hi int)
	n, chunks, workers int
	next, done         atomic.Int64
	fin                chan struct{} // closed when every chunk is done
}

// run takes and does chunks as worker k until none is left.
func (j *job) run(k int) {
	for c := int(j.next.Add(1)) - 1; c < j.chunks; c = int(j.next.Add(1)) - 1 {
		j.fn(k, ChunkAt(c, j.n, j.chunks), ChunkAt(c+1, j.n, j.chunks))
		if int(j.done.Add(1)) == j.chunks {
			close(j.fin)
		}
	}
}

// wait returns when every chunk of j is done.
func (j *job) wait() {
	if int(j.done.Load()) < j.chunks {
		<-j.fin
	}
}

// spin is how long a pool worker keeps polling for the next split
// before it sleeps: 4 of 5 gaps between the splits of a vgg16_bn step
// were shorter (many under 10 µs, between the phases of one
// convolution), while a sleeping vCPU took ~0.1 ms to wake. Polls of
// 200 µs gained nothing more on a quiet machine, and while another
// process held a CPU they made inference ~10% slower than no pool (the
// poll takes CPU time from the caller then; docs/performance-nongemm.md,
// step 7).
const spin = 50 * time.Microsecond

// workerPool is the workers 1, 2, … of Run, started on first use
// and never stopped. Its lock is held by the split in progress.
var workerPool pool

// pool is a set of worker goroutines that run the chunks of the posted
// job.
type pool struct {
	sync.Mutex
	job     atomic.Pointer[job]
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
func (p *pool) post(j *job) {
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
// polling for the next one for spin, then sleeping until woken.
func (p *pool) loop(k int, w *poolWorker, seen uint64) {
	for {
		for deadline := time.Now().Add(spin); p.gen.Load() == seen; {
			if time.Now().Before(deadline) {
				runtime.Gosched()
				continue
			}
			w.asleep.Store(true)
			if p.gen.Load() == seen {
				<-w.wake
			}
			w.asleep.Store(false)
			deadline = time.Now().Add(spin)
		}
		seen = p.gen.Load()
		if j := p.job.Load(); k < j.workers {
			j.run(k)
		}
	}
}

// ChunkAt is where chunk c of [0, n) cut into chunks begins: each chunk
// holds n/chunks items, and the first n%chunks one more.
func ChunkAt(c, n, chunks int) int { return c*(n/chunks) + min(c, n%chunks) }

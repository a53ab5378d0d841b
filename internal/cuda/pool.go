package cuda

import "fmt"

// Pool keeps buffers for reuse so that a training step allocates nothing
// after the first: Get hands out an idle buffer of the size asked for, or
// allocates one; Put returns one at once (a temporary); Recycle returns
// every buffer handed out since the last Recycle, except those Kept (weights,
// running statistics, solver state). A step whose sequence of sizes repeats
// (every step of a fixed-shape graph) therefore finds all its buffers idle.
// B is the buffer handle (a Buffer on a GPU, a host slice's owner in the
// emulation); the zero Pool is not usable, see NewPool. A Pool is not safe
// for concurrent use.
type Pool[B comparable] struct {
	alloc  func(n int) (B, error)
	size   map[B]int // every buffer the pool allocated, by size n
	idle   map[int][]B
	lent   map[B]bool
	allocs int
}

// NewPool returns a pool that allocates with alloc (n is the size in the
// caller's unit, bytes or elements).
func NewPool[B comparable](alloc func(n int) (B, error)) *Pool[B] {
	return &Pool[B]{alloc: alloc, size: map[B]int{}, idle: map[int][]B{}, lent: map[B]bool{}}
}

// Get returns a buffer of size n: an idle one if there is one (its contents
// are stale), else a new one. fresh says which.
func (p *Pool[B]) Get(n int) (b B, fresh bool, err error) {
	if q := p.idle[n]; len(q) > 0 {
		b = q[len(q)-1]
		p.idle[n] = q[:len(q)-1]
		p.lent[b] = true
		return b, false, nil
	}
	if b, err = p.alloc(n); err != nil {
		return b, false, err
	}
	p.allocs++
	p.size[b] = n
	p.lent[b] = true
	return b, true, nil
}

// Put makes b idle now. A buffer the pool did not allocate is an error.
func (p *Pool[B]) Put(b B) error {
	n, ok := p.size[b]
	if !ok {
		return fmt.Errorf("cuda: Pool.Put of a buffer the pool did not allocate")
	}
	if !p.lent[b] {
		// Kept, or already idle: idle it once only.
		for _, q := range p.idle[n] {
			if q == b {
				return nil
			}
		}
	}
	delete(p.lent, b)
	p.idle[n] = append(p.idle[n], b)
	return nil
}

// Keep exempts b from Recycle until it is Put.
func (p *Pool[B]) Keep(b B) { delete(p.lent, b) }

// Recycle makes every buffer handed out since the last Recycle idle, except
// the kept ones.
func (p *Pool[B]) Recycle() {
	for b := range p.lent {
		p.idle[p.size[b]] = append(p.idle[p.size[b]], b)
	}
	clear(p.lent)
}

// Allocs counts the buffers the pool allocated (not the ones it reused).
func (p *Pool[B]) Allocs() int { return p.allocs }

// Drain hands every buffer the pool allocated to free and empties the pool.
func (p *Pool[B]) Drain(free func(B)) {
	for b := range p.size {
		free(b)
	}
	clear(p.size)
	clear(p.idle)
	clear(p.lent)
}

package cifar10

import (
	"context"
	"fmt"
	"iter"
	"math/bits"
	"math/rand/v2"
	"sync"
)

// DefaultMean and DefaultStd are CIFAR-10's per-channel (R, G, B) training
// set mean and standard deviation of pixel/255.
var (
	DefaultMean = [3]float32{0.4914, 0.4822, 0.4465}
	DefaultStd  = [3]float32{0.2470, 0.2435, 0.2616}
)

// LoaderConfig sets how a Loader batches a Dataset.
type LoaderConfig struct {
	BatchSize int  // images per batch; the last batch of an epoch may be smaller
	Shuffle   bool // reshuffle every epoch, seeded by (Seed, epoch)
	// Augment takes a random 32×32 crop of the image zero-padded by 4 pixels
	// on each side, then flips it horizontally with probability 0.5, seeded
	// by (Seed, epoch, batch index). Padding is black: pixel 0 before
	// normalization, as torchvision's RandomCrop(32, padding=4).
	Augment bool
	Seed    uint64
	// Mean and Std normalize each channel: (pixel/255 − Mean[c]) / Std[c].
	// Both zero means DefaultMean and DefaultStd.
	Mean, Std [3]float32
	// Workers is the number of goroutines preparing batches ahead of the
	// consumer; 0 means 2. At most max(Workers, 2) batches wait ready.
	Workers int
}

// Batch is one batch of a Loader's epoch. Each Batch is freshly allocated
// and belongs to the consumer.
type Batch struct {
	Images []float32 // (N, 3, 32, 32) normalized
	Labels []int     // (N)
	Index  int       // batch index within the epoch, from 0
}

// Len returns the number of images N in the batch.
func (b Batch) Len() int { return len(b.Labels) }

// Loader cuts a Dataset into normalized, optionally shuffled and augmented
// batches. The batches of an epoch are a pure function of (Seed, epoch, data):
// they never depend on Workers or on scheduling.
type Loader struct {
	d   *Dataset
	cfg LoaderConfig
	lut [3][256]float32 // normalized value of each pixel byte, per channel
}

// NewLoader returns a Loader over d.
func NewLoader(d *Dataset, cfg LoaderConfig) (*Loader, error) {
	switch {
	case d == nil || d.Len() == 0:
		return nil, fmt.Errorf("cifar10: loader: empty data set; load one first")
	case len(d.Images) != d.Len()*ImageSize:
		return nil, fmt.Errorf("cifar10: loader: %d image bytes for %d labels, want %d", len(d.Images), d.Len(), d.Len()*ImageSize)
	case cfg.BatchSize <= 0:
		return nil, fmt.Errorf("cifar10: loader: batch size %d, want > 0", cfg.BatchSize)
	case cfg.Workers < 0:
		return nil, fmt.Errorf("cifar10: loader: %d workers, want >= 0 (0 means 2)", cfg.Workers)
	}
	if cfg.Mean == [3]float32{} && cfg.Std == [3]float32{} {
		cfg.Mean, cfg.Std = DefaultMean, DefaultStd
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	l := &Loader{d: d, cfg: cfg}
	for c := range 3 {
		if !(cfg.Std[c] > 0) {
			return nil, fmt.Errorf("cifar10: loader: Std[%d] = %g, want > 0 (leave Mean and Std zero for CIFAR-10's)", c, cfg.Std[c])
		}
		for p := range 256 {
			l.lut[c][p] = (float32(p)/255 - cfg.Mean[c]) / cfg.Std[c]
		}
	}
	return l, nil
}

// NumBatches returns the number of batches of an epoch, the last partial
// batch included: ceil(Len / BatchSize).
func (l *Loader) NumBatches() int { return (l.d.Len() + l.cfg.BatchSize - 1) / l.cfg.BatchSize }

// Epoch returns the batches of epoch in order. Batches are prepared by
// cfg.Workers goroutines, a few ahead of the consumer; stopping early (break,
// or ctx cancelled, which yields ctx.Err() once) stops them all before the
// loop returns. The only error is ctx's.
func (l *Loader) Epoch(ctx context.Context, epoch int) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		order := l.order(epoch)
		nb := l.NumBatches()
		done := make(chan struct{})
		// pending holds each batch's result channel in batch order; its
		// capacity bounds how many batches are prepared ahead.
		pending := make(chan chan Batch, max(l.cfg.Workers, 2))
		type job struct {
			b   int
			out chan Batch
		}
		jobs := make(chan job)
		var wg sync.WaitGroup
		defer func() {
			close(done)
			wg.Wait()
		}()
		wg.Go(func() {
			defer close(pending)
			defer close(jobs)
			for b := range nb {
				out := make(chan Batch, 1)
				select {
				case pending <- out:
				case <-done:
					return
				}
				select {
				case jobs <- job{b, out}:
				case <-done:
					return
				}
			}
		})
		for range l.cfg.Workers {
			wg.Go(func() {
				for j := range jobs {
					j.out <- l.batch(order, epoch, j.b)
				}
			})
		}
		for out := range pending {
			select {
			case b := <-out:
				if ctx.Err() != nil {
					yield(Batch{}, ctx.Err())
					return
				}
				if !yield(b, nil) {
					return
				}
			case <-ctx.Done():
				yield(Batch{}, ctx.Err())
				return
			}
		}
	}
}

// order returns the image order of epoch: a permutation seeded by
// (Seed, epoch) when shuffling, else 0..N−1.
func (l *Loader) order(epoch int) []int {
	n := l.d.Len()
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	if l.cfg.Shuffle {
		r := rand.NewPCG(l.cfg.Seed, mix(0x53485546464c45, uint64(epoch))) // "SHUFFLE"
		for i := n - 1; i > 0; i-- {
			j := below(r, i+1)
			p[i], p[j] = p[j], p[i]
		}
	}
	return p
}

// batch builds batch b of epoch from the images order[b*BatchSize:...].
func (l *Loader) batch(order []int, epoch, b int) Batch {
	lo := b * l.cfg.BatchSize
	idx := order[lo:min(lo+l.cfg.BatchSize, len(order))]
	out := Batch{Images: make([]float32, len(idx)*ImageSize), Labels: make([]int, len(idx)), Index: b}
	var r *rand.PCG
	if l.cfg.Augment {
		r = rand.NewPCG(l.cfg.Seed, mix(mix(0x4155474d454e54, uint64(epoch)), uint64(b))) // "AUGMENT"
	}
	for k, i := range idx {
		out.Labels[k] = l.d.Labels[i]
		dst := out.Images[k*ImageSize : (k+1)*ImageSize]
		if r == nil {
			for c := range Channels {
				lut := &l.lut[c]
				for p, v := range l.d.Image(i)[c*Height*Width : (c+1)*Height*Width] {
					dst[c*Height*Width+p] = lut[v]
				}
			}
			continue
		}
		dy, dx, flip := below(r, 9)-4, below(r, 9)-4, below(r, 2) == 1
		l.crop(dst, l.d.Image(i), dy, dx, flip)
	}
	return out
}

// crop writes to dst (3, 32, 32) the normalized image src (3, 32, 32)
// shifted so that dst(y, x) = src(y+dy, x+dx), 0 outside src, then mirrored
// left to right if flip.
func (l *Loader) crop(dst []float32, src []uint8, dy, dx int, flip bool) {
	for c := range Channels {
		lut := &l.lut[c]
		plane := src[c*Height*Width : (c+1)*Height*Width]
		for y := range Height {
			row := dst[(c*Height+y)*Width : (c*Height+y+1)*Width]
			sy := y + dy
			for x := range Width {
				sx := x + dx
				if flip {
					sx = Width - 1 - x + dx
				}
				v := lut[0]
				if sy >= 0 && sy < Height && sx >= 0 && sx < Width {
					v = lut[plane[sy*Width+sx]]
				}
				row[x] = v
			}
		}
	}
}

// mix combines a and b into one well-spread 64-bit value (splitmix64's
// finalizer over a·φ + b), so that nearby epochs and batches get unrelated
// random streams.
func mix(a, b uint64) uint64 {
	z := a*0x9e3779b97f4a7c15 + b
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below returns a number in [0, n) from r by multiply-shift (bias < n/2⁶⁴).
// It is written here, not taken from math/rand, so that a seed gives the
// same batches whatever the Go version.
func below(r *rand.PCG, n int) int {
	hi, _ := bits.Mul64(r.Uint64(), uint64(n))
	return int(hi)
}

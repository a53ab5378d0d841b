// Package nn is gozoo's GPU implementation of the layers' forward and
// backward computations (package layers) and the solvers' updates (package
// train), as functions on device tensors: float32, NCHW, the same contracts
// and shapes as the CPU ops. Convolutions and Linear run on cuBLAS SGEMM
// with beta = 0; everything else on the kernels of internal/cuda/kernels.
//
// Backend implements ops.Backend: package internal/cuda/ops wraps these
// functions as Gorgonia ops, and zoo/vgg's Device runs whole models with
// them. Every tensor comes from the backend's pool (cuda.Pool): temporaries
// go back at once, the outputs of a step at the next Recycle, so a
// fixed-shape step allocates device memory only the first time.
package nn

import (
	"fmt"
	"slices"

	"github.com/gozoo/gozoo/internal/cuda"
	"github.com/gozoo/gozoo/internal/cuda/kernels"
	"github.com/gozoo/gozoo/internal/cuda/ops"
)

// Backend runs the layers on one device; it holds the loaded kernels.
type Backend struct {
	D    *cuda.Device
	fn   map[string]*cuda.Function
	pool *cuda.Pool[cuda.Buffer]
}

// New loads every kernel module on d.
func New(d *cuda.Device) (*Backend, error) {
	b := &Backend{D: d, fn: map[string]*cuda.Function{}, pool: cuda.NewPool(d.Alloc)}
	for _, m := range kernels.Modules() {
		ptx, err := kernels.PTX(m)
		if err != nil {
			return nil, err
		}
		src, err := kernels.Source(m)
		if err != nil {
			return nil, err
		}
		mod, err := d.LoadModule(ptx)
		if err != nil {
			return nil, fmt.Errorf("nn: load module %s: %w", m, err)
		}
		for _, e := range kernels.Entries(src) {
			f, err := mod.Function(e)
			if err != nil {
				return nil, err
			}
			b.fn[e] = f
		}
	}
	return b, nil
}

// Open opens the GPU that o names and loads the kernels on it (New); Close
// the backend when done. cuda.Open's error is returned as it is (it wraps
// cuda.ErrNoDriver on a machine without an NVIDIA driver); a kernel that does
// not load is reported with the GPU's name.
func Open(o cuda.Options) (*Backend, error) {
	d, err := cuda.Open(o)
	if err != nil {
		return nil, err
	}
	b, err := New(d)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: %w", d.Name(), err)
	}
	return b, nil
}

// Close releases the pool (Release) and closes the device.
func (b *Backend) Close() error {
	b.Release()
	return b.D.Close()
}

// Tensor is a float32 (or, for argmax, int32; for masks, byte) device array
// with a shape.
type Tensor struct {
	Buf   cuda.Buffer
	Shape []int
}

// Len is the number of elements.
func (t Tensor) Len() int {
	n := 1
	for _, s := range t.Shape {
		n *= s
	}
	return n
}

// Empty returns a zeroed float32 tensor of shape from the pool.
func (b *Backend) Empty(shape ...int) (Tensor, error) {
	t := Tensor{Shape: slices.Clone(shape)}
	var err error
	t.Buf, err = b.get(4 * t.Len())
	return t, err
}

// get returns zeroed device memory of n bytes from the pool.
func (b *Backend) get(n int) (cuda.Buffer, error) {
	if n == 0 {
		return cuda.Buffer{}, nil
	}
	buf, fresh, err := b.pool.Get(n)
	if err == nil && !fresh {
		err = b.D.Zero(buf) // Alloc zeroes; a reused buffer is stale
	}
	return buf, err
}

// Upload copies data (float32, in the shape's row-major order) to the device.
func (b *Backend) Upload(data []float32, shape ...int) (Tensor, error) {
	t, err := b.Empty(shape...)
	if err != nil {
		return t, err
	}
	if t.Len() != len(data) {
		b.Free(t)
		return Tensor{}, fmt.Errorf("nn: Upload of %d values into shape %v", len(data), shape)
	}
	return t, cuda.CopyIn(b.D, t.Buf, data)
}

// Download copies t back to the host.
func (b *Backend) Download(t Tensor) ([]float32, error) {
	out := make([]float32, t.Len())
	return out, cuda.CopyOut(b.D, out, t.Buf)
}

// Free returns the tensors' memory to the pool (it stays allocated on the
// device; see Release).
func (b *Backend) Free(ts ...Tensor) {
	for _, t := range ts {
		if t.Buf.Ptr() != 0 {
			b.pool.Put(t.Buf)
		}
	}
}

// Keep exempts the tensors (weights, running statistics, solver state) from
// Recycle.
func (b *Backend) Keep(ts ...Tensor) {
	for _, t := range ts {
		if t.Buf.Ptr() != 0 {
			b.pool.Keep(t.Buf)
		}
	}
}

// Recycle returns every tensor made since the last Recycle, except the kept
// ones, to the pool: call it before each step, once the last step's outputs
// have been read.
func (b *Backend) Recycle() { b.pool.Recycle() }

// Allocs counts the device allocations made so far (reuses not counted).
func (b *Backend) Allocs() int { return b.pool.Allocs() }

// Release frees every buffer of the pool on the device; no tensor of this
// backend may be used afterwards.
func (b *Backend) Release() { b.pool.Drain(func(buf cuda.Buffer) { b.D.Free(buf) }) }

// ShapeOf is t's shape.
func (b *Backend) ShapeOf(t Tensor) []int { return t.Shape }

// Reshape returns a view of t with another shape of the same size.
func (b *Backend) Reshape(t Tensor, shape ...int) (Tensor, error) {
	v := Tensor{Buf: t.Buf, Shape: slices.Clone(shape)}
	if v.Len() != t.Len() {
		return Tensor{}, fmt.Errorf("nn: Reshape %v to %v: the sizes differ", t.Shape, shape)
	}
	return v, nil
}

// elementwise launches kernel name over n elements.
func (b *Backend) elementwise(name string, n int, args ...any) error {
	grid, block, err := kernels.Elementwise(n)
	if err != nil {
		return err
	}
	return b.fn[name].Launch(grid, block, 0, args...)
}

// perChannel launches reduction kernel name with one block per channel.
func (b *Backend) perChannel(name string, c int, args ...any) error {
	grid, block, err := kernels.PerChannel(c)
	if err != nil {
		return err
	}
	return b.fn[name].Launch(grid, block, 0, args...)
}

// shape4 checks that t is 4-D and returns its dimensions.
func shape4(op string, t Tensor) (n, c, h, w int, err error) {
	if len(t.Shape) != 4 {
		return 0, 0, 0, 0, fmt.Errorf("nn: %s: shape %v; want (N, C, H, W)", op, t.Shape)
	}
	return t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3], nil
}

var _ ops.Backend[Tensor] = (*Backend)(nil)

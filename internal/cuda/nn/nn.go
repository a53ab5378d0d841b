// Package nn is gozoo's GPU implementation of the layers' forward and
// backward computations (package layers) and the solvers' updates (package
// train), as functions on device tensors: float32, NCHW, the same contracts
// and shapes as the CPU ops. Convolutions and Linear run on cuBLAS SGEMM
// with beta = 0; everything else on the kernels of internal/cuda/kernels.
//
// It is not wired into Gorgonia's TapeMachine yet: a caller drives the
// functions itself (see the GPU tests, which compare every function with the
// CPU layers).
package nn

import (
	"fmt"
	"slices"

	"github.com/gozoo/gozoo/internal/cuda"
	"github.com/gozoo/gozoo/internal/cuda/kernels"
)

// Backend runs the layers on one device; it holds the loaded kernels.
type Backend struct {
	D  *cuda.Device
	fn map[string]*cuda.Function
}

// New loads every kernel module on d.
func New(d *cuda.Device) (*Backend, error) {
	b := &Backend{D: d, fn: map[string]*cuda.Function{}}
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

// Empty allocates a zeroed float32 tensor of shape.
func (b *Backend) Empty(shape ...int) (Tensor, error) {
	t := Tensor{Shape: slices.Clone(shape)}
	buf, err := b.D.Alloc(4 * t.Len())
	t.Buf = buf
	return t, err
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

// Free releases the tensors' memory.
func (b *Backend) Free(ts ...Tensor) {
	for _, t := range ts {
		b.D.Free(t.Buf)
	}
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

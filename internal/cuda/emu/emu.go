// Package emu is a host emulation of the GPU backend (internal/cuda/nn):
// the same method set (ops.Backend) on float32 slices, computed by the CPU
// layers (package layers, run through small Gorgonia graphs) and reference
// loops with the CPU solvers' arithmetic. It exists so that the device path
// (internal/cuda/ops and zoo/vgg's Device: graphs of device ops, buffer
// reuse, the training step) is tested on machines without a GPU; speed does
// not matter. Its buffers come from a cuda.Pool like the GPU's, so the
// allocation behaviour is the same.
package emu

import (
	"fmt"
	"slices"

	"github.com/gozoo/gozoo/internal/cuda"
	"github.com/gozoo/gozoo/internal/cuda/ops"
)

// Tensor is a float32 host array standing for a device tensor. Masks hold
// 0/1, labels class indices; a max pool's "argmax" holds the pool's input
// (the emulation's backward recomputes the pool).
type Tensor struct {
	buf   *[]float32
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

// host wraps vals as a tensor of shape outside the pool (a zero bias or
// seed for the CPU graphs).
func host(vals []float32, shape ...int) Tensor { return Tensor{buf: &vals, Shape: shape} }

func (t Tensor) data() []float32 {
	if t.buf == nil {
		return nil
	}
	return (*t.buf)[:t.Len()]
}

// Backend is the emulated device.
type Backend struct {
	pool *cuda.Pool[*[]float32]
}

// New returns an emulated device with an empty pool.
func New() *Backend {
	return &Backend{pool: cuda.NewPool(func(n int) (*[]float32, error) {
		s := make([]float32, n)
		return &s, nil
	})}
}

// Empty returns a zeroed tensor of shape from the pool.
func (b *Backend) Empty(shape ...int) (Tensor, error) {
	t := Tensor{Shape: slices.Clone(shape)}
	for _, s := range shape {
		if s < 0 {
			return Tensor{}, fmt.Errorf("emu: Empty: shape %v", shape)
		}
	}
	if t.Len() == 0 {
		return t, nil
	}
	buf, _, err := b.pool.Get(t.Len())
	if err != nil {
		return Tensor{}, err
	}
	clear(*buf)
	t.buf = buf
	return t, nil
}

// Upload copies data into a new tensor of shape.
func (b *Backend) Upload(data []float32, shape ...int) (Tensor, error) {
	t, err := b.Empty(shape...)
	if err != nil {
		return t, err
	}
	if t.Len() != len(data) {
		b.Free(t)
		return Tensor{}, fmt.Errorf("emu: Upload of %d values into shape %v", len(data), shape)
	}
	copy(t.data(), data)
	return t, nil
}

// Download copies t out.
func (b *Backend) Download(t Tensor) ([]float32, error) { return slices.Clone(t.data()), nil }

// Free returns the tensors to the pool.
func (b *Backend) Free(ts ...Tensor) {
	for _, t := range ts {
		if t.buf != nil {
			b.pool.Put(t.buf)
		}
	}
}

// Keep exempts the tensors from Recycle.
func (b *Backend) Keep(ts ...Tensor) {
	for _, t := range ts {
		if t.buf != nil {
			b.pool.Keep(t.buf)
		}
	}
}

// Recycle returns every tensor made since the last Recycle, except the kept
// ones, to the pool.
func (b *Backend) Recycle() { b.pool.Recycle() }

// Allocs counts the buffers allocated so far.
func (b *Backend) Allocs() int { return b.pool.Allocs() }

// ShapeOf is t's shape.
func (b *Backend) ShapeOf(t Tensor) []int { return t.Shape }

// Reshape returns a view of t with another shape of the same size.
func (b *Backend) Reshape(t Tensor, shape ...int) (Tensor, error) {
	v := Tensor{buf: t.buf, Shape: slices.Clone(shape)}
	if v.Len() != t.Len() {
		return Tensor{}, fmt.Errorf("emu: Reshape %v to %v: the sizes differ", t.Shape, shape)
	}
	return v, nil
}

var _ ops.Backend[Tensor] = (*Backend)(nil)

var _ ops.Backend[Tensor] = (*Backend)(nil)

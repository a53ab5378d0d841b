package kernels

import (
	"fmt"

	"github.com/gozoo/gozoo/internal/cuda"
)

// Launch shapes. Elementwise kernels loop over their elements with a grid
// stride, so the grid is capped (MaxGrid blocks cover any size); reductions
// run one block of ReduceBlock threads (a power of two, as their tree
// needs) per channel.
const (
	Block       = 256
	ReduceBlock = 256
	MaxGrid     = 1 << 16
)

// Elementwise returns the launch shape for n elements, one thread each up to
// MaxGrid·Block threads; n = 0 still gets one block (which does nothing).
func Elementwise(n int) (grid, block cuda.Dim3, err error) {
	if n < 0 {
		return grid, block, fmt.Errorf("kernels: launch of %d elements", n)
	}
	g := min(max((n+Block-1)/Block, 1), MaxGrid)
	return cuda.Dim3{X: g, Y: 1, Z: 1}, cuda.Dim3{X: Block, Y: 1, Z: 1}, nil
}

// PerChannel returns the launch shape of a reduction over c channels: one
// block of ReduceBlock threads per channel.
func PerChannel(c int) (grid, block cuda.Dim3, err error) {
	if c < 1 || c > 1<<31-1 {
		return grid, block, fmt.Errorf("kernels: reduction over %d channels", c)
	}
	return cuda.Dim3{X: c, Y: 1, Z: 1}, cuda.Dim3{X: ReduceBlock, Y: 1, Z: 1}, nil
}

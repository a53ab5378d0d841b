package ops

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Value is a device tensor as a Gorgonia value (float32). Gorgonia sees its
// shape and type; its data stays on the device (Data returns the backend's
// tensor, never host memory).
type Value[T any] struct {
	T     T
	shape tensor.Shape
}

// NewValue wraps t, of the given shape, as a Gorgonia value.
func NewValue[T any](t T, shape []int) *Value[T] {
	return &Value[T]{T: t, shape: tensor.Shape(slices.Clone(shape))}
}

// Shape is the tensor's shape; () for a scalar.
func (v *Value[T]) Shape() tensor.Shape { return v.shape }

// Size is the number of elements.
func (v *Value[T]) Size() int { return v.shape.TotalSize() }

// Data returns the device tensor (type T).
func (v *Value[T]) Data() any { return v.T }

// Dtype is float32.
func (v *Value[T]) Dtype() tensor.Dtype { return tensor.Float32 }

// Uintptr is 0: there is no host memory.
func (v *Value[T]) Uintptr() uintptr { return 0 }

// MemSize is 0: there is no host memory.
func (v *Value[T]) MemSize() uintptr { return 0 }

// Pointer is nil: there is no host memory.
func (v *Value[T]) Pointer() unsafe.Pointer { return nil }

// Format prints the shape only.
func (v *Value[T]) Format(s fmt.State, _ rune) { fmt.Fprintf(s, "device%v", v.shape) }

// Type is Gorgonia's type of the value.
func (v *Value[T]) Type() hm.Type { return typeOf(len(v.shape)) }

// ErrClone is returned when Gorgonia tries to copy a device value (G.Read
// does).
var ErrClone = errors.New("ops: Gorgonia cannot copy a device value (G.Read does): read Node.Value after the run instead")

// Clone refuses: see ErrClone.
func (v *Value[T]) Clone() (any, error) { return nil, ErrClone }

func (v *Value[T]) deviceValue() {}

// typeOf is the Gorgonia type of a float32 tensor of dims dimensions
// (float32 itself for a scalar).
func typeOf(dims int) hm.Type {
	if dims == 0 {
		return tensor.Float32
	}
	return G.TensorType{Dims: dims, Of: tensor.Float32}
}

// device returns v's device tensor, or an error naming the op and the input.
func device[T any](op string, i int, v G.Value) (T, error) {
	if d, ok := v.(*Value[T]); ok {
		return d.T, nil
	}
	var zero T
	return zero, fmt.Errorf("ops: %s: input %d is a %T, not a device value of this backend", op, i, v)
}

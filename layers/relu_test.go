package layers

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestReLUGradient(t *testing.T) {
	x := randDense(1, 2, 3, 4, 5)
	gradCheck(t, func(xs []*G.Node) (*G.Node, error) { return ReLU(xs[0]) }, []*tensor.Dense{x}, []int{0}, 1e-6)
}

package layers

import (
	"fmt"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestFlatten(t *testing.T) {
	tests := []struct {
		in, want []int
	}{
		{in: []int{2, 3, 4, 5}, want: []int{2, 60}},
		{in: []int{3, 2, 7}, want: []int{3, 14}},
		{in: []int{1, 5}, want: []int{1, 5}},
		{in: []int{4, 1, 1, 1}, want: []int{4, 1}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			x := randDense(1, tt.in...)
			got := runForward(t, func(xs []*G.Node) (*G.Node, error) { return Flatten(xs[0]) }, x)
			want := tensor.New(tensor.WithShape(tt.want...), tensor.WithBacking(x.Data()))
			assertClose(t, got, want, 0)
			gradCheck(t, func(xs []*G.Node) (*G.Node, error) { return Flatten(xs[0]) }, []*tensor.Dense{x}, []int{0}, 1e-6)
		})
	}
}

func TestFlattenErrors(t *testing.T) {
	g := G.NewGraph()
	v := G.NewVector(g, tensor.Float64, G.WithShape(5), G.WithName("v"))
	if _, err := Flatten(v); err == nil {
		t.Error("Flatten of a vector: got no error")
	}
	if _, err := Flatten(nil); err == nil {
		t.Error("Flatten(nil): got no error")
	}
}

package layers

import (
	"fmt"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// linearCase is one Linear configuration: x is (n, in), w is (out, in).
type linearCase struct {
	n, in, out int
	bias       bool
}

var linearCases = []linearCase{
	{n: 3, in: 5, out: 4, bias: true},
	{n: 1, in: 7, out: 2},
	{n: 4, in: 1, out: 3, bias: true},
	{n: 2, in: 6, out: 1},
}

func (c linearCase) String() string {
	return fmt.Sprintf("n%d_in%d_out%d_bias%t", c.n, c.in, c.out, c.bias)
}

func (c linearCase) inputs() []*tensor.Dense {
	in := []*tensor.Dense{randDense(1, c.n, c.in), randDense(2, c.out, c.in)}
	if c.bias {
		in = append(in, randDense(3, c.out))
	}
	return in
}

func (c linearCase) build(xs []*G.Node) (*G.Node, error) {
	var b *G.Node
	if c.bias {
		b = xs[2]
	}
	return Linear(xs[0], xs[1], b)
}

// linearNaive is y[i, o] = Σⱼ x[i, j]·w[o, j] + b[o], in float64.
func linearNaive(c linearCase, in []*tensor.Dense) *tensor.Dense {
	x, w := in[0].Data().([]float64), in[1].Data().([]float64)
	y := make([]float64, c.n*c.out)
	for i := range c.n {
		for o := range c.out {
			s := 0.0
			if c.bias {
				s = in[2].Data().([]float64)[o]
			}
			for j := range c.in {
				s += x[i*c.in+j] * w[o*c.in+j]
			}
			y[i*c.out+o] = s
		}
	}
	return tensor.New(tensor.WithShape(c.n, c.out), tensor.WithBacking(y))
}

func TestLinearForward(t *testing.T) {
	for _, c := range linearCases {
		t.Run(c.String(), func(t *testing.T) {
			in := c.inputs()
			want := linearNaive(c, in)
			assertClose(t, runForward(t, c.build, in...), want, 1e-12)
			in32 := make([]*tensor.Dense, len(in))
			for i, d := range in {
				in32[i] = toFloat32(d)
			}
			got32 := runForward(t, c.build, in32...)
			if got32.Dtype() != tensor.Float32 {
				t.Fatalf("float32 inputs gave a %v output", got32.Dtype())
			}
			assertClose(t, got32, want, 1e-5)
		})
	}
}

func TestLinearGradient(t *testing.T) {
	for _, c := range linearCases {
		t.Run(c.String(), func(t *testing.T) {
			wrt := []int{0, 1}
			if c.bias {
				wrt = append(wrt, 2)
			}
			gradCheck(t, c.build, c.inputs(), wrt, 1e-6)
		})
	}
}

func TestLinearPrealloc(t *testing.T) {
	for _, c := range linearCases {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(fmt.Sprintf("%v_%v", c, dt), func(t *testing.T) {
				in := append(c.inputs(), randDense(4, c.n, c.out))
				if dt == tensor.Float32 {
					for i := range in {
						in[i] = toFloat32(in[i])
					}
				}
				x, w, dy := in[0], in[1], in[len(in)-1]
				fwd := []G.Value{x, w}
				if c.bias {
					fwd = append(fwd, in[2])
				}
				checkPrealloc(t, linearOp{n: c.n, in: c.in, out: c.out, bias: c.bias}, fwd...)
				checkPrealloc(t, linearGradOp{n: c.n, in: c.in, out: c.out}, dy, w)
				checkPrealloc(t, linearGradOp{n: c.n, in: c.in, out: c.out, wrtWeight: true}, dy, x)
				checkPrealloc(t, biasGradOp{dims: 2, n: c.n, c: c.out, hw: 1}, dy)
			})
		}
	}
}

func TestLinearShapeErrors(t *testing.T) {
	tests := []struct {
		name    string
		x, w, b []int
		want    string
	}{
		{name: "x rank 3", x: []int{2, 3, 4}, w: []int{5, 12}, want: "rank 2"},
		{name: "w rank 1", x: []int{2, 3}, w: []int{3}, want: "rank 2"},
		{name: "feature mismatch", x: []int{2, 3}, w: []int{5, 4}, want: "x has 3 features"},
		{name: "bias length", x: []int{2, 3}, w: []int{5, 3}, b: []int{4}, want: "b has 4 elements"},
		{name: "bias rank", x: []int{2, 3}, w: []int{5, 3}, b: []int{1, 5}, want: "rank 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := G.NewGraph()
			x := G.NewTensor(g, tensor.Float64, len(tt.x), G.WithShape(tt.x...), G.WithName("x"))
			w := G.NewTensor(g, tensor.Float64, len(tt.w), G.WithShape(tt.w...), G.WithName("w"))
			var b *G.Node
			if tt.b != nil {
				b = G.NewTensor(g, tensor.Float64, len(tt.b), G.WithShape(tt.b...), G.WithName("b"))
			}
			_, err := Linear(x, w, b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("nil w", func(t *testing.T) {
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 3), G.WithName("x"))
		if _, err := Linear(x, nil, nil); err == nil {
			t.Fatal("got no error for a nil w")
		}
	})
}

package layers

import (
	"fmt"
	"math"
	"testing"
)

// TestConvGrouped checks that multiplying several images per GEMM gives
// what one image per GEMM gives, in all three convolution kernels, with a
// last group shorter than the others.
func TestConvGrouped(t *testing.T) {
	cases := append([]convCase{
		{x: []int{5, 3, 4, 4}, w: []int{6, 3, 3, 3}, stride: 1, padding: 1},
		{x: []int{5, 4, 3, 3}, w: []int{2, 4, 1, 1}, stride: 1, padding: 0},
	}, convCases...)
	for _, c := range cases {
		g := convGeom{
			n: c.x[0], c: c.x[1], h: c.x[2], w: c.x[3],
			o: c.w[0], kh: c.w[2], kw: c.w[3], stride: c.stride, pad: c.padding,
		}
		g.oh = (g.h+2*g.pad-g.kh)/g.stride + 1
		g.ow = (g.w+2*g.pad-g.kw)/g.stride + 1
		in := c.inputs()
		x, w := data[float64](in[0]), data[float64](in[1])
		var b []float64
		if c.bias {
			b = data[float64](in[2])
		}
		dy := data[float64](randDense(4, g.n, g.o, g.oh, g.ow))
		run := func(nb int) (y, dx, dw []float64) {
			y = make([]float64, g.n*g.o*g.ohw())
			dx = make([]float64, len(x))
			dw = make([]float64, len(w))
			for i := range dx {
				dx[i] = math.NaN() // must be overwritten
			}
			convForward(g, nb, y, x, w, b)
			convGradInput(g, nb, dx, w, dy)
			convGradWeight(g, nb, dw, x, dy)
			return y, dx, dw
		}
		y1, dx1, dw1 := run(1)
		for _, nb := range []int{2, 3, g.n} {
			t.Run(fmt.Sprintf("%v/nb=%d", c, nb), func(t *testing.T) {
				y, dx, dw := run(nb)
				for _, v := range []struct {
					name      string
					got, want []float64
				}{{"y", y, y1}, {"dx", dx, dx1}, {"dw", dw, dw1}} {
					for i := range v.want {
						if d := math.Abs(v.got[i] - v.want[i]); !(d <= 1e-12*(1+math.Abs(v.want[i]))) {
							t.Fatalf("%s[%d] = %g, want %g", v.name, i, v.got[i], v.want[i])
						}
					}
				}
			})
		}
	}
}

// TestConvGroup pins how many images one GEMM spans.
func TestConvGroup(t *testing.T) {
	tests := []struct{ n, hw, want int }{{64, 32, 1}, {64, 16, 1}, {64, 8, 4}, {64, 4, 16}, {64, 2, 64}, {3, 2, 3}}
	for _, tt := range tests {
		g := convGeom{n: tt.n, oh: tt.hw, ow: tt.hw}
		if got := g.group(); got != tt.want {
			t.Errorf("n=%d %d×%d: group() = %d, want %d", tt.n, tt.hw, tt.hw, got, tt.want)
		}
	}
}

package layers

import (
	"fmt"
	"math"
	"testing"
)

// geom is c's convolution geometry, as convGeometry derives it.
func (c convCase) geom() convGeom {
	g := convGeom{
		n: c.x[0], c: c.x[1], h: c.x[2], w: c.x[3],
		o: c.w[0], kh: c.w[2], kw: c.w[3], stride: c.stride, pad: c.padding,
	}
	g.oh = (g.h+2*g.pad-g.kh)/g.stride + 1
	g.ow = (g.w+2*g.pad-g.kw)/g.stride + 1
	return g
}

// TestConvGrouped checks that multiplying several images per GEMM gives
// what one image per GEMM gives, in all three convolution kernels, with a
// last group shorter than the others.
func TestConvGrouped(t *testing.T) {
	cases := append([]convCase{
		{x: []int{5, 3, 4, 4}, w: []int{6, 3, 3, 3}, stride: 1, padding: 1},
		{x: []int{5, 4, 3, 3}, w: []int{2, 4, 1, 1}, stride: 1, padding: 0},
	}, convCases...)
	for _, c := range cases {
		g, in := c.geom(), c.inputs()
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
			convForward(nil, g, nb, y, x, w, b)
			convGradInput(nil, g, nb, dx, w, dy)
			convGradWeight(nil, g, nb, dw, x, dy)
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

// TestConvPacked checks the float32 forward, whose im2col is packed
// straight into the GEMM's panels (convPacker), and the float32 weight
// gradient against the float64 im2col path, per image and grouped, on
// shapes that span several GEMM blocks (C·kH·kW > 256 rows, more than 512
// columns) and strides 1 and 2.
func TestConvPacked(t *testing.T) {
	cases := append([]convCase{
		{x: []int{3, 40, 9, 7}, w: []int{5, 40, 3, 3}, stride: 1, padding: 1, bias: true},
		{x: []int{2, 8, 30, 30}, w: []int{9, 8, 3, 3}, stride: 2, padding: 1},
		{x: []int{1, 4, 40, 40}, w: []int{17, 4, 3, 3}, stride: 1, padding: 1},
		{x: []int{4, 3, 6, 6}, w: []int{8, 3, 5, 5}, stride: 1, padding: 2, bias: true},
	}, convCases...)
	for _, c := range cases {
		g, in := c.geom(), c.inputs()
		x, w := data[float64](in[0]), data[float64](in[1])
		var b []float64
		if c.bias {
			b = data[float64](in[2])
		}
		want := make([]float64, g.n*g.o*g.ohw())
		convForward(nil, g, 1, want, x, w, b)
		dy := randDense(4, g.n, g.o, g.oh, g.ow)
		wantDW := make([]float64, len(w))
		convGradWeight(nil, g, 1, wantDW, x, data[float64](dy))
		dy32 := data[float32](toFloat32(dy))
		x32, w32, b32 := data[float32](toFloat32(in[0])), data[float32](toFloat32(in[1])), []float32(nil)
		if c.bias {
			b32 = data[float32](toFloat32(in[2]))
		}
		for _, nb := range []int{1, 2, g.n} {
			t.Run(fmt.Sprintf("%v/nb=%d", c, nb), func(t *testing.T) {
				got := make([]float32, len(want))
				for i := range got {
					got[i] = float32(math.NaN()) // must be overwritten
				}
				convForward(nil, g, nb, got, x32, w32, b32)
				for i, v := range want {
					if d := math.Abs(float64(got[i]) - v); !(d <= 1e-5*(1+math.Abs(v))) {
						t.Fatalf("y[%d] = %g, want %g", i, got[i], v)
					}
				}
				gotDW := make([]float32, len(wantDW))
				for i := range gotDW {
					gotDW[i] = float32(math.NaN()) // must be overwritten
				}
				convGradWeight(nil, g, nb, gotDW, x32, dy32)
				for i, v := range wantDW {
					if d := math.Abs(float64(gotDW[i]) - v); !(d <= 1e-5*(1+math.Abs(v))) {
						t.Fatalf("dw[%d] = %g, want %g", i, gotDW[i], v)
					}
				}
			})
		}
	}
}

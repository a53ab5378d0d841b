package layers

import (
	"fmt"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var adaptiveCases = []struct{ h, w, outH, outW int }{
	{4, 4, 2, 2},
	{5, 7, 3, 2},
	{1, 1, 7, 7},
	{2, 2, 7, 7},
	{3, 3, 3, 3},
}

func TestAdaptiveAvgPool2dGradient(t *testing.T) {
	for _, tc := range adaptiveCases {
		t.Run(fmt.Sprintf("%dx%d-%dx%d", tc.h, tc.w, tc.outH, tc.outW), func(t *testing.T) {
			x := randDense(11, 2, 3, tc.h, tc.w)
			gradCheck(t, func(xs []*G.Node) (*G.Node, error) {
				return AdaptiveAvgPool2d(xs[0], tc.outH, tc.outW)
			}, []*tensor.Dense{x}, []int{0}, 1e-6)
		})
	}
}

// adaptiveRun builds and runs AdaptiveAvgPool2d once on x.
func adaptiveRun(t *testing.T, x *tensor.Dense, outH, outW int) *tensor.Dense {
	t.Helper()
	return runForward(t, func(xs []*G.Node) (*G.Node, error) { return AdaptiveAvgPool2d(xs[0], outH, outW) }, x)
}

func TestAdaptiveAvgPool2dForward(t *testing.T) {
	for _, tc := range adaptiveCases {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(fmt.Sprintf("%dx%d-%dx%d-%v", tc.h, tc.w, tc.outH, tc.outW, dt), func(t *testing.T) {
				x64 := randDense(12, 2, 3, tc.h, tc.w)
				x := bnCast(x64, dt)
				xv := bnLoad(x)
				got := bnLoad(adaptiveRun(t, x, tc.outH, tc.outW))
				// PyTorch's definition, written with floating-point floor and ceil.
				var want []float64
				for p := range 6 {
					for i := range tc.outH {
						for j := range tc.outW {
							r0 := int(math.Floor(float64(i*tc.h) / float64(tc.outH)))
							r1 := int(math.Ceil(float64((i+1)*tc.h) / float64(tc.outH)))
							c0 := int(math.Floor(float64(j*tc.w) / float64(tc.outW)))
							c1 := int(math.Ceil(float64((j+1)*tc.w) / float64(tc.outW)))
							sum := 0.0
							for r := r0; r < r1; r++ {
								for c := c0; c < c1; c++ {
									sum += xv[p*tc.h*tc.w+r*tc.w+c]
								}
							}
							want = append(want, sum/float64((r1-r0)*(c1-c0)))
						}
					}
				}
				bnAssertClose(t, "y", got, want, map[tensor.Dtype]float64{tensor.Float64: 1e-15, tensor.Float32: 1e-7}[dt])
			})
		}
	}
}

func TestAdaptiveAvgPool2dByHand(t *testing.T) {
	// 4×4 ramp 0..15 → 2×2: the means of the four 2×2 quadrants.
	ramp := make([]float64, 16)
	for i := range ramp {
		ramp[i] = float64(i)
	}
	got := data[float64](adaptiveRun(t, tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking(ramp)), 2, 2))
	want := []float64{2.5, 4.5, 10.5, 12.5}
	bnAssertClose(t, "4×4 → 2×2", got, want, 0)

	// 1×1 → 7×7 repeats the single value.
	got = data[float64](adaptiveRun(t, tensor.New(tensor.WithShape(1, 2, 1, 1), tensor.WithBacking([]float64{3, -1})), 7, 7))
	for i, v := range got {
		if want := []float64{3, -1}[i/49]; v != want {
			t.Fatalf("1×1 → 7×7 element %d: got %g, want %g", i, v, want)
		}
	}
}

func TestAdaptiveAvgPool2dBuildErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(1, 2, 3, 3), G.WithName("x"))
	m := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 3), G.WithName("m"))
	for _, tc := range []struct {
		name       string
		x          *G.Node
		outH, outW int
		want       string
	}{
		{"rank 2", m, 2, 2, "want (N, C, H, W)"},
		{"zero height", x, 0, 2, "want both ≥ 1"},
		{"negative width", x, 2, -1, "want both ≥ 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AdaptiveAvgPool2d(tc.x, tc.outH, tc.outW)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAdaptiveAvgPool2dFloat32(t *testing.T) {
	for _, tc := range adaptiveCases {
		float32Parity(t, func(xs []*G.Node) (*G.Node, error) {
			return AdaptiveAvgPool2d(xs[0], tc.outH, tc.outW)
		}, []*tensor.Dense{randDense(34, 2, 3, tc.h, tc.w)}, []int{0}, 1e-6)
	}
}

package layers

import (
	"fmt"
	"math"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// wgCases are 3×3 stride-1 padding-1 convolutions for the Winograd tests:
// channels from 1 to 70, maps odd and even down to 1×1, batches 1 to 5.
var wgCases = []struct{ n, c, o, h, w int }{
	{1, 1, 1, 1, 1},
	{2, 3, 2, 2, 2},
	{1, 2, 5, 3, 5},
	{3, 7, 4, 5, 3},
	{5, 16, 16, 4, 4},
	{2, 17, 33, 7, 9},
	{1, 70, 1, 6, 6},
	{1, 1, 70, 8, 8},
	{4, 64, 70, 2, 2},
	{3, 70, 64, 1, 1},
	{2, 32, 48, 16, 16},
	{1, 20, 24, 33, 31},
	{5, 40, 40, 11, 12},
}

// wgRelErr returns max|got − want| / max|want|.
func wgRelErr(got []float32, want []float64) float64 {
	var diff, scale float64
	for i, v := range want {
		diff = math.Max(diff, math.Abs(float64(got[i])-v))
		scale = math.Max(scale, math.Abs(v))
	}
	return diff / scale
}

// TestWinograd checks the Winograd forward pass (with and without a bias)
// and input gradient, F(2×2, 3×3) and F(4×4, 3×3), against the float64
// direct path within 1e-4 of the result's largest element, and reports
// the float32 direct path's error beside it. The shapes run one after
// another on the shared scratch buffers, larger and smaller in turn.
func TestWinograd(t *testing.T) {
	const tol = 1e-4
	for _, c := range wgCases {
		g := convGeom{n: c.n, c: c.c, h: c.h, w: c.w, o: c.o, kh: 3, kw: 3, stride: 1, pad: 1, oh: c.h, ow: c.w}
		x, w := randDense(1, g.n, g.c, g.h, g.w), randDense(2, g.o, g.c, 3, 3)
		b, dy := randDense(3, g.o), randDense(4, g.n, g.o, g.h, g.w)
		x32, w32, b32, dy32 := data[float32](toFloat32(x)), data[float32](toFloat32(w)), data[float32](toFloat32(b)), data[float32](toFloat32(dy))
		wantDX := make([]float64, g.n*g.c*g.h*g.w)
		convGradInput(nil, g, 1, wantDX, data[float64](w), data[float64](dy))
		directDX := make([]float32, len(wantDX))
		convGradInput(nil, g, g.group(), directDX, w32, dy32)
		for _, alg := range []wgAlg{wgF2, wgF4} {
			name := fmt.Sprintf("%v/F%d", g, alg.m)
			for _, bias := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/bias=%t", name, bias), func(t *testing.T) {
					var b64 []float64
					var bw []float32
					if bias {
						b64, bw = data[float64](b), b32
					}
					want := make([]float64, g.n*g.o*g.h*g.w)
					convForward(nil, g, 1, want, data[float64](x), data[float64](w), b64)
					got := wgNaN(len(want))
					winogradConv(g, alg, got, x32, w32, bw, false)
					direct := make([]float32, len(want))
					convForward(nil, g, g.group(), direct, x32, w32, bw)
					e, ed := wgRelErr(got, want), wgRelErr(direct, want)
					if !(e <= tol) {
						t.Errorf("forward: max|diff|/max|ref| = %.3g, want ≤ %g (direct float32: %.3g)", e, tol, ed)
					}
					t.Logf("forward: Winograd %.3g, direct float32 %.3g", e, ed)
				})
			}
			t.Run(name+"/dx", func(t *testing.T) {
				got := wgNaN(len(wantDX))
				winogradConv(g, alg, got, dy32, w32, nil, true)
				e, ed := wgRelErr(got, wantDX), wgRelErr(directDX, wantDX)
				if !(e <= tol) {
					t.Errorf("input gradient: max|diff|/max|ref| = %.3g, want ≤ %g (direct float32: %.3g)", e, tol, ed)
				}
				t.Logf("input gradient: Winograd %.3g, direct float32 %.3g", e, ed)
			})
		}
	}
}

// wgNaN returns n NaNs: a result buffer that must be fully overwritten.
func wgNaN(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return v
}

// TestWinogradChosen pins which convolutions run on Winograd, and on
// which algorithm.
func TestWinogradChosen(t *testing.T) {
	tests := []struct {
		name string
		g    convGeom
		want bool
	}{
		{"vgg 64→64 32×32", convGeom{c: 64, o: 64, h: 32, w: 32, kh: 3, kw: 3, stride: 1, pad: 1}, true},
		{"vgg 512→512 2×2", convGeom{c: 512, o: 512, h: 2, w: 2, kh: 3, kw: 3, stride: 1, pad: 1}, true},
		{"vgg first layer 3→64", convGeom{c: 3, o: 64, h: 32, w: 32, kh: 3, kw: 3, stride: 1, pad: 1}, false},
		{"stride 2", convGeom{c: 64, o: 64, h: 32, w: 32, kh: 3, kw: 3, stride: 2, pad: 1}, false},
		{"padding 0", convGeom{c: 64, o: 64, h: 32, w: 32, kh: 3, kw: 3, stride: 1, pad: 0}, false},
		{"1×1 kernel", convGeom{c: 64, o: 64, h: 32, w: 32, kh: 1, kw: 1, stride: 1, pad: 0}, false},
	}
	defer func(old bool) { convDirect = old }(convDirect)
	convDirect = false // whatever ZOO_CONV says
	for _, tt := range tests {
		if got := tt.g.winograd(); got != tt.want {
			t.Errorf("%s: winograd() = %t, want %t", tt.name, got, tt.want)
		}
	}
	defer func(old bool) { wgF4On = old }(wgF4On)
	for _, on := range []bool{false, true} {
		wgF4On = on
		for _, hw := range []int{2, 4, 8, 16, 32} {
			want := 2
			if on && hw >= 8 {
				want = 4
			}
			if got := (convGeom{h: hw, w: hw}).wgAlg().m; got != want {
				t.Errorf("wgF4On %t, %d×%d map: F(%d×%d), want F(%d×%d)", on, hw, hw, got, got, want, want)
			}
		}
	}
}

// TestWinogradConcurrent runs two Winograd convolutions at once (one on
// the shared scratch, the other on its own) and checks both against a run
// alone.
func TestWinogradConcurrent(t *testing.T) {
	g := convGeom{n: 2, c: 20, h: 9, w: 10, o: 18, kh: 3, kw: 3, stride: 1, pad: 1, oh: 9, ow: 10}
	x := data[float32](toFloat32(randDense(1, g.n, g.c, g.h, g.w)))
	w := data[float32](toFloat32(randDense(2, g.o, g.c, 3, 3)))
	want := make([]float32, g.n*g.o*g.h*g.w)
	winogradConv(g, wgF2, want, x, w, nil, false)
	got := [4][]float32{}
	var wg sync.WaitGroup
	for i := range got {
		got[i] = wgNaN(len(want))
		wg.Go(func() { winogradConv(g, wgF2, got[i], x, w, nil, false) })
	}
	wg.Wait()
	for i := range got {
		for j, v := range want {
			if got[i][j] != v {
				t.Fatalf("run %d: y[%d] = %g, want %g", i, j, got[i][j], v)
			}
		}
	}
}

// TestWinogradOps runs the float32 Conv2d graph (forward and every
// gradient) on Winograd and on the direct path (convDirect) and checks
// that the results agree within 1e-4 of the largest element.
func TestWinogradOps(t *testing.T) {
	const n, c, o, hw = 3, 24, 20, 7
	run := func(direct bool) []*tensor.Dense {
		defer func(old bool) { convDirect = old }(convDirect)
		convDirect = direct
		g := G.NewGraph()
		x := G.NodeFromAny(g, toFloat32(randDense(1, n, c, hw, hw)), G.WithName("x"))
		w := G.NodeFromAny(g, toFloat32(randDense(2, o, c, 3, 3)), G.WithName("w"))
		b := G.NodeFromAny(g, toFloat32(randDense(3, o)), G.WithName("b"))
		y, err := Conv2d(x, w, b, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		// A weighted sum, so that dy is not constant.
		r := G.NodeFromAny(g, toFloat32(randDense(4, n, o, hw, hw)), G.WithName("r"))
		grads, err := G.Grad(G.Must(G.Sum(G.Must(G.HadamardProd(y, r)))), x, w, b)
		if err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		out := []*tensor.Dense{y.Value().(*tensor.Dense).Clone().(*tensor.Dense)}
		for _, gr := range grads {
			out = append(out, gr.Value().(*tensor.Dense).Clone().(*tensor.Dense))
		}
		return out
	}
	got, want := run(false), run(true)
	for i, name := range []string{"y", "dx", "dw", "db"} {
		w64 := toFloat64s(want[i])
		if e := wgRelErr(data[float32](got[i]), w64); !(e <= 1e-4) {
			t.Errorf("%s: max|diff|/max|ref| = %.3g, want ≤ 1e-4", name, e)
		}
	}
}

// BenchmarkConvWinograd times the forward pass and the input gradient of
// VGG's 3×3 layers (batch 64, float32) on Winograd and on the direct path,
// in GFLOP/s of the direct path's multiply-adds.
func BenchmarkConvWinograd(b *testing.B) {
	const n = 64
	for _, s := range []struct{ c, o, hw int }{{64, 64, 32}, {128, 128, 16}, {256, 256, 8}, {512, 512, 4}, {512, 512, 2}} {
		g := convGeom{n: n, c: s.c, h: s.hw, w: s.hw, o: s.o, kh: 3, kw: 3, stride: 1, pad: 1, oh: s.hw, ow: s.hw}
		x := data[float32](toFloat32(randDense(1, n, s.c, s.hw, s.hw)))
		w := data[float32](toFloat32(randDense(2, s.o, s.c, 3, 3)))
		y := make([]float32, n*s.o*s.hw*s.hw)
		flops := 2 * float64(n*s.o*s.c*9*s.hw*s.hw)
		for _, alg := range []string{"direct", "winograd"} {
			b.Run(fmt.Sprintf("%d-%d_%dx%d/%s/forward", s.c, s.o, s.hw, s.hw, alg), func(b *testing.B) {
				for b.Loop() {
					if alg == "direct" {
						convForward(nil, g, g.group(), y, x, w, nil)
						continue
					}
					winogradConv(g, g.wgAlg(), y, x, w, nil, false)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			b.Run(fmt.Sprintf("%d-%d_%dx%d/%s/dx", s.c, s.o, s.hw, s.hw, alg), func(b *testing.B) {
				for b.Loop() {
					if alg == "direct" {
						convGradInput(nil, g, g.group(), x, w, y)
						continue
					}
					winogradConv(g, g.wgAlg(), x, y, w, nil, true)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

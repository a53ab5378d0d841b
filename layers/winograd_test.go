package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// wgCases are 3×3 stride-1 padding-1 convolutions for the Winograd tests:
// channels from 1 to 70, maps odd and even from 1×1 to 33×31 (tile rows
// transformed whole from 16 columns on AVX-512, from 8 in Go), batches 1
// to 5.
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
	{2, 16, 17, 32, 32},
	{3, 16, 16, 17, 31},
	{2, 18, 16, 16, 33},
	{4, 16, 20, 7, 7},
	{3, 20, 16, 5, 6},
	// VGG's shapes at batch 8: several tile blocks (wgBlock), cut mid-row.
	{8, 64, 64, 32, 32},
	{8, 128, 128, 16, 16},
	{8, 256, 256, 8, 8},
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

// wgKernelCases are blocks of tiles for TestWinogradKernels: maps 1×1 to
// 33×33, every block either whole images or cut mid-row (first tile
// first, count cnt; cnt 0 means to the last tile).
var wgKernelCases = []struct{ n, c, h, w, first, cnt int }{
	{2, 3, 1, 1, 0, 0},
	{3, 2, 2, 2, 1, 2},
	{2, 5, 3, 3, 0, 0},
	{4, 17, 4, 4, 3, 13},
	{3, 2, 5, 7, 5, 0},
	{2, 3, 6, 6, 0, 0},
	{3, 4, 7, 7, 2, 33},
	{2, 3, 8, 8, 0, 0},
	{3, 2, 9, 15, 7, 0},
	{2, 3, 16, 16, 0, 0},
	{3, 3, 16, 16, 5, 150},
	{2, 2, 17, 17, 0, 0},
	{2, 3, 15, 18, 3, 70},
	{2, 2, 32, 32, 0, 0},
	{3, 2, 31, 33, 20, 400},
	{2, 2, 33, 47, 0, 0},
}

// TestWinogradKernels checks F(2×2, 3×3)'s transforms as wgConv and the
// weight gradient call them (whole rows, gathers, scatters, tile by tile;
// AVX-512 and Go) against the one-tile Go code (wgInTile, wgOutTile), bit
// for bit, on random data; also that nothing outside the block's tiles is
// written. The filter transform's kernel is checked against wgFilterGo.
func TestWinogradKernels(t *testing.T) {
	defer func(old bool) { wgAVX512 = old }(wgAVX512)
	asm := []bool{false}
	if wgAVX512 {
		asm = append(asm, true)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		return v
	}
	for _, tc := range wgKernelCases {
		h, w, c := tc.h, tc.w, tc.c
		tiles := tc.n * ((h + 1) / 2) * ((w + 1) / 2)
		cnt := tc.cnt
		if cnt == 0 {
			cnt = tiles - tc.first
		}
		ts := make([]wgTile, cnt)
		wgTiles(ts, tc.first, 2, c, c, h, w)
		ld := cnt + 3
		plane := c*ld + 5
		x, m, b := random(tc.n*c*h*w), random(16*plane), random(c)
		// The references, tile by tile; channels split in two as wgSplit
		// may.
		wantV, wantY, wantYB := wgNaN(16*plane), wgNaN(len(x)), wgNaN(len(x))
		for ch := range c {
			for k, tl := range ts {
				wgInTile(wantV[ch*ld+k:], x[tl.in+ch*h*w:][:h*w], tl, h, w, plane)
				wgOutTile(wantY[tl.out+ch*h*w:], m[ch*ld+k:], tl, h, w, plane, 0)
				wgOutTile(wantYB[tl.out+ch*h*w:], m[ch*ld+k:], tl, h, w, plane, b[ch])
			}
		}
		for _, on := range asm {
			wgAVX512 = on
			t.Run(fmt.Sprintf("n=%d,c=%d,%dx%d,tiles=%d+%d/avx512=%t", tc.n, c, h, w, tc.first, cnt, on), func(t *testing.T) {
				v, y, yb := wgNaN(16*plane), wgNaN(len(x)), wgNaN(len(x))
				for _, r := range [][2]int{{0, c / 2}, {c / 2, c}} {
					wgInput(v, x, ts, r[0], r[1], h, w, ld, plane)
					wgOutput(y, m, ts, r[0], r[1], h, w, ld, plane, nil)
					wgOutput(yb, m, ts, r[0], r[1], h, w, ld, plane, b)
				}
				wgSame(t, "v", v, wantV)
				wgSame(t, "y", y, wantY)
				wgSame(t, "y with bias", yb, wantYB)
			})
		}
	}
	for _, s := range []struct{ o, c int }{{1, 1}, {3, 5}, {2, 16}, {4, 17}, {5, 40}, {3, 64}} {
		w := random(s.o * s.c * 9)
		want := wgNaN(16 * s.o * s.c)
		wgFilterGo(want, w, s.o, s.c, 0, s.o)
		for _, on := range asm {
			wgAVX512 = on
			got := wgNaN(len(want))
			if !wgFilterRows(got, w, s.o, s.c, 0, 1) {
				wgFilterGo(got, w, s.o, s.c, 0, 1)
			}
			if !wgFilterRows(got, w, s.o, s.c, 1, s.o) {
				wgFilterGo(got, w, s.o, s.c, 1, s.o)
			}
			t.Run(fmt.Sprintf("filter/o=%d,c=%d/avx512=%t", s.o, s.c, on), func(t *testing.T) { wgSame(t, "u", got, want) })
		}
	}
}

// TestWinogradKernels4 checks F(4×4, 3×3)'s input and output transforms
// as wgConv calls them (whole rows, AVX-512 and Go; tile by tile) against
// the one-tile Go code (wgInTile4, wgOutTile4), bit for bit, on the blocks
// of wgKernelCases; also that nothing outside the block's tiles is
// written.
func TestWinogradKernels4(t *testing.T) {
	defer func(old bool) { wgAVX512 = old }(wgAVX512)
	asm := []bool{false}
	if wgAVX512 {
		asm = append(asm, true)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		return v
	}
	cases := append(wgKernelCases[:len(wgKernelCases):len(wgKernelCases)],
		struct{ n, c, h, w, first, cnt int }{3, 3, 64, 65, 10, 500},
		struct{ n, c, h, w, first, cnt int }{2, 2, 14, 70, 0, 0},
		struct{ n, c, h, w, first, cnt int }{3, 3, 30, 29, 3, 0},
		struct{ n, c, h, w, first, cnt int }{5, 2, 10, 13, 1, 40})
	for _, tc := range cases {
		h, w, c := tc.h, tc.w, tc.c
		tiles := tc.n * ((h + 3) / 4) * ((w + 3) / 4)
		first := min(tc.first, tiles-1)
		cnt := tc.cnt
		if cnt == 0 || first+cnt > tiles {
			cnt = tiles - first
		}
		ts := make([]wgTile, cnt)
		wgTiles(ts, first, 4, c, c, h, w)
		ld := cnt + 3
		plane := c*ld + 5
		x, m, b := random(tc.n*c*h*w), random(36*plane), random(c)
		wantV, wantY, wantYB := wgNaN(36*plane), wgNaN(len(x)), wgNaN(len(x))
		for ch := range c {
			for k, tl := range ts {
				rows, cols := min(4, h-tl.y0-1), min(4, w-tl.x0-1)
				wgInTile4(wantV[ch*ld+k:], x[tl.in+ch*h*w:][:h*w], tl, h, w, plane)
				wgOutTile4(wantY[tl.out+ch*h*w:], m[ch*ld+k:], rows, cols, w, plane, 0)
				wgOutTile4(wantYB[tl.out+ch*h*w:], m[ch*ld+k:], rows, cols, w, plane, b[ch])
			}
		}
		for _, on := range asm {
			wgAVX512 = on
			t.Run(fmt.Sprintf("n=%d,c=%d,%dx%d,tiles=%d+%d/avx512=%t", tc.n, c, h, w, first, cnt, on), func(t *testing.T) {
				v, y, yb := wgNaN(36*plane), wgNaN(len(x)), wgNaN(len(x))
				for _, r := range [][2]int{{0, c / 2}, {c / 2, c}} {
					wgInput4(v, x, ts, r[0], r[1], h, w, ld, plane)
					wgOutput4(y, m, ts, r[0], r[1], h, w, ld, plane, nil)
					wgOutput4(yb, m, ts, r[0], r[1], h, w, ld, plane, b)
				}
				wgSame(t, "v", v, wantV)
				wgSame(t, "y", y, wantY)
				wgSame(t, "y with bias", yb, wantYB)
			})
		}
	}
}

// TestWinogradFilter4 checks F(4×4, 3×3)'s filter transform kernel
// (wgFilter4Rows), plain and rotated, against wgFilter4Go bit for bit,
// the output channels split in two as wgSplit may.
func TestWinogradFilter4(t *testing.T) {
	defer func(old bool) { wgAVX512 = old }(wgAVX512)
	asm := []bool{false}
	if wgAVX512 {
		asm = append(asm, true)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range []struct{ o, c int }{{1, 1}, {3, 5}, {2, 16}, {4, 17}, {5, 40}, {3, 64}} {
		w := make([]float32, s.o*s.c*9)
		for i := range w {
			w[i] = rng.Float32()*2 - 1
		}
		for _, rotate := range []bool{false, true} {
			want := wgNaN(36 * s.o * s.c)
			wgFilter4Go(want, w, s.o, s.c, 0, s.o, rotate)
			for _, on := range asm {
				wgAVX512 = on
				got := wgNaN(len(want))
				for _, r := range [][2]int{{0, 1}, {1, s.o}} {
					if !wgFilter4Rows(got, w, s.o, s.c, r[0], r[1], rotate) {
						wgFilter4Go(got, w, s.o, s.c, r[0], r[1], rotate)
					}
				}
				t.Run(fmt.Sprintf("o=%d,c=%d,rotate=%t/avx512=%t", s.o, s.c, rotate, on), func(t *testing.T) { wgSame(t, "u", got, want) })
			}
		}
	}
}

// wgSame fails t unless got and want hold the same bits (NaNs included).
func wgSame(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %g, want %g", what, i, got[i], want[i])
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
	defer func(on bool, min int) { wgF4On, wgF4MinSide = on, min }(wgF4On, wgF4MinSide)
	for _, tc := range []struct {
		conv string
		f4   int // the smallest map side on F(4×4)
	}{{"", 16}, {"f4", 8}, {"f2", 0}} {
		wgF4On, wgF4MinSide = tc.conv != "f2", wgF4Min(tc.conv)
		for _, hw := range []int{2, 4, 8, 16, 32} {
			want := 2
			if tc.f4 > 0 && hw >= tc.f4 {
				want = 4
			}
			if got := (convGeom{h: hw, w: hw}).wgAlg().m; got != want {
				t.Errorf("ZOO_CONV=%q, %d×%d map: F(%d×%d), want F(%d×%d)", tc.conv, hw, hw, got, got, want, want)
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

// BenchmarkWinogradTransforms times the tile transforms alone on VGG's
// 3×3 layers (batch 64, as many channels in as out), over the whole batch
// in wgConv's blocks of tiles: the input and output transforms (in ns per
// tile and channel) and the filter transform, of F(2×2, 3×3) and (under
// f4/) F(4×4, 3×3).
func BenchmarkWinogradTransforms(b *testing.B) {
	const n = 64
	for _, s := range []struct{ c, hw int }{{64, 32}, {128, 16}, {256, 8}, {512, 4}, {512, 2}} {
		for _, alg := range []wgAlg{wgF2, wgF4} {
			g := convGeom{n: n, c: s.c, h: s.hw, w: s.hw, o: s.c}
			tw := (s.hw + alg.m - 1) / alg.m
			tiles := n * tw * tw
			blocks := (tiles + wgBlock(g.c, g.o, alg.planes) - 1) / wgBlock(g.c, g.o, alg.planes)
			tb := (tiles + blocks - 1) / blocks
			ts := make([]wgTile, tb)
			x := data[float32](toFloat32(randDense(1, n, s.c, s.hw, s.hw)))
			w := data[float32](toFloat32(randDense(2, s.c, s.c, 3, 3)))
			y := make([]float32, len(x))
			plane := s.c*tb + 16
			v, u := make([]float32, alg.planes*plane), make([]float32, alg.planes*s.c*s.c)
			name := fmt.Sprintf("%d_%dx%d", s.c, s.hw, s.hw)
			if alg.m == 4 {
				name += "/f4"
			}
			// each runs fn on every block of tiles.
			each := func(fn func(ts []wgTile)) {
				for t0 := 0; t0 < tiles; t0 += tb {
					cnt := min(tb, tiles-t0)
					wgTiles(ts[:cnt], t0, alg.m, g.c, g.o, g.h, g.w)
					fn(ts[:cnt])
				}
			}
			b.Run(name+"/input", func(b *testing.B) {
				for b.Loop() {
					each(func(ts []wgTile) { alg.input(v, x, ts, 0, g.c, g.h, g.w, tb, plane) })
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tiles*g.c), "ns/tile")
			})
			b.Run(name+"/output", func(b *testing.B) {
				for b.Loop() {
					each(func(ts []wgTile) { alg.output(y, v, ts, 0, g.o, g.h, g.w, tb, plane, w) })
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tiles*g.o), "ns/tile")
			})
			b.Run(name+"/filter", func(b *testing.B) {
				for b.Loop() {
					if alg.m == 2 {
						wgFilter(u, w, g.o, g.c)
						continue
					}
					wgFilter4(u, w, g.o, g.c, false)
				}
			})
		}
	}
}

package layers

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

// wgDWCases are 3×3 stride-1 padding-1 convolutions for the Winograd
// weight gradient tests: batches 1 to 4, 16 to 70 channels (and a few
// under 16, which Conv2d leaves on the direct path), maps odd and even
// from 1×1 to 32×32 (whole, half and single tiles at the right and bottom
// edges). Larger and smaller shapes alternate, so that each runs on
// scratch left by a larger one.
var wgDWCases = []struct{ n, c, o, h, w int }{
	{1, 1, 1, 1, 1},
	{2, 3, 5, 5, 7},
	{1, 16, 16, 1, 1},
	{2, 16, 17, 2, 2},
	{3, 17, 16, 3, 3},
	{1, 32, 24, 4, 4},
	{4, 20, 33, 5, 7},
	{2, 16, 16, 7, 5},
	{4, 64, 70, 2, 2},
	{3, 70, 64, 1, 1},
	{2, 24, 40, 8, 8},
	{1, 16, 16, 32, 32},
	{2, 33, 17, 9, 3},
	{1, 40, 48, 32, 32},
	{4, 16, 16, 3, 3},
	// VGG's shapes at batch 8: several tile blocks, cut mid-row.
	{8, 64, 64, 32, 32},
	{8, 128, 128, 16, 16},
}

// TestWinogradGradWeight checks the Winograd weight gradient against the
// float64 direct path within 1e-4 of the result's largest element, and
// reports the float32 direct path's error beside it.
func TestWinogradGradWeight(t *testing.T) {
	const tol = 1e-4
	for i, c := range wgDWCases {
		g := convGeom{n: c.n, c: c.c, h: c.h, w: c.w, o: c.o, kh: 3, kw: 3, stride: 1, pad: 1, oh: c.h, ow: c.w}
		t.Run(g.String(), func(t *testing.T) {
			x, dy := randDense(uint64(10+i), g.n, g.c, g.h, g.w), randDense(uint64(50+i), g.n, g.o, g.h, g.w)
			x32, dy32 := data[float32](toFloat32(x)), data[float32](toFloat32(dy))
			want := make([]float64, g.o*g.c*9)
			convGradWeight(nil, g, 1, want, data[float64](x), data[float64](dy))
			direct := make([]float32, len(want))
			convGradWeight(nil, g, g.group(), direct, x32, dy32)
			got := wgNaN(len(want))
			winogradGradWeight(g, got, x32, dy32)
			e, ed := wgRelErr(got, want), wgRelErr(direct, want)
			if !(e <= tol) {
				t.Errorf("weight gradient: max|diff|/max|ref| = %.3g, want ≤ %g (direct float32: %.3g)", e, tol, ed)
			}
			t.Logf("weight gradient: Winograd %.3g, direct float32 %.3g", e, ed)
		})
	}
}

// TestWinogradGradWeightZeros checks that on sparse maps the Winograd
// weight gradient is exactly 0 where the float64 direct path is, and only
// there: Adam would turn noise in place of a 0 into a full step. The maps
// are ReLU-like (70% zeros), or with dead input channels (from channel 4
// on, one nonzero pixel in the last image), whose checks go past
// wgQuickChecks to the masks. With dense dy (BatchNorm's gradient: no
// zero), x is sparse and wgZeroUnmet answers by xTaps, on small maps from
// the first element, on a 32×32 one after the first check that quick
// leaves open. deadDy zeroes dy's channels from 3 on but for one pixel,
// and its channel 1 whole, whose row of dW must come out 0.
func TestWinogradGradWeightZeros(t *testing.T) {
	for i, c := range []struct {
		n, c, o, h, w         int
		dead, denseDy, deadDy bool
	}{
		{2, 16, 16, 1, 1, false, false, false},
		{1, 32, 32, 2, 2, false, false, false},
		{2, 16, 24, 2, 2, false, false, false},
		{1, 16, 16, 3, 3, false, false, false},
		{2, 32, 16, 4, 4, false, false, false},
		{1, 16, 16, 5, 7, false, false, false},
		{4, 16, 16, 2, 2, true, false, false},
		{3, 16, 20, 9, 11, true, false, false},
		{2, 16, 16, 32, 32, true, false, false},
		{8, 64, 32, 2, 2, false, true, false},
		{4, 48, 16, 1, 1, false, true, false},
		{2, 32, 16, 4, 4, true, true, false},
		{2, 32, 16, 3, 5, false, true, false},
		{5, 16, 16, 32, 32, true, true, false},
		{4, 16, 16, 2, 2, true, false, true},
		{2, 32, 16, 4, 4, false, false, true},
	} {
		g := convGeom{n: c.n, c: c.c, h: c.h, w: c.w, o: c.o, kh: 3, kw: 3, stride: 1, pad: 1, oh: c.h, ow: c.w}
		t.Run(fmt.Sprintf("%v/dead=%t/denseDy=%t/deadDy=%t", g, c.dead, c.denseDy, c.deadDy), func(t *testing.T) {
			x, dy := wgSparse(randDense(uint64(100+i), g.n, g.c, g.h, g.w)), randDense(uint64(200+i), g.n, g.o, g.h, g.w)
			if !c.denseDy {
				dy = wgSparse(dy)
			}
			hw := g.h * g.w
			if c.dead {
				x = randDense(uint64(100+i), g.n, g.c, g.h, g.w)
				for k, v := range data[float64](x) {
					if img, ch, px := k/(g.c*hw), k/hw%g.c, k%hw; ch >= 4 && (img != g.n-1 || px != hw/2) {
						v = 0
					}
					data[float64](x)[k] = v
				}
			}
			if c.deadDy {
				for k := range data[float64](dy) {
					if img, ch, px := k/(g.o*hw), k/hw%g.o, k%hw; ch == 1 || ch >= 3 && (img != 0 || px != 0) {
						data[float64](dy)[k] = 0
					}
				}
			}
			want := make([]float64, g.o*g.c*9)
			convGradWeight(nil, g, 1, want, data[float64](x), data[float64](dy))
			got := wgNaN(len(want))
			winogradGradWeight(g, got, data[float32](toFloat32(x)), data[float32](toFloat32(dy)))
			zeros, wrong := 0, 0
			for j, w := range want {
				if w == 0 {
					zeros++
				}
				if (w == 0) != (got[j] == 0) {
					wrong++
				}
			}
			if zeros == 0 || zeros == len(want) {
				t.Fatalf("%d of %d exact zeros in the direct gradient: pick another case", zeros, len(want))
			}
			if wrong > 0 {
				t.Errorf("%d elements of %d are 0 in one of Winograd and direct only (%d zeros in direct)", wrong, len(want), zeros)
			}
			if c.deadDy && slices.ContainsFunc(got[g.c*9:2*g.c*9], func(v float32) bool { return v != 0 }) {
				t.Errorf("row 1 of dW (dy's channel 1 all 0) has nonzero elements")
			}
			if e := wgRelErr(got, want); !(e <= 1e-4) {
				t.Errorf("max|diff|/max|ref| = %.3g, want ≤ 1e-4", e)
			}
		})
	}
}

// wgSparse zeroes the 70% of d's entries under 0.4 (d is uniform on
// [-1, 1)), like a ReLU's output, and returns d.
func wgSparse(d *tensor.Dense) *tensor.Dense {
	for i, v := range data[float64](d) {
		if v < 0.4 {
			data[float64](d)[i] = 0
		}
	}
	return d
}

// TestWinogradSupport checks wgSupport's masks (meetsMasks, bit shifts
// across words included) and its answer (meets) against a scan of every
// pixel, for every output channel, input channel and tap, on sparse maps
// (the entries of a uniform [-1, 1) under cut zeroed) of 1 to 19 words per
// mask; and dyFull and xTaps, which stand for meets where dy's channel is
// full (the cases with dense dy, dyCut −1), against the same scans.
func TestWinogradSupport(t *testing.T) {
	for i, c := range []struct {
		n, c, o, h, w int
		cut, dyCut    float64
	}{
		{3, 2, 3, 1, 1, 0, 0},
		{2, 3, 2, 2, 2, 0.4, 0.4},
		{2, 2, 3, 5, 7, 0.8, 0.8},
		{3, 3, 2, 9, 11, 0.8, 0.8},
		{2, 2, 2, 14, 3, 0.8, 0.8},
		{1, 2, 2, 32, 32, 0.96, 0.96},
		{3, 3, 2, 1, 1, 0.4, -1},
		{4, 3, 2, 2, 2, 0.9, -1},
		{2, 4, 2, 1, 5, 0.8, -1},
		{2, 4, 3, 3, 3, 0.9, -1},
		{3, 4, 2, 9, 11, 0.99, -1},
	} {
		g := convGeom{n: c.n, c: c.c, h: c.h, w: c.w, o: c.o, kh: 3, kw: 3, stride: 1, pad: 1, oh: c.h, ow: c.w}
		t.Run(g.String(), func(t *testing.T) {
			sparse := func(d *tensor.Dense, cut float64) []float32 {
				for j, v := range data[float64](d) {
					if v < cut {
						data[float64](d)[j] = 0
					}
				}
				return data[float32](toFloat32(d))
			}
			x, dy := sparse(randDense(uint64(300+i), g.n, g.c, g.h, g.w), c.cut), sparse(randDense(uint64(400+i), g.n, g.o, g.h, g.w), c.dyCut)
			s := &wgSupport{g: g, x: x, dy: dy, buf: new([]uint64), taps: make([]uint32, g.c)}
			hw := g.h * g.w
			meetsCount := 0
			for o := range g.o {
				full := !slices.Contains(wgChannel(dy, g.n, g.o, hw, o), 0)
				if got := s.dyFull(o); got != full {
					t.Errorf("o %d: dyFull = %t, want %t", o, got, full)
				}
				for ch := range g.c {
					for a := range 3 {
						for b := range 3 {
							want := false
							for n := range g.n {
								for i := range g.h {
									for j := range g.w {
										ii, jj := i+a-1, j+b-1
										if ii >= 0 && ii < g.h && jj >= 0 && jj < g.w && dy[(n*g.o+o)*hw+i*g.w+j] != 0 && x[(n*g.c+ch)*hw+ii*g.w+jj] != 0 {
											want = true
										}
									}
								}
							}
							if want {
								meetsCount++
							}
							if got := s.meetsMasks(o, ch, a, b); got != want {
								t.Errorf("o %d, c %d, tap (%d, %d): meetsMasks = %t, want %t", o, ch, a, b, got, want)
							}
							if got := s.meets(o, ch, a, b); got != want {
								t.Errorf("o %d, c %d, tap (%d, %d): meets = %t, want %t", o, ch, a, b, got, want)
							}
							if full {
								if got := s.xTaps(ch)&(1<<(3*a+b)) != 0; got != want {
									t.Errorf("o %d (dy full), c %d, tap (%d, %d): xTaps has it %t, want %t", o, ch, a, b, got, want)
								}
							}
						}
					}
				}
			}
			if total := g.o * g.c * 9; meetsCount == 0 || meetsCount == total {
				t.Fatalf("%d of %d sums meet: pick another case", meetsCount, total)
			}
		})
	}
}

// wgChannel returns channel ch of d (n, chans, hw) over all the images.
func wgChannel(d []float32, n, chans, hw, ch int) []float32 {
	var out []float32
	for img := range n {
		out = append(out, d[(img*chans+ch)*hw:][:hw]...)
	}
	return out
}

// TestWinogradGradWeightBlocks checks a weight gradient of many blocks of
// tiles (dU accumulated over them) and one whose scratch is its own
// (wgShared in use) against a single run on the shared scratch: the
// results must be bit-identical.
func TestWinogradGradWeightBlocks(t *testing.T) {
	g := convGeom{n: 2, c: 256, h: 23, w: 25, o: 256, kh: 3, kw: 3, stride: 1, pad: 1, oh: 23, ow: 25}
	if tiles, tb := g.n*12*13, wgBlock(g.c, g.o, 16); tiles < 2*tb+1 {
		t.Fatalf("%d tiles in blocks of %d: want at least 3 blocks", tiles, tb)
	}
	x64, dy64 := randDense(1, g.n, g.c, g.h, g.w), randDense(2, g.n, g.o, g.h, g.w)
	x, dy := data[float32](toFloat32(x64)), data[float32](toFloat32(dy64))
	want := make([]float64, g.o*g.c*9)
	convGradWeight(nil, g, 1, want, data[float64](x64), data[float64](dy64))
	shared := wgNaN(len(want))
	winogradGradWeight(g, shared, x, dy)
	if e := wgRelErr(shared, want); !(e <= 1e-4) {
		t.Errorf("max|diff|/max|ref| = %.3g, want ≤ 1e-4", e)
	}
	wgShared.Lock()
	own := wgNaN(len(want))
	winogradGradWeight(g, own, x, dy)
	wgShared.Unlock()
	if !slices.Equal(own, shared) {
		t.Errorf("own scratch: dw differs from the run on the shared scratch")
	}
}

// TestWinogradGradWeightChosen pins which weight gradients run on
// Winograd: those whose forward pass does, on F(2×2, 3×3) or F(4×4, 3×3);
// none under ZOO_CONV=direct (convDirect).
func TestWinogradGradWeightChosen(t *testing.T) {
	vgg := convGeom{c: 64, o: 64, h: 32, w: 32, kh: 3, kw: 3, stride: 1, pad: 1}
	small := vgg
	small.h, small.w = 4, 4
	first := vgg
	first.c = 3
	narrow := vgg
	narrow.o = 15
	tests := []struct {
		name         string
		g            convGeom
		direct, f4on bool
		want         bool
	}{
		{"vgg 64→64 32×32", vgg, false, false, true},
		{"first layer 3→64", first, false, false, false},
		{"64→15", narrow, false, false, false},
		{"ZOO_CONV=direct", vgg, true, false, false},
		{"ZOO_CONV=f4, 32×32 map", vgg, false, true, true},
		{"ZOO_CONV=f4, 4×4 map", small, false, true, true},
	}
	defer func(d, f bool) { convDirect, wgF4On = d, f }(convDirect, wgF4On)
	for _, tt := range tests {
		convDirect, wgF4On = tt.direct, tt.f4on
		if got := tt.g.wgGradWeight(); got != tt.want {
			t.Errorf("%s: wgGradWeight() = %t, want %t", tt.name, got, tt.want)
		}
	}
}

// TestWinogradGradWeightAllocs checks that a weight gradient on warm
// shared scratch allocates next to nothing: under 1% of its scratch
// (vgg's 128→128 layer on 16×16 maps, batch 8).
func TestWinogradGradWeightAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under -race")
	}
	g := convGeom{n: 8, c: 128, h: 16, w: 16, o: 128, kh: 3, kw: 3, stride: 1, pad: 1, oh: 16, ow: 16}
	x := data[float32](toFloat32(randDense(1, g.n, g.c, g.h, g.w)))
	dy := data[float32](toFloat32(randDense(2, g.n, g.o, g.h, g.w)))
	dw := make([]float32, g.o*g.c*9)
	winogradGradWeight(g, dw, x, dy) // grows the scratch
	const runs = 5
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		winogradGradWeight(g, dw, x, dy)
	}
	runtime.ReadMemStats(&after)
	scratch := 4 * (cap(wgShared.u) + cap(wgShared.v) + cap(wgShared.m))
	if got := int(after.TotalAlloc-before.TotalAlloc) / runs; got*100 > scratch {
		t.Errorf("allocated %d bytes per run, want under 1%% of the %d bytes of scratch", got, scratch)
	}
}

// BenchmarkConvGradWeight times the weight gradient of VGG's 3×3 layers
// (batch 64, float32) on Winograd and on the direct path (convDirect), in
// GFLOP/s of the direct path's multiply-adds; winograd_relu on
// vgg16_bn-like inputs (wgReLUInput), where the exact-zero check has work.
func BenchmarkConvGradWeight(b *testing.B) {
	const n = 64
	defer func(old bool) { convDirect = old }(convDirect)
	for _, s := range []struct{ c, o, hw int }{{64, 64, 32}, {128, 128, 16}, {256, 256, 8}, {512, 512, 4}, {512, 512, 2}} {
		g := convGeom{n: n, c: s.c, h: s.hw, w: s.hw, o: s.o, kh: 3, kw: 3, stride: 1, pad: 1, oh: s.hw, ow: s.hw}
		x := data[float32](toFloat32(randDense(1, n, s.c, s.hw, s.hw)))
		dy := data[float32](toFloat32(randDense(2, n, s.o, s.hw, s.hw)))
		relu := wgReLUInput(g, x)
		dw := make([]float32, s.o*s.c*9)
		scr := new(convScratch)
		flops := 2 * float64(n*s.o*s.c*9*s.hw*s.hw)
		for _, alg := range []string{"direct", "winograd", "winograd_relu"} {
			b.Run(fmt.Sprintf("%d-%d_%dx%d/%s", s.c, s.o, s.hw, s.hw, alg), func(b *testing.B) {
				convDirect = alg == "direct"
				in := x
				if alg == "winograd_relu" {
					in = relu
				}
				for b.Loop() {
					if g.wgGradWeight() {
						winogradGradWeight(g, dw, in, dy)
						continue
					}
					convGradWeight(scr, g, g.group(), dw, in, dy)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// wgReLUInput returns a copy of x (N, C, H, W) of g like a ReLU's output
// in vgg16_bn: its negative entries 0, and every 16th channel 0 but at
// each image's last pixel, so that the taps that never reach that pixel
// have exactly 0 gradients (dy dense, as BatchNorm's gradient is).
func wgReLUInput(g convGeom, x []float32) []float32 {
	out := slices.Clone(x)
	hw := g.h * g.w
	for i, v := range out {
		if ch, px := i/hw%g.c, i%hw; v < 0 || ch%16 == 0 && px != hw-1 {
			out[i] = 0
		}
	}
	return out
}

package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

// TestSplitRowsCovers checks that splitRows hands out every row exactly
// once, whole: in one call below parallelMin, above it in chunks of at
// least chunkMin elements (one row at least), at most chunksPerWorker per
// goroutine.
func TestSplitRowsCovers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, tc := range []struct {
		rows, rowLen, wantCalls int
	}{
		{rows: 1, rowLen: 1, wantCalls: 1},
		{rows: 7, rowLen: parallelMin/7 - 1, wantCalls: 1},
		{rows: 7, rowLen: parallelMin / 6, wantCalls: 4},   // 76454 elements: 4 chunks of ≥ chunkMin
		{rows: 3, rowLen: parallelMin, wantCalls: 3},       // one row per chunk at most
		{rows: parallelMin, rowLen: 1, wantCalls: 4},       // 4 chunks of chunkMin
		{rows: 64, rowLen: 1 << 16, wantCalls: 16},         // 2 CPUs × chunksPerWorker
		{rows: 1, rowLen: 4 * parallelMin, wantCalls: 1},   // one row cannot be split
		{rows: 1 << 20, rowLen: 1, wantCalls: 16},          // ReLU on 1M elements
		{rows: 2, rowLen: parallelMin / 2, wantCalls: 2},   // at the threshold
		{rows: 4, rowLen: parallelMin/4 - 1, wantCalls: 1}, // just below it
	} {
		seen := make([]int, tc.rows)
		calls := make(chan [2]int, 64)
		splitRows(tc.rows, tc.rowLen, func(lo, hi int) {
			calls <- [2]int{lo, hi}
		})
		close(calls)
		n := 0
		for c := range calls {
			n++
			for r := c[0]; r < c[1]; r++ {
				seen[r]++
			}
		}
		if n != tc.wantCalls {
			t.Errorf("splitRows(%d, %d): %d calls, want %d", tc.rows, tc.rowLen, n, tc.wantCalls)
		}
		for r, k := range seen {
			if k != 1 {
				t.Errorf("splitRows(%d, %d): row %d handed out %d times, want 1", tc.rows, tc.rowLen, r, k)
				break
			}
		}
	}
}

// TestParallelKernelsMatchSerial runs the split kernels (ReLU, BatchNorm,
// MaxPool, forward and backward) on tensors above parallelMin with one and
// with two goroutines: the results must be bit-identical, since each
// element or channel is computed by one goroutine in a fixed order.
func TestParallelKernelsMatchSerial(t *testing.T) {
	const n, c, h, w = 4, 8, 48, 48 // 73728 elements
	r := rand.New(rand.NewPCG(3, 4))
	x, dy := make([]float32, n*c*h*w), make([]float32, n*c*h*w)
	for i := range x {
		x[i], dy[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	gamma, beta := make([]float32, c), make([]float32, c)
	for i := range gamma {
		gamma[i], beta[i] = 1+0.1*float32(i), 0.05*float32(i)
	}
	g := poolGeom{n: n, c: c, h: h, w: w, k: 3, s: 2, p: 1}
	g.oh, g.ow = (h+2-3)/2+1, (w+2-3)/2+1
	g2 := poolGeom{n: n, c: c, h: h, w: w, k: 2, s: 2, oh: h / 2, ow: w / 2} // same output size as g
	pdy := make([]float32, n*c*g.oh*g.ow)
	copy(pdy, dy)

	run := func(procs int) map[string][]float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		out := make(map[string][]float32)
		y := make([]float32, len(x))
		relu(y, x)
		out["relu"] = y
		dx := make([]float32, len(x))
		reluGrad(dx, y, dy)
		out["reluGrad"] = dx

		mean, variance, invstd := make([]float64, c), make([]float64, c), make([]float64, c)
		by := make([]float32, len(x))
		bnTrainForward(by, x, gamma, beta, mean, variance, invstd, 1e-5, n, c, h*w)
		out["bnTrainForward"] = by
		ey := make([]float32, len(x))
		bnForward(ey, x, gamma, beta, mean, invstd, n, c, h*w)
		out["bnForward"] = ey
		fwd := &bnOp{train: true, mean: mean, invstd: invstd, sumDy: make([]float64, c)}
		dg, db := make([]float32, c), make([]float32, c)
		bnGradGamma(dg, x, dy, fwd, n, c, h*w)
		for i, s := range fwd.sumDy {
			db[i] = float32(s)
		}
		out["bnGradGamma"], out["bnGradBeta"] = dg, db
		bdx := make([]float32, len(x))
		bnGradInput(bdx, x, gamma, dy, dg, db, fwd, n, c, h*w)
		out["bnGradInput"] = bdx
		out["moments"] = []float32{float32(mean[0]), float32(variance[c-1])}

		py, arg := make([]float32, len(pdy)), make([]int32, len(pdy))
		maxPool(g, py, arg, x)
		out["maxPool"] = py
		pdx := make([]float32, len(x))
		maxPoolGrad(g, pdx, arg, pdy)
		out["maxPoolGrad"] = pdx
		// VGG's pooling (2×2, stride 2) takes maxPool's float32 fast path.
		py2, arg2 := make([]float32, len(pdy)), make([]int32, len(pdy))
		maxPool(g2, py2, arg2, x)
		out["maxPool2x2"] = py2
		pdx2 := make([]float32, len(x))
		maxPoolGrad(g2, pdx2, arg2, pdy)
		out["maxPoolGrad2x2"] = pdx2
		return out
	}
	serial := run(1)
	for _, procs := range []int{2, 3} {
		parallel := run(procs)
		for name, want := range serial {
			if got := parallel[name]; !slices.Equal(got, want) {
				t.Errorf("%s: %d goroutines differ from one", name, procs)
			}
		}
	}
}

// BenchmarkNonGEMM times the split kernels on VGG's largest activation at
// batch 64 (64 channels, 32×32: 4.2M float32) on one and on two goroutines.
func BenchmarkNonGEMM(b *testing.B) {
	const n, c, h, w = 64, 64, 32, 32
	x, dy, y := make([]float32, n*c*h*w), make([]float32, n*c*h*w), make([]float32, n*c*h*w)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range x {
		x[i], dy[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	gamma, beta := make([]float32, c), make([]float32, c)
	mean, variance, invstd := make([]float64, c), make([]float64, c), make([]float64, c)
	dg, fwd := make([]float32, c), &bnOp{mean: mean, invstd: invstd, sumDy: make([]float64, c)}
	g := poolGeom{n: n, c: c, h: h, w: w, k: 2, s: 2, oh: h / 2, ow: w / 2}
	arg := make([]int32, n*c*g.oh*g.ow)
	for _, k := range []struct {
		name string
		fn   func()
	}{
		{"relu", func() { relu(y, x) }},
		{"reluGrad", func() { reluGrad(y, x, dy) }},
		{"bnTrainForward", func() { bnTrainForward(y, x, gamma, beta, mean, variance, invstd, 1e-5, n, c, h*w) }},
		{"bnForward", func() { bnForward(y, x, gamma, beta, mean, invstd, n, c, h*w) }},
		{"bnGradGamma", func() { bnGradGamma(dg, x, dy, fwd, n, c, h*w) }},
		{"maxPool", func() { maxPool(g, y[:len(arg)], arg, x) }},
		{"maxPoolGrad", func() { maxPoolGrad(g, y, arg, dy[:len(arg)]) }},
	} {
		for _, procs := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/procs=%d", k.name, procs), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				b.SetBytes(int64(4 * len(x)))
				for b.Loop() {
					k.fn()
				}
			})
		}
	}
}

// TestReLUGradMask checks the branch-free ReLU gradient against y > 0 on
// the values where a bit trick could go wrong, in both dtypes.
func TestReLUGradMask(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	ys := []float64{1, -1, 0, math.Copysign(0, -1), inf, -inf, nan, -nan, math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, math.MaxFloat64, 1e-40, -1e-40, 3.5}
	dy64 := make([]float64, len(ys))
	ys32, dy32 := make([]float32, len(ys)), make([]float32, len(ys))
	for i, y := range ys {
		dy64[i], ys32[i], dy32[i] = float64(i)+0.5, float32(y), float32(i)+0.5
	}
	ys32 = append(ys32, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.MaxFloat32, math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00001))
	dy32 = append(dy32, 20, 21, 22, 23, 24)
	dx64, dx32 := make([]float64, len(ys)), make([]float32, len(ys32))
	reluGrad(dx64, ys, dy64)
	reluGrad(dx32, ys32, dy32)
	for i, y := range ys {
		want := 0.0
		if y > 0 {
			want = dy64[i]
		}
		if dx64[i] != want || math.Signbit(dx64[i]) {
			t.Errorf("float64: y = %g, dy = %g: got dx = %g, want %g", y, dy64[i], dx64[i], want)
		}
	}
	for i, y := range ys32 {
		var want float32
		if y > 0 {
			want = dy32[i]
		}
		if dx32[i] != want || math.Signbit(float64(dx32[i])) {
			t.Errorf("float32: y = %g, dy = %g: got dx = %g, want %g", y, dy32[i], dx32[i], want)
		}
	}
}

// TestMaxPool2x2MatchesPlane checks the 2×2 stride-2 float32 path against
// the general one, values and argmax bit for bit, on planes full of ties,
// signed zeros, infinities and NaNs, with odd sizes (floor mode).
func TestMaxPool2x2MatchesPlane(t *testing.T) {
	nan := float32(math.NaN())
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)), nan, 2, 2, -3}
	r := rand.New(rand.NewPCG(7, 8))
	for _, hw := range [][2]int{{2, 2}, {4, 6}, {5, 7}, {9, 3}, {32, 32}} {
		g := poolGeom{n: 1, c: 1, h: hw[0], w: hw[1], k: 2, s: 2}
		g.oh, g.ow = (g.h-2)/2+1, (g.w-2)/2+1
		for trial := range 50 {
			x := make([]float32, g.h*g.w)
			for i := range x {
				x[i] = special[r.IntN(len(special))]
				if trial%2 == 0 && r.IntN(4) > 0 {
					x[i] = float32(r.NormFloat64())
				}
			}
			gotY, wantY := make([]float32, g.oh*g.ow), make([]float32, g.oh*g.ow)
			gotA, wantA := make([]int32, g.oh*g.ow), make([]int32, g.oh*g.ow)
			maxPool2x2F32(g, gotY, gotA, x)
			maxPoolPlane(g, wantY, wantA, x)
			for i := range gotY {
				if math.Float32bits(gotY[i]) != math.Float32bits(wantY[i]) || gotA[i] != wantA[i] {
					t.Fatalf("%d×%d, output %d: got %g at %d, want %g at %d (input %v)", g.h, g.w, i, gotY[i], gotA[i], wantY[i], wantA[i], x)
				}
			}
		}
	}
}

// TestSum4 checks the four-chain sums against plain loops on every length
// up to two unrolled rounds and a tail.
func TestSum4(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for n := range 10 {
		x := make([]float32, n)
		var sum, sq float64
		for i := range x {
			x[i] = float32(r.NormFloat64())
			sum += float64(x[i])
		}
		const mu = 0.25
		for _, v := range x {
			sq += (float64(v) - mu) * (float64(v) - mu)
		}
		if got := sum4(x); math.Abs(got-sum) > 1e-12 {
			t.Errorf("sum4 of %d values: got %g, want %g", n, got, sum)
		}
		if got := sqDev4(x, mu); math.Abs(got-sq) > 1e-12 {
			t.Errorf("sqDev4 of %d values: got %g, want %g", n, got, sq)
		}
	}
}

// convSplitCases cross the thresholds of every split in the convolutions:
// Winograd F(4×4) and F(2×2) phases above wgParallelMin, the direct path
// with one image per GEMM (3 input channels) and with several (4×4 maps,
// 40 images: groups of 16, the last one short), a strided and a pointwise
// convolution.
var convSplitCases = []struct {
	name            string
	n, c, o, h, w   int
	k, stride, pad  int
	direct, float64 bool
}{
	{name: "wgF4", n: 6, c: 24, o: 40, h: 16, w: 17, k: 3, stride: 1, pad: 1},
	{name: "wgF2", n: 9, c: 40, o: 33, h: 8, w: 8, k: 3, stride: 1, pad: 1},
	{name: "wgF2small", n: 40, c: 64, o: 48, h: 2, w: 2, k: 3, stride: 1, pad: 1},
	{name: "direct1", n: 7, c: 3, o: 16, h: 32, w: 32, k: 3, stride: 1, pad: 1, direct: true},
	{name: "directGroup", n: 40, c: 20, o: 24, h: 4, w: 4, k: 3, stride: 1, pad: 1, direct: true},
	{name: "strided", n: 5, c: 6, o: 10, h: 23, w: 21, k: 3, stride: 2, pad: 1, direct: true},
	{name: "pointwise", n: 5, c: 12, o: 9, h: 20, w: 20, k: 1, stride: 1, direct: true},
	{name: "direct64", n: 5, c: 4, o: 8, h: 18, w: 18, k: 3, stride: 1, pad: 1, direct: true, float64: true},
}

// convSplitRun runs every kernel of convolution g (forward with a bias,
// input gradient, weight gradient, bias gradient) on GOMAXPROCS procs and
// returns the results as float64 (exact for float32).
func convSplitRun[T float](g convGeom, direct bool, procs int) map[string][]float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	x := data[T](convSplitDense[T](1, g.n, g.c, g.h, g.w))
	w := data[T](convSplitDense[T](2, g.o, g.c, g.kh, g.kw))
	b := data[T](convSplitDense[T](3, g.o))
	dy := data[T](convSplitDense[T](4, g.n, g.o, g.oh, g.ow))
	y, dx, dw, db := make([]T, g.n*g.o*g.ohw()), make([]T, len(x)), make([]T, len(w)), make([]T, g.o)
	s := new(convScratch)
	if xf, ok := any(x).([]float32); ok && !direct {
		wf := any(w).([]float32)
		winogradConv(g, g.wgAlg(), any(y).([]float32), xf, wf, any(b).([]float32), false)
		winogradConv(g, g.wgAlg(), any(dx).([]float32), any(dy).([]float32), wf, nil, true)
		winogradGradWeight(g, any(dw).([]float32), xf, any(dy).([]float32))
	} else {
		convForward(s, g, g.group(), y, x, w, b)
		convGradInput(s, g, g.group(), dx, w, dy)
		convGradWeight(s, g, g.group(), dw, x, dy)
	}
	biasGrad(g.n, g.o, g.ohw(), db, dy)
	out := make(map[string][]float64)
	for name, v := range map[string][]T{"y": y, "dx": dx, "dw": dw, "db": db} {
		f := make([]float64, len(v))
		for i, e := range v {
			f[i] = float64(e)
		}
		out[name] = f
	}
	return out
}

// convSplitDense is randDense in dtype T.
func convSplitDense[T float](seed uint64, shape ...int) *tensor.Dense {
	d := randDense(seed, shape...)
	if _, ok := any(T(0)).(float32); ok {
		return toFloat32(d)
	}
	return d
}

// TestConvSplitsMatchSerial runs the convolutions on 1, 2 and 3 goroutines:
// every result must be bit-identical to the one-goroutine run, since the
// dynamic splits hand each image, channel, plane or tile of C whole to one
// goroutine. The exception is the direct weight gradient with one image
// per GEMM, whose per-worker partial sums depend on the number of workers
// (splitFixed): it must be bit-identical from run to run at a given
// GOMAXPROCS.
func TestConvSplitsMatchSerial(t *testing.T) {
	for _, tc := range convSplitCases {
		t.Run(tc.name, func(t *testing.T) {
			g := convGeom{n: tc.n, c: tc.c, h: tc.h, w: tc.w, o: tc.o, kh: tc.k, kw: tc.k, stride: tc.stride, pad: tc.pad}
			g.oh, g.ow = (g.h+2*g.pad-g.kh)/g.stride+1, (g.w+2*g.pad-g.kw)/g.stride+1
			if !tc.direct && !g.winograd() {
				t.Fatalf("%v does not run on Winograd", g)
			}
			run := convSplitRun[float32]
			if tc.float64 {
				run = convSplitRun[float64]
			}
			fixedDW := tc.direct && g.group() == 1
			want := run(g, tc.direct, 1)
			for _, procs := range []int{2, 3} {
				got := run(g, tc.direct, procs)
				again := run(g, tc.direct, procs)
				for name, w := range want {
					if fixedDW && name == "dw" {
						w = again[name]
					}
					if !slices.Equal(got[name], w) {
						t.Errorf("%s on %d goroutines differs from %s", name, procs, map[bool]string{false: "one", true: "the same run again"}[fixedDW && name == "dw"])
					}
				}
			}
		})
	}
}

// TestConvTranspose checks the blocked transpose on shapes around its
// block size and above splitRows's threshold, on 1 and 3 goroutines.
func TestConvTranspose(t *testing.T) {
	for _, tc := range []struct{ rows, cols int }{{1, 1}, {3, 70}, {33, 31}, {64, 576}, {4608, 17}, {300, 513}} {
		for _, procs := range []int{1, 3} {
			func() {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				src := make([]float32, tc.rows*tc.cols)
				for i := range src {
					src[i] = float32(i)
				}
				dst := wgNaN(len(src))
				convTranspose(dst, src, tc.rows, tc.cols)
				for r := range tc.rows {
					for c := range tc.cols {
						if got, want := dst[c*tc.rows+r], src[r*tc.cols+c]; got != want {
							t.Fatalf("%d×%d on %d goroutines: dst[%d, %d] = %g, want %g", tc.rows, tc.cols, procs, c, r, got, want)
						}
					}
				}
			}()
		}
	}
}

package layers

import (
	"os"
	"sync"

	"github.com/gozoo/gozoo/internal/sgemm"
)

// Winograd F(2×2, 3×3) (Lavin & Gray, arXiv:1509.09308) for the float32
// 3×3 stride-1 padding-1 convolutions: each 2×2 block of outputs ("tile")
// comes from a 4×4 block of the zero-padded input,
//
//	Y = Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A,
//
// 16 multiplications per tile and channel pair instead of 36 (2.25×
// fewer). Summed over the input channels, the 16 elementwise products
// become 16 independent GEMMs, U[ξ] (O, C) by V[ξ] (C, tiles), on the same
// SGEMM kernel as the direct path. The transforms only add and halve, so
// float32 rounding stays at the direct path's level or below.
//
// The input gradient of such a convolution is again one (the filters
// rotated by 180° with input and output channels swapped), so it runs the
// same code. F(4×4, 3×3) (4×4 tiles from 6×6 blocks, 36 GEMMs, 4×
// fewer multiplications than direct; the default on maps of 16×16 and
// more, see wgF4On) runs on the same scheme with its own transforms
// (wgFilter4, wgInput4, wgOutput4).
//
// The transforms of both run on AVX-512 kernels where the CPU has them
// (winograd_amd64.s, written by winograd_asm_gen.go), with the Go code's
// operations in the same order, so bit-identical results: for F(2×2),
// whole rows of tiles at once on maps 16 and more wide, gathers and
// scatters of 16 tiles at a time on smaller maps; for F(4×4), runs of
// whole rows of 1, 2, 4 or 8 tiles 16 tiles at a time (wgInRun4,
// wgOutRun4), other rows one at a time; the filters 16 input channels at
// a time. Elsewhere, and with the purego build tag, the Go code runs.

// convDirect forces the direct (im2col + GEMM) path for every
// convolution: set by ZOO_CONV=direct, read once at start, for benchmarks
// and for comparing the two paths; tests set it directly.
var convDirect = os.Getenv("ZOO_CONV") == "direct"

// wgMinChannels is the number of input and output channels under which
// Winograd does not pay: its 16 GEMMs have k = C, and the tile transforms
// cost as much as a GEMM with few channels (VGG's first layer has C = 3).
const wgMinChannels = 16

// winograd reports whether the float32 convolution g runs on Winograd
// (F(2×2, 3×3) or F(4×4, 3×3), see wgAlg): a 3×3 kernel, stride 1 and
// padding 1, enough channels. On
// one core it beat the direct path on every VGG layer shape measured
// (BenchmarkConvWinograd, batch 64: 1.2–1.8× from 32×32 down to 2×2
// maps), so the map size does not enter.
func (g convGeom) winograd() bool {
	return !convDirect && g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad == 1 &&
		g.c >= wgMinChannels && g.o >= wgMinChannels
}

// wgBufs is the scratch of one Winograd convolution: the transformed
// filters U, the transformed input and products (V, M) of a block of
// tiles, and the block's tiles. Buffers only grow and are never cleared:
// every element read is written first.
type wgBufs struct {
	u, v, m []float32
	ts      []wgTile
}

// wgGrow returns (*buf)[:n], reallocating when its capacity is short.
func wgGrow[E any](buf *[]E, n int) []E {
	if cap(*buf) < n {
		*buf = make([]E, n)
	}
	return (*buf)[:n]
}

// wgShared is kept from one Winograd convolution to the next: a
// TapeMachine runs one op at a time, so a single set serves every layer
// (at most ~24 MiB for VGG) and a training step allocates no new scratch.
// A convolution that finds it in use allocates its own.
var wgShared struct {
	sync.Mutex
	wgBufs
}

// wgF4On puts the convolutions on maps of wgF4MinSide² pixels and more on
// F(4×4, 3×3), the rest on F(2×2, 3×3): the default; ZOO_CONV=f2 (read
// once at start) turns it off. Per layer on one core, with the vectorized
// transforms, F(4×4) took 1.3–1.8× less time than F(2×2) on VGG's maps
// from 32×32 down to 4×4 (BenchmarkConvWinograd; on 2×2 maps, where a
// 4×4 tile is mostly padding, they tie), at ~10× the float32 error
// (max|diff|/max|ref| 3–5e-6 against 1–4e-7): see wgF4MinSide.
var wgF4On = os.Getenv("ZOO_CONV") != "f2"

// wgF4MinSide sets the feature-map size from which F(4×4, 3×3) replaces
// F(2×2, 3×3) when wgF4On, H·W ≥ wgF4MinSide²: 16×16 by default, 8×8 with
// ZOO_CONV=f4. With F(4×4) from 8×8, zoo/vgg's 5-step SGD-Nesterov
// fixture (a width-1/16 vgg11_bn whose only Winograd layer is 16→16 on
// 8×8 maps) ends 0.15 away from PyTorch (relative; the tolerance is
// 1e-5), although that layer's error is the same as before, when the
// fixture passed: the fixture amplifies rounding differences there (see
// docs/performance-kernels.md).
var wgF4MinSide = wgF4Min(os.Getenv("ZOO_CONV"))

// wgF4Min returns wgF4MinSide for the value conv of ZOO_CONV.
func wgF4Min(conv string) int {
	if conv == "f4" {
		return 8
	}
	return 16
}

// wgAlg returns the Winograd algorithm of the convolution g: with wgF4On
// F(4×4, 3×3) on maps of wgF4MinSide² pixels and more, else F(2×2, 3×3).
func (g convGeom) wgAlg() wgAlg {
	if wgF4On && g.h*g.w >= wgF4MinSide*wgF4MinSide {
		return wgF4
	}
	return wgF2
}

// winogradConv runs the forward pass (grad false) or the input gradient
// (grad true) of the 3×3 stride-1 padding-1 convolution g on the Winograd
// algorithm alg: forward, y (N, O, H, W) = conv(x (N, C, H, W),
// w (O, C, 3, 3)) + b (b may be nil); input gradient, y = dx (N, C, H, W)
// from x = dy (N, O, H, W).
func winogradConv(g convGeom, alg wgAlg, y, x, w, b []float32, grad bool) {
	s := new(wgBufs)
	if wgShared.TryLock() {
		defer wgShared.Unlock()
		s = &wgShared.wgBufs
	}
	var perm []int
	u := wgGrow(&s.u, alg.planes*g.o*g.c)
	if alg.m == 2 {
		wgFilter(u, w, g.o, g.c)
		perm = wgSigma[:]
	} else {
		wgFilter4(u, w, g.o, g.c, grad)
	}
	if grad {
		wgConv(s, alg, g.n, g.o, g.c, g.h, g.w, y, x, u, nil, true, perm)
		return
	}
	wgConv(s, alg, g.n, g.c, g.o, g.h, g.w, y, x, u, b, false, nil)
}

// wgFilter writes the 16 transformed filter matrices U[ξ] = (G·g·Gᵀ)[ξ]
// into u (16, O, C); w is (O, C, 3, 3): on AVX-512, 16 input channels at
// a time (wgFilterRows), else in Go (wgFilterGo).
//
// The input gradient needs the transforms of the filters rotated by 180°
// with the channels swapped, (16, C, O); since G·J = P·G, where J reverses
// 3 rows and P swaps rows 0 and 3 of 4, those are U'[ξ] = U[σ(ξ)]ᵀ with σ
// swapping 0 and 3 in both of ξ's indices (wgConv's grad).
func wgFilter(u, w []float32, o, c int) {
	wgSplit(o, 16*o*c, func(lo, hi int) {
		if !wgFilterRows(u, w, o, c, lo, hi) {
			wgFilterGo(u, w, o, c, lo, hi)
		}
	})
}

// wgFilterGo is wgFilter's work on output channels [lo, hi) in Go. Each
// row of the 16 matrices is built in a buffer and copied out, so that they
// are written in sequence, on every CPU for large filters.
func wgFilterGo(u, w []float32, o, c, lo, hi int) {
	buf := make([]float32, 16*c)
	for r := lo; r < hi; r++ {
		for q := range c {
			k := w[(r*c+q)*9:][:9]
			// t = G·g, column by column (4×3).
			t00, t10, t20, t30 := wg3(k[0], k[3], k[6])
			t01, t11, t21, t31 := wg3(k[1], k[4], k[7])
			t02, t12, t22, t32 := wg3(k[2], k[5], k[8])
			b := buf[q:]
			b[0], b[c], b[2*c], b[3*c] = wg3(t00, t01, t02)
			b[4*c], b[5*c], b[6*c], b[7*c] = wg3(t10, t11, t12)
			b[8*c], b[9*c], b[10*c], b[11*c] = wg3(t20, t21, t22)
			b[12*c], b[13*c], b[14*c], b[15*c] = wg3(t30, t31, t32)
		}
		for xi := range 16 {
			copy(u[(xi*o+r)*c:][:c], buf[xi*c:][:c])
		}
	}
}

// wg3 is G·(a, b, c): F(2×2, 3×3)'s filter transform of one column or row.
func wg3(a, b, c float32) (float32, float32, float32, float32) {
	return a, 0.5 * (a + b + c), 0.5 * (a - b + c), c
}

// wgSigma is σ of wgFilter: ξ = 4i + j ↦ 4σ(i) + σ(j), σ swapping 0 and 3.
var wgSigma = [...]int{15, 13, 14, 12, 7, 5, 6, 4, 11, 9, 10, 8, 3, 1, 2, 0}

// wgTile locates one m×m output tile (m = 2 or 4, wgAlg.m): the offset of
// its image in the input, the top-left corner (y0, x0) of its
// (m+2)×(m+2) input block (one above and left of its first output), and
// the offset of its first output.
type wgTile struct {
	in, y0, x0, out int
}

// wgAlg is one Winograd algorithm F(m×m, 3×3): its output tile side, its
// number of transform planes (m+2)², and its tile transforms.
type wgAlg struct {
	m, planes int
	input     func(v, x []float32, ts []wgTile, c0, c1, h, w, ld, plane int)
	output    func(y, m []float32, ts []wgTile, o0, o1, h, w, ld, plane int, b []float32)
}

var (
	wgF2 = wgAlg{m: 2, planes: 16, input: wgInput, output: wgOutput}
	wgF4 = wgAlg{m: 4, planes: 36, input: wgInput4, output: wgOutput4}
)

// wgConv computes y = conv3×3(x) + b (b may be nil) with the Winograd
// algorithm alg, stride 1 and padding 1, from the transformed filters u
// (planes, cout, cin). x is (n, cin, h, w), y is (n, cout, h, w). With
// grad it computes the input gradient instead: u holds (planes, cin, cout)
// matrices, read transposed, the one of plane ξ at perm[ξ] (ξ itself when
// perm is nil); x is the forward output gradient, y the input gradient (b
// nil). V and M live in s.
//
// Tiles are processed in blocks of up to wgBlock, each in three phases
// spread over the CPUs: the input transform V (planes, cin, tiles) split
// by input channel, the GEMMs M[ξ] = U[ξ]·V[ξ] (cout, tiles) split by ξ,
// and the output transform split by output channel.
func wgConv(s *wgBufs, alg wgAlg, n, cin, cout, h, w int, y, x, u, b []float32, grad bool, perm []int) {
	mt, np := alg.m, alg.planes
	th, tw := (h+mt-1)/mt, (w+mt-1)/mt
	tiles := n * th * tw
	blocks := (tiles + wgBlock(cin, cout, np) - 1) / wgBlock(cin, cout, np)
	tb := (tiles + blocks - 1) / blocks
	// The planes of V and of M are written (read) side by side: pad their
	// stride by 64 bytes so that they do not all map to the same L1 cache
	// sets.
	vp, mp := cin*tb+16, cout*tb+16
	v, m := wgGrow(&s.v, np*vp), wgGrow(&s.m, np*mp)
	ts := wgGrow(&s.ts, tb)
	for t0 := 0; t0 < tiles; t0 += tb {
		cnt := min(tb, tiles-t0)
		wgTiles(ts[:cnt], t0, mt, cin, cout, h, w)
		// The work of a transform is the floats it writes: np per tile
		// and channel.
		wgSplit(cin, np*cin*cnt, func(lo, hi int) { alg.input(v, x, ts[:cnt], lo, hi, h, w, tb, vp) })
		wgSplit(np, cout*cin*cnt, func(lo, hi int) {
			for xi := lo; xi < hi; xi++ {
				ui, lda := xi, cin
				if grad {
					lda = cout
					if perm != nil {
						ui = perm[xi]
					}
				}
				sgemm.SgemmSerial(grad, false, cout, cnt, cin, 1, u[ui*cout*cin:][:cout*cin], lda,
					v[xi*vp:][:cin*tb], tb, 0, m[xi*mp:][:cout*tb], tb)
			}
		})
		wgSplit(cout, np*cout*cnt, func(lo, hi int) { alg.output(y, m, ts[:cnt], lo, hi, h, w, tb, mp, b) })
	}
}

// wgTiles fills ts with the m×m tiles t0, t0+1, … of images (cin, h, w)
// in and (cout, h, w) out, numbered image by image, then row by row, left
// to right: the order of V's and M's columns, which wgInput's and
// wgOutput's row kernels rely on.
func wgTiles(ts []wgTile, t0, m, cin, cout, h, w int) {
	th, tw := (h+m-1)/m, (w+m-1)/m
	for k := range ts {
		t := t0 + k
		img, r := t/(th*tw), t%(th*tw)
		ty, tx := r/tw, r%tw
		ts[k] = wgTile{in: img * cin * h * w, y0: m*ty - 1, x0: m*tx - 1, out: img*cout*h*w + m*ty*w + m*tx}
	}
}

// wgBlock is the number of tiles processed at once: V and M then take
// planes·(cin+cout)·tiles floats, about 4 MiB, or 8–18 MiB with 512
// channels in and out. Under 128 tiles the input gradient's GEMMs, which
// read U transposed in place, were a third slower (F(2×2), 4×4 maps, 512
// channels).
func wgBlock(cin, cout, planes int) int { return max(128, (1<<20)/planes/(cin+cout)) }

// wgParallelMin is the work under which a phase stays on one goroutine.
const wgParallelMin = 1 << 15

// wgChunkMin is the least work of one chunk of a split phase: taking a
// chunk costs an atomic add, ~8K floats' worth of work some microseconds.
const wgChunkMin = 1 << 13

// wgSplit runs fn over [0, n), or on the calling goroutine alone when the
// phase has under wgParallelMin units of work (each about one float's
// worth: starting a goroutine costs a few microseconds). Above, [0, n) is
// cut into up to chunksPerWorker chunks per CPU, of wgChunkMin units of
// work or more, which the CPUs, the calling goroutine's included, take in
// turn (parallel.Run): a CPU that wakes late or runs slow takes fewer
// chunks instead of holding the other one idle at the end of the phase.
// Each item of [0, n) (a channel, a plane) writes outputs of its own, so
// the results do not depend on which CPU took which chunk.
func wgSplit(n, work int, fn func(lo, hi int)) {
	if work < wgParallelMin || n <= 1 {
		fn(0, n)
		return
	}
	splitChunks(n, work/n, wgChunkMin, splitWorkers(n), fn)
}

// wgInput writes the transformed input blocks Bᵀ·d·B of the tiles ts, for
// channels [c0, c1) of x (n, cin, h, w), into v: 16 planes (cin, ld)
// plane floats apart, tile k of channel c at v[ξ·plane + c·ld + k].
//
// A whole row of tiles of one image (wgRowAt) is transformed at once by
// wgInRows; the tiles of a block's partial first and last rows one by one
// (wgInTile). Under wgRowMinW columns, wgInGather takes every tile.
func wgInput(v, x []float32, ts []wgTile, c0, c1, h, w, ld, plane int) {
	if c1 <= c0 {
		return
	}
	hw, tw := h*w, (w+1)/2
	rows := w >= wgRowMinW()
	if !rows && wgInGather(v, x, ts, c0, c1, h, w, ld, plane) {
		return
	}
	s := wgRowScratch(w)
	for k := 0; k < len(ts); {
		tl := ts[k]
		if !rows || !wgRowAt(ts, k, tw, 2) {
			for c := c0; c < c1; c++ {
				wgInTile(v[c*ld+k:], x[tl.in+c*hw:][:hw], tl, h, w, plane)
			}
			k++
			continue
		}
		var r [4][]float32 // channel c0's 4 input rows; nil in the padding
		for i := range r {
			if yy := tl.y0 + i; yy >= 0 && yy < h {
				r[i] = x[tl.in+c0*hw+yy*w : tl.in+(c1-1)*hw+yy*w+w]
			}
		}
		wgInRows(v[c0*ld+k:], plane, ld, r, hw, c1-c0, s, w, tw)
		k += tw
	}
}

// wgRowMinW is the map width from which F(2×2)'s whole rows of tiles go to
// wgInRows and wgOutRows (the rest tile by tile); under it wgInGather and
// wgOutScatter take every tile when they can. With AVX-512, rows of 8
// tiles (16 columns) and more; in Go, rows of 4 and more (rows of 1 or 2
// were slower than tile by tile).
func wgRowMinW() int {
	if wgAVX512 {
		return 16
	}
	return 8
}

// wgRowAt reports whether ts[k:k+tw] is a whole row of tiles m×m of one
// image, left to right (tw tiles a row): true for every row of a block but
// its first and last, which wgConv may cut.
func wgRowAt(ts []wgTile, k, tw, m int) bool {
	if ts[k].x0 != -1 || k+tw > len(ts) {
		return false
	}
	last := ts[k+tw-1]
	return last.in == ts[k].in && last.y0 == ts[k].y0 && last.x0 == m*(tw-1)-1
}

// wgScratch is the scratch of wgInRows for maps w wide: a zero row, and
// wgInRowGo's 4 rows of Bᵀ·d, each w+3 floats with a zero before and
// after the w columns (Bᵀ·d of column j at e[i·(w+3) + 1 + j]).
type wgScratch struct{ zero, e []float32 }

// wgRowScratch returns a zeroed wgScratch for maps w wide.
func wgRowScratch(w int) wgScratch {
	return wgScratch{zero: make([]float32, w), e: make([]float32, 4*(w+3))}
}

// wgInRowsGo is wgInRows in Go: for each of nc channels c, wgInRowGo of
// the rows r[i][c·hw:][:w] (zero rows where r[i] is nil) into
// q[c·ld:].
func wgInRowsGo(q []float32, plane, ld int, r [4][]float32, hw, nc int, s wgScratch, w, tw int) {
	for c := range nc {
		var rc [4][]float32
		wgChannelRows(rc[:], r[:], s.zero[:w], c*hw)
		wgInRowGo(q[c*ld:], plane, rc, s.e, w, tw)
	}
}

// wgChannelRows sets rc[i] to r[i][at:][:len(zero)], one channel's input
// row, or to zero where r[i] is nil (the padding).
func wgChannelRows(rc, r [][]float32, zero []float32, at int) {
	for i := range r {
		rc[i] = zero
		if r[i] != nil {
			rc[i] = r[i][at:][:len(zero)]
		}
	}
}

// wgInRowGo transforms one whole row of tw tiles of one channel: Bᵀ·d on
// whole rows (r, 4 rows of w) into e, then ·B tile by tile, the tiles'
// columns 2t−1 … 2t+2 read from e's padded rows (wgScratch), into q's 16
// planes (plane apart). e's padding must be zero; it stays so.
func wgInRowGo(q []float32, plane int, r [4][]float32, e []float32, w, tw int) {
	s := w + 3
	r0, r1, r2, r3 := r[0][:w], r[1][:w], r[2][:w], r[3][:w]
	e0, e1, e2, e3 := e[1:][:w], e[s+1:][:w], e[2*s+1:][:w], e[3*s+1:][:w]
	for j := range e0 {
		e0[j], e1[j], e2[j], e3[j] = wgB(r0[j], r1[j], r2[j], r3[j])
	}
	for i := range 4 {
		ei := e[i*s:][:2*tw+2]
		p0, p1, p2, p3 := q[4*i*plane:][:tw], q[(4*i+1)*plane:][:tw], q[(4*i+2)*plane:][:tw], q[(4*i+3)*plane:][:tw]
		for t := range p0 {
			d := ei[2*t:][:4]
			p0[t], p1[t], p2[t], p3[t] = wgB(d[0], d[1], d[2], d[3])
		}
	}
}

// wgInTile writes Bᵀ·d·B of the one tile tl of the channel xc (h, w) into
// q's 16 planes (plane apart).
func wgInTile(q, xc []float32, tl wgTile, h, w, plane int) {
	var r0, r1, r2, r3 []float32 // the block's 4 rows
	if tl.y0 >= 0 && tl.x0 >= 0 && tl.y0+4 <= h && tl.x0+4 <= w {
		at := tl.y0*w + tl.x0
		r0, r1, r2, r3 = xc[at:][:4], xc[at+w:][:4], xc[at+2*w:][:4], xc[at+3*w:][:4]
	} else {
		var d [16]float32
		wgLoadBlock(d[:], xc, tl, 4, h, w)
		r0, r1, r2, r3 = d[0:4], d[4:8], d[8:12], d[12:16]
	}
	// Bᵀ·d: the rows combined, column by column.
	e00, e10, e20, e30 := wgB(r0[0], r1[0], r2[0], r3[0])
	e01, e11, e21, e31 := wgB(r0[1], r1[1], r2[1], r3[1])
	e02, e12, e22, e32 := wgB(r0[2], r1[2], r2[2], r3[2])
	e03, e13, e23, e33 := wgB(r0[3], r1[3], r2[3], r3[3])
	// ·B: the columns combined, row by row; ξ = 4i + j.
	q[0], q[plane], q[2*plane], q[3*plane] = wgB(e00, e01, e02, e03)
	q[4*plane], q[5*plane], q[6*plane], q[7*plane] = wgB(e10, e11, e12, e13)
	q[8*plane], q[9*plane], q[10*plane], q[11*plane] = wgB(e20, e21, e22, e23)
	q[12*plane], q[13*plane], q[14*plane], q[15*plane] = wgB(e30, e31, e32, e33)
}

// wgLoadBlock copies the side×side input block of the tile tl from the
// channel xc (h, w) into d (side·side, row by row), leaving d's elements in
// the padding as they are (zero in a fresh block).
func wgLoadBlock(d, xc []float32, tl wgTile, side, h, w int) {
	for i := range side {
		yy := tl.y0 + i
		if yy < 0 || yy >= h {
			continue
		}
		for j := range side {
			if xx := tl.x0 + j; xx >= 0 && xx < w {
				d[side*i+j] = xc[yy*w+xx]
			}
		}
	}
}

// wgB is Bᵀ·(a, b, c, d): F(2×2, 3×3)'s input transform of one column or
// row.
func wgB(a, b, c, d float32) (float32, float32, float32, float32) {
	return a - c, b + c, c - b, b - d
}

// wgA is Aᵀ·(a, b, c, d): F(2×2, 3×3)'s output transform of one column or
// row.
func wgA(a, b, c, d float32) (float32, float32) {
	return a + b + c, b - c - d
}

// wgOutput writes the 2×2 outputs Aᵀ·m·A (+ b) of the tiles ts, output
// channels [o0, o1), into y (n, cout, h, w) from the 16 products m, planes
// (cout, ld) plane floats apart, dropping the outputs past the map's right
// or bottom edge. Whole rows of tiles (wgRowAt) go to wgOutRows, the rest
// tile by tile; under wgRowMinW columns, wgOutScatter takes every tile.
func wgOutput(y, m []float32, ts []wgTile, o0, o1, h, w, ld, plane int, b []float32) {
	if o1 <= o0 {
		return
	}
	hw, tw := h*w, (w+1)/2
	rows := w >= wgRowMinW()
	if !rows && wgOutScatter(y, m, ts, o0, o1, h, w, ld, plane, b) {
		return
	}
	var bo []float32
	if b != nil {
		bo = b[o0:o1]
	}
	for k := 0; k < len(ts); {
		tl := ts[k]
		if !rows || !wgRowAt(ts, k, tw, 2) {
			for o := o0; o < o1; o++ {
				var bias float32
				if b != nil {
					bias = b[o]
				}
				wgOutTile(y[tl.out+o*hw:], m[o*ld+k:], tl, h, w, plane, bias)
			}
			k++
			continue
		}
		at := tl.out + o0*hw
		y0, y1 := y[at:tl.out+(o1-1)*hw+w], []float32(nil)
		if tl.y0+2 < h {
			y1 = y[at+w : tl.out+(o1-1)*hw+2*w]
		}
		wgOutRows(y0, y1, m[o0*ld+k:], plane, ld, hw, o1-o0, w, tw, bo)
		k += tw
	}
}

// wgOutRowsGo is wgOutRows in Go: for each of nc channels c, wgOutRowGo
// of q[c·ld:] into y0[c·hw:][:w] and y1[c·hw:][:w] (y1 nil when the map
// ends after y0), plus b[c] (b may be nil).
func wgOutRowsGo(y0, y1, q []float32, plane, ld, hw, nc, w, tw int, b []float32) {
	for c := range nc {
		var bias float32
		if b != nil {
			bias = b[c]
		}
		var y1c []float32
		if y1 != nil {
			y1c = y1[c*hw:][:w]
		}
		wgOutRowGo(y0[c*hw:][:w], y1c, q[c*ld:], plane, tw, bias)
	}
}

// wgOutRowGo writes the outputs of a whole row of tw tiles of one channel
// from q's 16 planes (plane apart) into the output rows y0 and y1 (y1 nil
// when the map ends after y0), plus bias.
func wgOutRowGo(y0, y1, q []float32, plane, tw int, bias float32) {
	w := len(y0)
	for t := range tw {
		x := q[t:]
		t00, t10 := wgA(x[0], x[4*plane], x[8*plane], x[12*plane])
		t01, t11 := wgA(x[plane], x[5*plane], x[9*plane], x[13*plane])
		t02, t12 := wgA(x[2*plane], x[6*plane], x[10*plane], x[14*plane])
		t03, t13 := wgA(x[3*plane], x[7*plane], x[11*plane], x[15*plane])
		y00, y01 := wgA(t00, t01, t02, t03)
		y10, y11 := wgA(t10, t11, t12, t13)
		if 2*t+1 < w {
			y0[2*t], y0[2*t+1] = y00+bias, y01+bias
			if y1 != nil {
				y1[2*t], y1[2*t+1] = y10+bias, y11+bias
			}
			continue
		}
		y0[2*t] = y00 + bias
		if y1 != nil {
			y1[2*t] = y10 + bias
		}
	}
}

// wgOutTile writes the outputs of the one tile tl from q's 16 planes
// (plane apart) into yo, its first output in y (h, w), plus bias.
func wgOutTile(yo, q []float32, tl wgTile, h, w, plane int, bias float32) {
	// Aᵀ·m: the rows combined, column by column; ξ = 4i + j.
	t00, t10 := wgA(q[0], q[4*plane], q[8*plane], q[12*plane])
	t01, t11 := wgA(q[plane], q[5*plane], q[9*plane], q[13*plane])
	t02, t12 := wgA(q[2*plane], q[6*plane], q[10*plane], q[14*plane])
	t03, t13 := wgA(q[3*plane], q[7*plane], q[11*plane], q[15*plane])
	// ·A: the columns combined.
	y00, y01 := wgA(t00, t01, t02, t03)
	y10, y11 := wgA(t10, t11, t12, t13)
	oy, ox := tl.y0+1, tl.x0+1
	if oy+1 < h && ox+1 < w {
		yo[0], yo[1], yo[w], yo[w+1] = y00+bias, y01+bias, y10+bias, y11+bias
		return
	}
	yo[0] = y00 + bias
	if ox+1 < w {
		yo[1] = y01 + bias
	}
	if oy+1 < h {
		yo[w] = y10 + bias
		if ox+1 < w {
			yo[w+1] = y11 + bias
		}
	}
}

// wgFilter4 writes F(4×4, 3×3)'s 36 transformed filter matrices
// U[ξ] = (G·g·Gᵀ)[ξ] into u (36, O, C); w is (O, C, 3, 3). With rotate the
// filters are rotated by 180° first (for the input gradient, which reads
// each U[ξ] transposed). On AVX-512 16 input channels at a time
// (wgFilter4Rows), else in Go (wgFilter4Go: each row of the 36 matrices
// built in a buffer and copied out, so that they are written in
// sequence).
func wgFilter4(u, w []float32, o, c int, rotate bool) {
	wgSplit(o, 36*o*c, func(lo, hi int) {
		if !wgFilter4Rows(u, w, o, c, lo, hi, rotate) {
			wgFilter4Go(u, w, o, c, lo, hi, rotate)
		}
	})
}

// wgFilter4Go is wgFilter4's work on output channels [lo, hi) in Go.
func wgFilter4Go(u, w []float32, o, c, lo, hi int, rotate bool) {
	buf := make([]float32, 36*c)
	for r := lo; r < hi; r++ {
		for q := range c {
			k := w[(r*c+q)*9:][:9]
			g0, g1, g2, g3, g4, g5, g6, g7, g8 := k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8]
			if rotate {
				g0, g1, g2, g3, g5, g6, g7, g8 = g8, g7, g6, g5, g3, g2, g1, g0
			}
			// t = G·g, column by column (6×3).
			t00, t10, t20, t30, t40, t50 := wgG6(g0, g3, g6)
			t01, t11, t21, t31, t41, t51 := wgG6(g1, g4, g7)
			t02, t12, t22, t32, t42, t52 := wgG6(g2, g5, g8)
			b := buf[q:]
			_ = b[35*c]
			b[0], b[c], b[2*c], b[3*c], b[4*c], b[5*c] = wgG6(t00, t01, t02)
			b[6*c], b[7*c], b[8*c], b[9*c], b[10*c], b[11*c] = wgG6(t10, t11, t12)
			b[12*c], b[13*c], b[14*c], b[15*c], b[16*c], b[17*c] = wgG6(t20, t21, t22)
			b[18*c], b[19*c], b[20*c], b[21*c], b[22*c], b[23*c] = wgG6(t30, t31, t32)
			b[24*c], b[25*c], b[26*c], b[27*c], b[28*c], b[29*c] = wgG6(t40, t41, t42)
			b[30*c], b[31*c], b[32*c], b[33*c], b[34*c], b[35*c] = wgG6(t50, t51, t52)
		}
		for xi := range 36 {
			copy(u[(xi*o+r)*c:][:c], buf[xi*c:][:c])
		}
	}
}

// wgG6 is G·(a, b, c) of F(4×4, 3×3): (a/4, −(a+b+c)/6, −(a−b+c)/6,
// a/24 + b/12 + c/6, a/24 − b/12 + c/6, c).
func wgG6(a, b, c float32) (float32, float32, float32, float32, float32, float32) {
	// The conversions keep each inexact product rounded on its own, never
	// fused into an FMA with an addition here or after inlining (as Go
	// may with GOAMD64=v3), like the AVX-512 kernel.
	p := a + c
	s, d := float32(a*(1.0/24))+float32(c*(1.0/6)), float32(b*(1.0/12))
	return a * 0.25, float32((p + b) * (-1.0 / 6)), float32((p - b) * (-1.0 / 6)), s + d, s - d, c
}

// wgB6 is Bᵀ·(d0, …, d5) of F(4×4, 3×3): (4d0 − 5d2 + d4,
// −4d1 − 4d2 + d3 + d4, 4d1 − 4d2 − d3 + d4, −2d1 − d2 + 2d3 + d4,
// 2d1 − d2 − 2d3 + d4, 4d1 − 5d3 + d5), with only products by 2 and 4,
// which are exact: the AVX-512 kernels, doing the same operations in the
// same order, give the same bits, fused into FMAs by the compiler or not.
func wgB6(d0, d1, d2, d3, d4, d5 float32) (float32, float32, float32, float32, float32, float32) {
	a, b := d4-d2, d1-d3
	return 4*(d0-d2) + a, (d3 + d4) - 4*(d1+d2), (d4 - d3) + 4*(d1-d2), a - 2*b, a + 2*b, 4*b + (d5 - d3)
}

// wgA6 is Aᵀ·(m0, …, m5) of F(4×4, 3×3): (m0 + m1 + m2 + m3 + m4,
// m1 − m2 + 2(m3 − m4), m1 + m2 + 4(m3 + m4), m1 − m2 + 8(m3 − m4) + m5),
// with only products by 2, 4 and 8 (see wgB6).
func wgA6(m0, m1, m2, m3, m4, m5 float32) (float32, float32, float32, float32) {
	s, d, ss, dd := m1+m2, m1-m2, m3+m4, m3-m4
	return (m0 + s) + ss, d + 2*dd, s + 4*ss, (d + 8*dd) + m5
}

// wgInput4 is wgInput for F(4×4, 3×3): 6×6 input blocks, 36 planes. A
// whole row of tiles of one image (wgRowAt) is transformed at once by
// wgInRows4, the tiles of a block's partial first and last rows one by one
// (wgInTile4).
func wgInput4(v, x []float32, ts []wgTile, c0, c1, h, w, ld, plane int) {
	if c1 <= c0 {
		return
	}
	hw, tw := h*w, (w+3)/4
	var s wgScratch // made when the Go rows need it
	for k := 0; k < len(ts); {
		tl := ts[k]
		if !wgRowAt(ts, k, tw, 4) {
			for c := c0; c < c1; c++ {
				wgInTile4(v[c*ld+k:], x[tl.in+c*hw:][:hw], tl, h, w, plane)
			}
			k++
			continue
		}
		n := tw // the whole rows from k
		for k+n < len(ts) && wgRowAt(ts, k+n, tw, 4) {
			n += tw
		}
		if wgInRun4(v[k:], x, ts[k:k+n], c0, c1, h, w, ld, plane) {
			k += n
			continue
		}
		var r [6][]float32 // channel c0's 6 input rows; nil in the padding
		for i := range r {
			if yy := tl.y0 + i; yy >= 0 && yy < h {
				r[i] = x[tl.in+c0*hw+yy*w : tl.in+(c1-1)*hw+yy*w+w]
			}
		}
		if s.e == nil {
			s = wgRowScratch4(w)
		}
		wgInRows4(v[c0*ld+k:], plane, ld, r, hw, c1-c0, s, w, tw)
		k += tw
	}
}

// wgRowScratch4 returns a zeroed wgScratch for F(4×4, 3×3) on maps w
// wide: a zero row, and wgInRowGo4's 6 rows of Bᵀ·d, each 4·tw + 2 floats
// with zeros before and after the w columns (column j at 1 + j).
func wgRowScratch4(w int) wgScratch {
	return wgScratch{zero: make([]float32, w), e: make([]float32, 6*(4*((w+3)/4)+2))}
}

// wgInRowsGo4 is wgInRows4 in Go: for each of nc channels c, wgInRowGo4
// of the rows r[i][c·hw:][:w] (zero rows where r[i] is nil) into
// q[c·ld:].
func wgInRowsGo4(q []float32, plane, ld int, r [6][]float32, hw, nc int, s wgScratch, w, tw int) {
	for c := range nc {
		var rc [6][]float32
		wgChannelRows(rc[:], r[:], s.zero[:w], c*hw)
		wgInRowGo4(q[c*ld:], plane, rc, s.e, w, tw)
	}
}

// wgInRowGo4 transforms one whole row of tw tiles of one channel: Bᵀ·d on
// whole rows (r, 6 rows of w) into e, then ·B tile by tile, the tiles'
// columns 4t−1 … 4t+4 read from e's padded rows (wgRowScratch4), into q's
// 36 planes (plane apart). e's padding must be zero; it stays so.
func wgInRowGo4(q []float32, plane int, r [6][]float32, e []float32, w, tw int) {
	s := 4*tw + 2
	r0, r1, r2, r3, r4, r5 := r[0][:w], r[1][:w], r[2][:w], r[3][:w], r[4][:w], r[5][:w]
	e0, e1, e2, e3, e4, e5 := e[1:][:w], e[s+1:][:w], e[2*s+1:][:w], e[3*s+1:][:w], e[4*s+1:][:w], e[5*s+1:][:w]
	for j := range e0 {
		e0[j], e1[j], e2[j], e3[j], e4[j], e5[j] = wgB6(r0[j], r1[j], r2[j], r3[j], r4[j], r5[j])
	}
	for i := range 6 {
		ei := e[i*s:][:s]
		at := 6 * i * plane
		p0, p1, p2 := q[at:][:tw], q[at+plane:][:tw], q[at+2*plane:][:tw]
		p3, p4, p5 := q[at+3*plane:][:tw], q[at+4*plane:][:tw], q[at+5*plane:][:tw]
		for t := range p0 {
			d := ei[4*t:][:6]
			p0[t], p1[t], p2[t], p3[t], p4[t], p5[t] = wgB6(d[0], d[1], d[2], d[3], d[4], d[5])
		}
	}
}

// wgInTile4 writes Bᵀ·d·B of the one tile tl of the channel xc (h, w)
// into q's 36 planes (plane apart).
func wgInTile4(q, xc []float32, tl wgTile, h, w, plane int) {
	var d [36]float32 // the 6×6 block, zero in the padding
	wgLoadBlock(d[:], xc, tl, 6, h, w)
	var e [36]float32 // Bᵀ·d: the rows combined, column by column
	for j := range 6 {
		e[j], e[6+j], e[12+j], e[18+j], e[24+j], e[30+j] = wgB6(d[j], d[6+j], d[12+j], d[18+j], d[24+j], d[30+j])
	}
	_ = q[35*plane]
	for i := range 6 { // ·B: the columns combined, row by row; ξ = 6i + j
		r, at := e[6*i:][:6], 6*i*plane
		q[at], q[at+plane], q[at+2*plane], q[at+3*plane], q[at+4*plane], q[at+5*plane] = wgB6(r[0], r[1], r[2], r[3], r[4], r[5])
	}
}

// wgOutput4 is wgOutput for F(4×4, 3×3): 4×4 output tiles from 36 planes.
// Whole rows of tiles (wgRowAt) go to wgOutRows4, the rest tile by tile
// (wgOutTile4).
func wgOutput4(y, m []float32, ts []wgTile, o0, o1, h, w, ld, plane int, b []float32) {
	if o1 <= o0 {
		return
	}
	hw, tw := h*w, (w+3)/4
	var bo []float32
	if b != nil {
		bo = b[o0:o1]
	}
	for k := 0; k < len(ts); {
		tl := ts[k]
		oy, ox := tl.y0+1, tl.x0+1
		rows := min(4, h-oy)
		if !wgRowAt(ts, k, tw, 4) {
			for o := o0; o < o1; o++ {
				var bias float32
				if b != nil {
					bias = b[o]
				}
				wgOutTile4(y[tl.out+o*hw:], m[o*ld+k:], rows, min(4, w-ox), w, plane, bias)
			}
			k++
			continue
		}
		n := tw // the whole rows from k
		for k+n < len(ts) && wgRowAt(ts, k+n, tw, 4) {
			n += tw
		}
		if wgOutRun4(y, m[k:], ts[k:k+n], o0, o1, h, w, ld, plane, b) {
			k += n
			continue
		}
		at := tl.out + o0*hw
		wgOutRows4(y[at:tl.out+(o1-1)*hw+rows*w], m[o0*ld+k:], plane, ld, hw, o1-o0, w, tw, rows, bo)
		k += tw
	}
}

// wgOutRowsGo4 is wgOutRows4 in Go: for each of nc channels c, the
// outputs of a whole row of tw tiles from q[c·ld:]'s 36 planes (plane
// apart) into rows (1 to 4) rows of w at y[c·hw:], plus b[c] (b may be
// nil).
func wgOutRowsGo4(y, q []float32, plane, ld, hw, nc, w, tw, rows int, b []float32) {
	for c := range nc {
		var bias float32
		if b != nil {
			bias = b[c]
		}
		yc, qc := y[c*hw:], q[c*ld:]
		for t := range tw {
			wgOutTile4(yc[4*t:], qc[t:], rows, min(4, w-4*t), w, plane, bias)
		}
	}
}

// wgOutTile4 writes the outputs Aᵀ·m·A + bias of one tile from q's 36
// planes (plane apart) into yo, its first output in a map w wide: rows×cols
// of them (1 to 4 each; fewer than 4 at the map's bottom or right edge).
func wgOutTile4(yo, q []float32, rows, cols, w, plane int, bias float32) {
	_ = q[35*plane]
	// Aᵀ·m: the rows combined, column by column; ξ = 6i + j.
	t00, t10, t20, t30 := wgA6(q[0], q[6*plane], q[12*plane], q[18*plane], q[24*plane], q[30*plane])
	t01, t11, t21, t31 := wgA6(q[plane], q[7*plane], q[13*plane], q[19*plane], q[25*plane], q[31*plane])
	t02, t12, t22, t32 := wgA6(q[2*plane], q[8*plane], q[14*plane], q[20*plane], q[26*plane], q[32*plane])
	t03, t13, t23, t33 := wgA6(q[3*plane], q[9*plane], q[15*plane], q[21*plane], q[27*plane], q[33*plane])
	t04, t14, t24, t34 := wgA6(q[4*plane], q[10*plane], q[16*plane], q[22*plane], q[28*plane], q[34*plane])
	t05, t15, t25, t35 := wgA6(q[5*plane], q[11*plane], q[17*plane], q[23*plane], q[29*plane], q[35*plane])
	// ·A: the columns combined, row by row.
	var z [16]float32
	z[0], z[1], z[2], z[3] = wgA6(t00, t01, t02, t03, t04, t05)
	z[4], z[5], z[6], z[7] = wgA6(t10, t11, t12, t13, t14, t15)
	z[8], z[9], z[10], z[11] = wgA6(t20, t21, t22, t23, t24, t25)
	z[12], z[13], z[14], z[15] = wgA6(t30, t31, t32, t33, t34, t35)
	if rows == 4 && cols == 4 {
		_ = yo[3*w+3]
		for i := range 4 {
			r := yo[i*w:][:4]
			r[0], r[1], r[2], r[3] = z[4*i]+bias, z[4*i+1]+bias, z[4*i+2]+bias, z[4*i+3]+bias
		}
		return
	}
	for i := range rows {
		for j := range cols {
			yo[i*w+j] = z[4*i+j] + bias
		}
	}
}

package layers

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/gozoo/gozoo/internal/sgemm"
)

// The weight gradient of a 3×3 stride-1 padding-1 convolution on Winograd
// F(2×2, 3×3). The forward tile Y = Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A is linear in
// the filter g, so its adjoint is
//
//	dg = Gᵀ[Σ_tiles (A·dY·Aᵀ) ⊙ (Bᵀ·d·B)]G.
//
// Summed over the tiles, plane by plane, the 16 elementwise products become
// 16 GEMMs dU[ξ] (O, C) = M'[ξ] (O, tiles) · V[ξ]ᵀ (tiles, C), with V the
// forward pass's input transform and M' = A·dY·Aᵀ the adjoint of its output
// transform: 16 multiplications per tile and channel pair instead of 36.
// They run transposed, dU[ξ]ᵀ (C, O) = V[ξ] (C, tiles) · M'[ξ]ᵀ, M' being
// written tile by tile (tiles, O): the GEMM reads V in place and packs
// M'ᵀ by plain copies, where packing V transposed cost as much as a third
// of its multiplications (64 channels). dW = Gᵀ·dU·G then folds each 4×4
// back to 3×3.
//
// Where the direct path's sum Σ dy·x has no nonzero term, it is an exact
// 0; Winograd's is rounding noise (~1e-7 of the largest element) left by
// transforms that cancel. Adam turns any such noise into a full step of
// ±lr where PyTorch's is 0 (with ReLU's sparse maps and 2×2 feature maps,
// a third of a layer's elements: zoo/vgg's Adam fixtures). So the fold
// checks its tiny results against the inputs and sets to 0 those without
// a nonzero term (wgFilterAdjoint, wgSupport).

// wgGradWeight reports whether the float32 weight gradient of g runs on
// Winograd (winogradGradWeight, always F(2×2, 3×3)): whenever its forward
// pass runs on Winograd, F(2×2) or F(4×4). It transforms its own input
// blocks, so nothing ties it to the forward's algorithm.
func (g convGeom) wgGradWeight() bool { return g.winograd() }

// winogradGradWeight overwrites dw (O, C, 3, 3) with the weight gradient
// of the 3×3 stride-1 padding-1 convolution g, from its input x (N, C, H, W)
// and output gradient dy (N, O, H, W), on F(2×2, 3×3). Its scratch is
// wgShared's (dU in the slot of the transformed filters) and wgDWShared,
// or its own when they are in use.
//
// Tiles are processed in blocks of up to wgBlock, each in two phases
// spread over the CPUs: the transforms V (16, C, tiles) and M' (16, tiles,
// O) split by channel, then the GEMMs dU[ξ]ᵀ (C, O) += V[ξ]·M'[ξ]ᵀ split
// by ξ. dW is folded from dU by output channel.
func winogradGradWeight(g convGeom, dw, x, dy []float32) {
	s, kept := new(wgBufs), new(wgDWBufs)
	if wgShared.TryLock() {
		defer wgShared.Unlock()
		s, kept = &wgShared.wgBufs, &wgDWShared
	}
	const np = 16
	n, c, o, h, w := g.n, g.c, g.o, g.h, g.w
	th, tw := (h+1)/2, (w+1)/2
	tiles := n * th * tw
	blocks := (tiles + wgBlock(c, o, np) - 1) / wgBlock(c, o, np)
	tb := (tiles + blocks - 1) / blocks
	// Planes padded by 64 bytes, as in wgConv (dU's too: the fold reads
	// its 16 planes side by side).
	vp, mp, up := c*tb+16, tb*o+16, wgDUPlane(o, c)
	v, m, du := wgGrow(&s.v, np*vp), wgGrow(&s.m, np*mp), wgGrow(&s.u, np*up)
	ts := wgGrow(&s.ts, tb)
	// The phases, made once for every block: they read its cnt and beta.
	// Both transforms run in one phase, over the input channels and then
	// the output channels.
	var cnt int
	var beta float32
	transforms := func(lo, hi int) {
		if lo < c {
			wgF2.input(v, x, ts[:cnt], lo, min(hi, c), h, w, tb, vp)
		}
		if hi > c {
			wgOutputAdjoint(m, dy, ts[:cnt], max(lo, c)-c, hi-c, h, w, o, mp)
		}
	}
	gemms := func(lo, hi int) {
		for xi := lo; xi < hi; xi++ {
			sgemm.SgemmSerial(false, false, c, o, cnt, 1, v[xi*vp:][:c*tb], tb,
				m[xi*mp:][:cnt*o], o, beta, du[xi*up:][:c*o], o)
		}
	}
	for t0 := 0; t0 < tiles; t0 += tb {
		cnt = min(tb, tiles-t0)
		wgTiles(ts[:cnt], t0, 2, c, o, h, w)
		wgSplit(c+o, (c+o)*cnt, transforms)
		wgSplit(np, o*c*cnt, gemms)
		beta = 1
	}
	segs := (c + wgZeroSeg - 1) / wgZeroSeg
	all := wgGrow(&kept.taps, c+o+o*segs)
	taps := all[:c]
	clear(taps)
	sup := &wgSupport{g: g, x: x, dy: dy, buf: &kept.masks, taps: taps, top: all[c:][:o], least: all[c+o:][:o*segs]}
	rows := (o + wgFoldRows - 1) / wgFoldRows
	wgSplit(rows, np*o*c, func(lo, hi int) {
		wgFilterAdjoint(g, dw, du, sup, lo*wgFoldRows, min(hi*wgFoldRows, o))
	})
}

// wgDWBufs is winogradGradWeight's scratch besides wgBufs: wgSupport's
// masks and taps. Buffers only grow.
type wgDWBufs struct {
	masks []uint64
	taps  []uint32 // and wgFilterAdjoint's top and least
}

// wgDWShared is kept with wgShared's buffers and guarded by its lock.
var wgDWShared wgDWBufs

// wgZeroTol bounds the results that wgFilterAdjoint checks for an exact
// 0: at most this fraction of their output channel's largest. Winograd's
// noise in place of an exact 0 was at most 4.6e-7 of it in zoo/vgg's
// fixtures. (Scaled by the largest dU of the (o, c) pair instead, the
// noise reached 4e-6, and a bound of 1e-3 took in 5% of vgg16_bn's
// gradient, whose BatchNorm makes dy zero-mean and dW ≪ dU: checking them
// cost more than the fold.)
const wgZeroTol = 1e-4

// wgSupport answers whether the weight gradient's sum for output channel
// o, input channel c and tap (a, b) of g,
// Σ dy[n, o, i, j]·x[n, c, i+a−1, j+b−1] over the images and the pixels
// where both exist, has a term whose factors are both nonzero (meets). x
// is (N, C, H, W), dy (N, O, H, W).
//
// It scans wgQuickChecks pixels first, which on dense maps finds such a
// term at once. Past them it tests, image by image, the masks of nonzero
// pixels of x and dy, built on first need (and once: meets is safe for
// concurrent use) into buf: per image and channel, the map padded by one
// pixel on every side, pixel (i, j) at bit (i+1)·(w+2) + j+1, so that a
// tap is a shift of the whole mask; it skips the images where x's channel
// is all 0. Scanning pixels alone, a layer whose input channels were
// nearly dead (one nonzero pixel in the whole batch) took 20× as long as
// the direct path (64→64, 32×32, batch 64); with the masks, 1.4×.
//
// Where dy's channel o has no zero at all (dyFull: BatchNorm's gradient),
// the answer depends on c and the tap only: whether x's channel c has a
// nonzero pixel that the tap pairs with some output (xTaps, computed once
// per channel on first need into taps and shared by every o).
type wgSupport struct {
	g     convGeom
	x, dy []float32
	buf   *[]uint64
	taps  []uint32 // (C): xTaps' results, 0 until known; zeroed by the caller

	// top (O) and least (O, ⌈C/wgZeroSeg⌉) are wgFilterAdjoint's, per row
	// of dW and per segment of a row.
	top, least []uint32

	once   sync.Once
	words  int      // per mask
	xm, dm []uint64 // (N, C, words) and (N, O, words)
	xany   []uint64 // bit n·C + c: x[n, c] has a nonzero pixel
}

// wgTapsKnown marks a result of xTaps as computed (taps' entries are 0
// until then).
const wgTapsKnown = 1 << 9

// dyFull reports whether dy's channel o has no zero in any image.
func (s *wgSupport) dyFull(o int) bool {
	hw := s.g.h * s.g.w
	for n := range s.g.n {
		for _, v := range s.dy[(n*s.g.o+o)*hw:][:hw] {
			if v == 0 {
				return false
			}
		}
	}
	return true
}

// xTaps returns the taps (a, b) of g, bit 3a+b, for which x's channel c
// has a nonzero pixel that the tap pairs with an output pixel in some
// image, with wgTapsKnown set: where dy is full, the taps whose sums have
// a nonzero term. Pixel (i, j) pairs with output (i−a+1, j−b+1), so row 0
// serves taps a ≤ 1, row h−1 taps a ≥ 1, the others all three (columns
// alike); the scan stops once all 9 are found. It is safe for concurrent
// use: a result computed twice is the same.
func (s *wgSupport) xTaps(c int) uint32 {
	if t := atomic.LoadUint32(&s.taps[c]); t != 0 {
		return t
	}
	g := s.g
	hw := g.h * g.w
	var t uint32
	for n := range g.n {
		xc := s.x[(n*g.c+c)*hw:][:hw]
		for i := range g.h {
			rows := wgEdgeTaps(i, g.h)
			for j, v := range xc[i*g.w:][:g.w] {
				if v != 0 {
					cols := wgEdgeTaps(j, g.w)
					t |= (rows&1)*cols | (rows>>1&1)*cols<<3 | (rows>>2)*cols<<6
				}
			}
		}
		if t == 1<<9-1 {
			break
		}
	}
	t |= wgTapsKnown
	atomic.StoreUint32(&s.taps[c], t)
	return t
}

// wgEdgeTaps returns the tap offsets a (bit a) that pair pixel row i of
// a map of h rows with an output row: a = 0 unless i is the last row, 1,
// and 2 unless it is the first.
func wgEdgeTaps(i, h int) uint32 {
	t := uint32(2)
	if i < h-1 {
		t |= 1
	}
	if i > 0 {
		t |= 4
	}
	return t
}

// wgQuickChecks is the number of pixels wgSupport.meets scans before it
// turns to the masks.
const wgQuickChecks = 64

func (s *wgSupport) meets(o, c, a, b int) bool {
	if m, sure := s.quick(o, c, a, b); sure {
		return m
	}
	return s.meetsMasks(o, c, a, b)
}

// quick is meets on the first wgQuickChecks pixels: sure is false when
// they do not settle it.
func (s *wgSupport) quick(o, c, a, b int) (meets, sure bool) {
	g := s.g
	hw := g.h * g.w
	i0, i1 := max(0, 1-a), min(g.h, g.h+1-a)
	j0, j1 := max(0, 1-b), min(g.w, g.w+1-b)
	checks := 0
	for n := range g.n {
		d, xc := s.dy[(n*g.o+o)*hw:][:hw], s.x[(n*g.c+c)*hw:][:hw]
		for i := i0; i < i1; i++ {
			for j := j0; j < j1; j++ {
				if d[i*g.w+j] != 0 && xc[(i+a-1)*g.w+j+b-1] != 0 {
					return true, true
				}
				if checks++; checks == wgQuickChecks {
					return false, false
				}
			}
		}
	}
	return false, true
}

// meetsMasks is meets on the masks.
func (s *wgSupport) meetsMasks(o, c, a, b int) bool {
	s.once.Do(s.build)
	g := s.g
	shift := (a-1)*(g.w+2) + b - 1
	for n := range g.n {
		if i := n*g.c + c; s.xany[i>>6]&(1<<(i&63)) == 0 {
			continue
		}
		xm := s.xm[(n*g.c+c)*s.words:][:s.words]
		for k, d := range s.dm[(n*g.o+o)*s.words:][:s.words] {
			if d != 0 && d&wgBitsAt(xm, 64*k+shift) != 0 {
				return true
			}
		}
	}
	return false
}

// build fills the masks.
func (s *wgSupport) build() {
	g := s.g
	wp := g.w + 2
	s.words = ((g.h+2)*wp + 63) / 64
	nx, nd, na := g.n*g.c*s.words, g.n*g.o*s.words, (g.n*g.c+63)/64
	m := wgGrow(s.buf, nx+nd+na)
	clear(m)
	s.xm, s.dm, s.xany = m[:nx], m[nx:nx+nd], m[nx+nd:]
	hw := g.h * g.w
	for _, t := range []struct {
		dst []uint64
		src []float32
	}{{s.xm, s.x}, {s.dm, s.dy}} {
		for k := range len(t.src) / hw {
			dst, src := t.dst[k*s.words:][:s.words], t.src[k*hw:][:hw]
			for i := range g.h {
				for j, v := range src[i*g.w:][:g.w] {
					if v != 0 {
						p := (i+1)*wp + j + 1
						dst[p>>6] |= 1 << (p & 63)
					}
				}
			}
		}
	}
	for k := range g.n * g.c {
		for _, v := range s.xm[k*s.words:][:s.words] {
			if v != 0 {
				s.xany[k>>6] |= 1 << (k & 63)
				break
			}
		}
	}
}

// wgBitsAt returns the 64 bits of the bitset m from bit p on (bit p
// lowest); bits outside m, p negative included, are 0.
func wgBitsAt(m []uint64, p int) uint64 {
	q, r := p>>6, uint(p&63)
	var bits uint64
	if q >= 0 && q < len(m) {
		bits = m[q] >> r
	}
	if r != 0 && q+1 >= 0 && q+1 < len(m) {
		bits |= m[q+1] << (64 - r)
	}
	return bits
}

// wgOutputAdjoint writes A·dY·Aᵀ of the 2×2 output gradients dY of the
// tiles ts, output channels [o0, o1) of dy (n, cout, h, w), into m: 16
// planes (tiles, ld) plane floats apart, channel o of tile k at
// m[ξ·plane + k·ld + o]. Outputs past the map's right or bottom edge,
// which the forward pass drops, count as 0. It is the adjoint of wgOutput.
func wgOutputAdjoint(m, dy []float32, ts []wgTile, o0, o1, h, w, ld, plane int) {
	n := o1 - o0
	if n <= 0 {
		return
	}
	hw := h * w
	for k, tl := range ts {
		// The tile's outputs that exist: right (dx), below (dy) and both.
		oy, ox := tl.y0+1, tl.x0+1
		right, below := ox+1 < w, oy+1 < h
		// The 16 planes' rows for this tile, all n long, so that the
		// stores need no bounds checks.
		q := m[k*ld+o0:]
		q0, q1, q2, q3 := q[:n], q[plane:][:n], q[2*plane:][:n], q[3*plane:][:n]
		q4, q5, q6, q7 := q[4*plane:][:n], q[5*plane:][:n], q[6*plane:][:n], q[7*plane:][:n]
		q8, q9, q10, q11 := q[8*plane:][:n], q[9*plane:][:n], q[10*plane:][:n], q[11*plane:][:n]
		q12, q13, q14, q15 := q[12*plane:][:n], q[13*plane:][:n], q[14*plane:][:n], q[15*plane:][:n]
		d := dy[tl.out+o0*hw:]
		for j := range q0 {
			var d00, d01, d10, d11 float32
			if right && below {
				dj := d[j*hw:][:w+2]
				d00, d01, d10, d11 = dj[0], dj[1], dj[w], dj[w+1]
			} else {
				dj := d[j*hw:]
				d00 = dj[0]
				if right {
					d01 = dj[1]
				}
				if below {
					d10 = dj[w]
				}
			}
			// A·dY: the two rows spread over four, column by column.
			t00, t10, t20, t30 := wgAAdj(d00, d10)
			t01, t11, t21, t31 := wgAAdj(d01, d11)
			// ·Aᵀ: row by row; ξ = 4i + j.
			q0[j], q1[j], q2[j], q3[j] = wgAAdj(t00, t01)
			q4[j], q5[j], q6[j], q7[j] = wgAAdj(t10, t11)
			q8[j], q9[j], q10[j], q11[j] = wgAAdj(t20, t21)
			q12[j], q13[j], q14[j], q15[j] = wgAAdj(t30, t31)
		}
	}
}

// wgAAdj is A·(a, b): the adjoint of wgA.
func wgAAdj(a, b float32) (float32, float32, float32, float32) {
	return a, a + b, a - b, -b
}

// wgDUPlane is the distance between dU's 16 (C, O) planes: padded by 64
// bytes, without which the fold's 16 loads of a (o, c) pair all fall in
// the same L1 cache set (wgFilterAdjoint took 72% of the time on 2×2 maps
// with 512 channels).
func wgDUPlane(o, c int) int { return o*c + 16 }

// wgFoldRows is the number of output channels in the fold's unit of
// work: dU's (C, O) planes hold them in one cache line per input channel.
const wgFoldRows = 16

// wgFilterAdjoint writes dW = Gᵀ·dU·G, the adjoint of wgFilter, for output
// channels [o0, o1) of g into dw (O, C, 3, 3) from du (16 planes (C, O),
// wgDUPlane apart). A result under wgZeroTol of its row's largest whose
// sum Σ dy·x has no nonzero term (sup) is set to 0, as the direct path
// gives it.
func wgFilterAdjoint(g convGeom, dw, du []float32, sup *wgSupport, o0, o1 int) {
	const sign = 1 << 31
	c, o := g.c, g.o
	p := wgDUPlane(o, c)
	// The rows' largest |v|, and their segments' smallest nonzero one less
	// 1, as bits (their order is the floats' for |v|, and a 0 wraps to the
	// largest), kept without branches as the rows are folded: a separate
	// pass over the rows, out of L2 by then, took as long as the fold (512
	// channels), and the segments spare wgZeroUnmet most of the row where
	// little of it is small.
	segs := (c + wgZeroSeg - 1) / wgZeroSeg
	top, least := sup.top[o0:o1], sup.least[o0*segs:o1*segs]
	clear(top)
	for i := range least {
		least[i] = math.MaxUint32
	}
	// Input channel by input channel, the rows side by side, so that dU's
	// planes are read in order: row by row, each row read 16 strided
	// streams and took 2.7 times as long (512 channels, 2×2 maps).
	for q := range c {
		sl := least[q/wgZeroSeg:]
		for r := o0; r < o1; r++ {
			e := du[q*o+r:]
			// Gᵀ·dU: the 4 rows folded to 3, column by column.
			t00, t10, t20 := wgGAdj(e[0], e[4*p], e[8*p], e[12*p])
			t01, t11, t21 := wgGAdj(e[p], e[5*p], e[9*p], e[13*p])
			t02, t12, t22 := wgGAdj(e[2*p], e[6*p], e[10*p], e[14*p])
			t03, t13, t23 := wgGAdj(e[3*p], e[7*p], e[11*p], e[15*p])
			// ·G: the 4 columns folded to 3, row by row.
			k := dw[(r*c+q)*9:][:9]
			k[0], k[1], k[2] = wgGAdj(t00, t01, t02, t03)
			k[3], k[4], k[5] = wgGAdj(t10, t11, t12, t13)
			k[6], k[7], k[8] = wgGAdj(t20, t21, t22, t23)
			a0, a1, a2 := math.Float32bits(k[0])&^sign, math.Float32bits(k[1])&^sign, math.Float32bits(k[2])&^sign
			a3, a4, a5 := math.Float32bits(k[3])&^sign, math.Float32bits(k[4])&^sign, math.Float32bits(k[5])&^sign
			a6, a7, a8 := math.Float32bits(k[6])&^sign, math.Float32bits(k[7])&^sign, math.Float32bits(k[8])&^sign
			i := r - o0
			top[i] = max(top[i], a0, a1, a2, a3, a4, a5, a6, a7, a8)
			sl[i*segs] = min(sl[i*segs], a0-1, a1-1, a2-1, a3-1, a4-1, a5-1, a6-1, a7-1, a8-1)
		}
	}
	for r := o0; r < o1; r++ {
		i := r - o0
		tiny := math.Float32bits(wgZeroTol * math.Float32frombits(top[i]))
		wgZeroUnmet(dw[r*c*9:][:c*9], least[i*segs:][:segs], tiny, r, sup)
	}
}

// wgZeroUnmet sets to 0 the elements of row o of dW, row (C·9), at most
// tiny (as bits of |v|) and not 0 whose sums have no nonzero term (sup).
// least holds the smallest nonzero |v| less 1 (as bits) of each of the
// row's segments of wgZeroSeg input channels: it screens only those with
// an element at most tiny, gathering the elements without branches, and
// asks sup: by xTaps once dy's channel o is known to be full, else by
// quick, then meetsMasks. It scans dy's channel for dyFull when a segment
// has so many elements that their wgQuickChecks could cost more, or
// before the first meetsMasks (which builds the masks from all of x and
// dy: 64→64 32×32 layers with dead input channels took twice the time of
// dense ones).
func wgZeroUnmet(row []float32, least []uint32, tiny uint32, o int, sup *wgSupport) {
	const sign = 1 << 31
	const n = 9 * wgZeroSeg
	var idx [n]int32
	full, known := false, false
	scan := sup.g.n * sup.g.h * sup.g.w
	for s, l := range least {
		if l >= tiny {
			continue
		}
		i0 := s * n
		k := 0
		for i, v := range row[i0:min(i0+n, len(row))] {
			// |v|−1 < tiny, unsigned: 0 < |v| ≤ tiny.
			idx[k] = int32(i0 + i)
			k += int((uint64(math.Float32bits(v)&^sign-1) - uint64(tiny)) >> 63)
		}
		if !known && k*wgQuickChecks >= scan {
			full, known = sup.dyFull(o), true
		}
		for _, i := range idx[:k] {
			c, t := int(i)/9, int(i)%9
			meets, sure := false, false
			if !full {
				meets, sure = sup.quick(o, c, t/3, t%3)
			}
			if !sure && !known {
				full, known = sup.dyFull(o), true
			}
			switch {
			case sure:
			case full:
				meets = sup.xTaps(c)&(1<<t) != 0
			default:
				meets = sup.meetsMasks(o, c, t/3, t%3)
			}
			if !meets {
				row[i] = 0
			}
		}
	}
}

// wgZeroSeg is the number of input channels in a segment of a row of dW
// that wgZeroUnmet screens as a whole or skips.
const wgZeroSeg = 16

// wgGAdj is Gᵀ·(a, b, c, d): the adjoint of wg3.
func wgGAdj(a, b, c, d float32) (float32, float32, float32) {
	return a + 0.5*(b+c), 0.5 * (b - c), 0.5*(b+c) + d
}

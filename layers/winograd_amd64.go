//go:build amd64 && !purego

package layers

import (
	"math"
	"sync"

	"golang.org/x/sys/cpu"
)

//go:generate go run winograd_asm_gen.go

// wgTables is the memory of the gather, scatter and run kernels' offset
// tables. They are rebuilt at every call (from the tiles of the block and
// the channels of the chunk), into memory taken from wgTablePool, so that a
// training step allocates none.
type wgTables struct {
	i32 []int32
	i64 []int64
	msk []uint16
}

var wgTablePool = sync.Pool{New: func() any { return new(wgTables) }}

// wgTablesGet returns pooled tables with n32 int32, n64 int64 and nm
// mask entries, all zero; give them back with wgTablePool.Put.
func wgTablesGet(n32, n64, nm int) *wgTables {
	t := wgTablePool.Get().(*wgTables)
	t.i32, t.i64, t.msk = wgZeroed(t.i32, n32), wgZeroed(t.i64, n64), wgZeroed(t.msk, nm)
	return t
}

// wgZeroed returns buf[:n] cleared, reallocating when its capacity is
// short.
func wgZeroed[E int32 | int64 | uint16](buf []E, n int) []E {
	if cap(buf) < n {
		return make([]E, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}

// The AVX-512 row kernels of F(2×2, 3×3)'s tile transforms
// (winograd_amd64.s): wgInRowGo and wgOutRowGo on 16 tiles at a time,
// with the same operations in the same order (bit-identical results).

//go:noescape
func wgInRowAVX512(q *float32, plane, ld int, r0, r1, r2, r3 *float32, s0, s1, s2, s3, nc, w, tw int)

//go:noescape
func wgOutRowAVX512(y0, y1, q *float32, plane, ld, hw, nc, tw, w int, bias *float32)

//go:noescape
func wgFilterAVX512(u, w *float32, o, c, lo, hi int)

//go:noescape
func wgInGatherAVX512(q *float32, plane, ld int, x *float32, hw, c0, c1 int, idx *int32, msk *uint16, n int)

//go:noescape
func wgOutScatterAVX512(y, q *float32, plane, ld, hw, o0, o1 int, idx *int32, msk *uint16, n int, bias *float32)

// wgAVX512 puts F(2×2, 3×3)'s transforms on the AVX-512 kernels; tests
// turn it off to compare them with the Go code. cpu.X86.HasAVX512F is only
// true when the OS saves the AVX-512 state.
var wgAVX512 = cpu.X86.HasAVX512F

// wgInRows transforms one whole row of tiles of nc channels (see
// wgInRowsGo): on AVX-512 in assembly, else in Go.
func wgInRows(q []float32, plane, ld int, r [4][]float32, hw, nc int, s wgScratch, w, tw int) {
	if !wgAVX512 {
		wgInRowsGo(q, plane, ld, r, hw, nc, s, w, tw)
		return
	}
	// The kernel reads r[i][c·hw:][:w] (or s.zero[:w], not moving on) and
	// writes q[c·ld + ξ·plane + t] for c < nc, t < tw.
	var p [4]*float32
	var st [4]int
	wgRowPointers(p[:], st[:], r[:], s.zero[:w], hw, nc)
	_ = q[(nc-1)*ld+15*plane+tw-1]
	wgInRowAVX512(&q[0], plane, ld, p[0], p[1], p[2], p[3], st[0], st[1], st[2], st[3], nc, w, tw)
}

// wgRowPointers sets p[i] and st[i] to the first element and the channel
// stride (hw) of the input rows r[i] of nc channels, checking that they
// hold nc channels of len(zero) floats, or to zero's and 0 where r[i] is
// nil (the padding): the row arguments of the input row kernels.
func wgRowPointers(p []*float32, st []int, r [][]float32, zero []float32, hw, nc int) {
	for i := range r {
		p[i], st[i] = &zero[0], 0
		if r[i] != nil {
			_ = r[i][(nc-1)*hw+len(zero)-1]
			p[i], st[i] = &r[i][0], hw
		}
	}
}

// wgOutRows writes the outputs of one whole row of tiles of nc channels
// (see wgOutRowsGo): on AVX-512 in assembly, else in Go.
func wgOutRows(y0, y1, q []float32, plane, ld, hw, nc, w, tw int, b []float32) {
	if !wgAVX512 {
		wgOutRowsGo(y0, y1, q, plane, ld, hw, nc, w, tw, b)
		return
	}
	// The kernel reads q[c·ld + ξ·plane + t] for t < tw and b[c], and
	// writes y0[c·hw:][:w] and y1[c·hw:][:w] (unless y1 is nil), c < nc.
	_, _ = q[(nc-1)*ld+15*plane+tw-1], y0[(nc-1)*hw+w-1]
	var p1, bp *float32
	if y1 != nil {
		_ = y1[(nc-1)*hw+w-1]
		p1 = &y1[0]
	}
	if b != nil {
		bp = &b[:nc][0]
	}
	wgOutRowAVX512(&y0[0], p1, &q[0], plane, ld, hw, nc, tw, w, bp)
}

// wgInGather is wgInput on wgInGatherAVX512, every tile of ts 16 at a
// time, whatever its place: it reports false, doing nothing, without
// AVX-512 or when x is too long for the kernel's int32 offsets.
func wgInGather(v, x []float32, ts []wgTile, c0, c1, h, w, ld, plane int) bool {
	if !wgAVX512 || len(x) > math.MaxInt32 || len(ts) == 0 || c1 <= c0 {
		return false
	}
	hw := h * w
	groups := (len(ts) + 15) / 16
	tab := wgTablesGet(256*groups, 0, 16*groups)
	defer wgTablePool.Put(tab)
	idx, msk := tab.i32, tab.msk
	for k, tl := range ts {
		g, l := k/16, k%16
		_ = x[tl.in+c1*hw-1]
		for i := range 4 {
			yy := tl.y0 + i
			if yy < 0 || yy >= h {
				continue
			}
			for j := range 4 {
				if xx := tl.x0 + j; xx >= 0 && xx < w {
					xi := 4*i + j
					idx[256*g+16*xi+l] = int32(tl.in + yy*w + xx)
					msk[16*g+xi] |= 1 << l
				}
			}
		}
	}
	_ = v[15*plane+(c1-1)*ld+len(ts)-1]
	wgInGatherAVX512(&v[0], plane, ld, &x[0], hw, c0, c1, &idx[0], &msk[0], len(ts))
	return true
}

// wgOutScatter is wgOutput on wgOutScatterAVX512, every tile of ts 16 at
// a time: it reports false, doing nothing, without AVX-512 or when y is
// too long for the kernel's int32 offsets.
func wgOutScatter(y, m []float32, ts []wgTile, o0, o1, h, w, ld, plane int, b []float32) bool {
	if !wgAVX512 || len(y) > math.MaxInt32 || len(ts) == 0 || o1 <= o0 {
		return false
	}
	hw := h * w
	groups := (len(ts) + 15) / 16
	tab := wgTablesGet(64*groups, 0, 4*groups)
	defer wgTablePool.Put(tab)
	idx, msk := tab.i32, tab.msk
	for k, tl := range ts {
		g, l := k/16, k%16
		oy, ox := tl.y0+1, tl.x0+1
		right, below := ox+1 < w, oy+1 < h
		_ = y[tl.out+(o1-1)*hw]
		for p, on := range [4]bool{true, right, below, right && below} {
			if on {
				_ = y[tl.out+(o1-1)*hw+(p/2)*w+p%2]
				idx[64*g+16*p+l] = int32(tl.out + (p/2)*w + p%2)
				msk[4*g+p] |= 1 << l
			}
		}
	}
	_ = m[15*plane+(o1-1)*ld+len(ts)-1]
	var bp *float32
	if b != nil {
		bp = &b[:o1][0]
	}
	wgOutScatterAVX512(&y[0], &m[0], plane, ld, hw, o0, o1, &idx[0], &msk[0], len(ts), bp)
	return true
}

// wgFilterRows is wgFilter's work on output channels [lo, hi) on
// wgFilterAVX512: it reports false, doing nothing, without AVX-512.
func wgFilterRows(u, w []float32, o, c, lo, hi int) bool {
	if !wgAVX512 || lo >= hi {
		return false
	}
	_, _ = u[16*o*c-1], w[9*o*c-1]
	wgFilterAVX512(&u[0], &w[0], o, c, lo, hi)
	return true
}

//go:noescape
func wgInRow4AVX512(q *float32, plane, ld int, r0, r1, r2, r3, r4, r5 *float32, s0, s1, s2, s3, s4, s5, nc, w, tw int)

//go:noescape
func wgOutRow4AVX512(y, q *float32, plane, ld, hw, nc, w, tw, rows int, bias *float32)

// wgInRows4 transforms one whole row of F(4×4, 3×3) tiles of nc channels
// (see wgInRowsGo4): on AVX-512 in assembly, else in Go.
func wgInRows4(q []float32, plane, ld int, r [6][]float32, hw, nc int, s wgScratch, w, tw int) {
	if !wgAVX512 {
		wgInRowsGo4(q, plane, ld, r, hw, nc, s, w, tw)
		return
	}
	// The kernel reads r[i][c·hw:][:w] (or s.zero[:w], not moving on) and
	// writes q[c·ld + ξ·plane + t] for c < nc, t < tw.
	var p [6]*float32
	var st [6]int
	wgRowPointers(p[:], st[:], r[:], s.zero[:w], hw, nc)
	_ = q[(nc-1)*ld+35*plane+tw-1]
	wgInRow4AVX512(&q[0], plane, ld, p[0], p[1], p[2], p[3], p[4], p[5], st[0], st[1], st[2], st[3], st[4], st[5], nc, w, tw)
}

// wgOutRows4 writes the outputs of one whole row of F(4×4, 3×3) tiles of
// nc channels (see wgOutRowsGo4): on AVX-512 in assembly, else in Go.
func wgOutRows4(y, q []float32, plane, ld, hw, nc, w, tw, rows int, b []float32) {
	if !wgAVX512 {
		wgOutRowsGo4(y, q, plane, ld, hw, nc, w, tw, rows, b)
		return
	}
	// The kernel reads q[c·ld + ξ·plane + t] for t < tw and b[c], and
	// writes y[c·hw:][:rows·w], c < nc.
	_, _ = q[(nc-1)*ld+35*plane+tw-1], y[(nc-1)*hw+rows*w-1]
	var bp *float32
	if b != nil {
		bp = &b[:nc][0]
	}
	wgOutRow4AVX512(&y[0], &q[0], plane, ld, hw, nc, w, tw, rows, bp)
}

// The run kernels of F(4×4, 3×3), reading (writing) each vector in 1, 2
// or 4 parts (none, H, Q): see wgRun4.

//go:noescape
func wgInRun4AVX512(q *float32, plane, ld int, x *float32, hw, c0, c1 int, off *int64, msk *uint16, n, m0, m5 int)

//go:noescape
func wgInRun4HAVX512(q *float32, plane, ld int, x *float32, hw, c0, c1 int, off *int64, msk *uint16, n, m0, m5 int)

//go:noescape
func wgInRun4QAVX512(q *float32, plane, ld int, x *float32, hw, c0, c1 int, off *int64, msk *uint16, n, m0, m5 int)

//go:noescape
func wgOutRun4AVX512(y, q *float32, plane, ld, hw, o0, o1 int, off *int64, msk *uint16, n int, bias *float32)

//go:noescape
func wgOutRun4HAVX512(y, q *float32, plane, ld, hw, o0, o1 int, off *int64, msk *uint16, n int, bias *float32)

//go:noescape
func wgOutRun4QAVX512(y, q *float32, plane, ld, hw, o0, o1 int, off *int64, msk *uint16, n int, bias *float32)

// wgRun4Parts is the number of parts of 16/parts lanes, each from one row
// of tw tiles, in which the run kernels read or write a vector of 16
// columns: 1 for rows of 4 tiles (16 columns) or more, 2 for rows of 2, 4
// for single tiles.
func wgRun4Parts(tw int) int { return max(1, 4/tw) }

// wgRun4 builds the table of the run kernels (winograd_asm_gen.go) for
// ts, whole rows of tw = 1, 2, 4 or 8 F(4×4, 3×3) tiles one after
// another, laid side by side 16 tiles at a time: for each group of 16
// tiles, per row r of rows (the tiles' input rows, 6, or output rows, 4),
// each of the 4 vectors v of 16 columns and each of its wgRun4Parts
// parts, the offset (floats, from the channel's start) of the tile row's
// data, less the part's first lane, and the mask of its lanes, in the
// pooled tables' i64 and msk (give them back to wgTablePool after the
// kernel). at(tl, r) returns the offset of row r of the tile tl and whether
// it lies in the map.
func wgRun4(ts []wgTile, w, tw, rows int, at func(tl wgTile, r int) (int, bool)) *wgTables {
	groups := (len(ts) + 15) / 16
	parts := wgRun4Parts(tw)
	lanes := 16 / parts
	ent := parts * 4 * rows
	tab := wgTablesGet(0, ent*groups, ent*groups)
	off, msk := tab.i64, tab.msk
	for g := range groups {
		for v := range 4 {
			for h := range parts {
				vc := 16*v + lanes*h // the column of lane lanes·h among the 64
				k := 16*g + vc/(4*tw)*tw
				if k >= len(ts) {
					continue
				}
				col := vc % (4 * tw)
				var m uint16
				for l := range lanes {
					if col+l < w {
						m |= 1 << (lanes*h + l)
					}
				}
				for r := range rows {
					if o, ok := at(ts[k], r); ok {
						e := ent*g + parts*(rows*v+r) + h
						off[e], msk[e] = int64(o+col-lanes*h), m
					}
				}
			}
		}
	}
	return tab
}

// wgRun4Tiles reports whether wgInRun4 and wgOutRun4 take rows of tw
// tiles.
func wgRun4Tiles(tw int) bool { return wgAVX512 && (tw == 1 || tw == 2 || tw == 4 || tw == 8) }

// wgInRun4 writes the input transform of ts, whole rows of tw tiles one
// after another (see wgRun4), channels [c0, c1) of x, into q (tile ts[0]
// at q[0]) on wgInRun4AVX512: it reports false, doing nothing, unless
// wgRun4Tiles(tw).
func wgInRun4(q, x []float32, ts []wgTile, c0, c1, h, w, ld, plane int) bool {
	tw := (w + 3) / 4
	if !wgRun4Tiles(tw) || len(ts) == 0 || c1 <= c0 {
		return false
	}
	hw := h * w
	tab := wgRun4(ts, w, tw, 6, func(tl wgTile, r int) (int, bool) {
		_ = x[tl.in+c1*hw-1]
		yy := tl.y0 + r
		return tl.in + yy*w, yy >= 0 && yy < h
	})
	var m0, m5 int // the lanes of tiles with a left (right) neighbour
	for l := range 16 {
		if l%tw != 0 {
			m0 |= 1 << l
		}
		if l%tw != tw-1 {
			m5 |= 1 << l
		}
	}
	_ = q[(c1-1)*ld+35*plane+len(ts)-1]
	kernel := [...]func(q *float32, plane, ld int, x *float32, hw, c0, c1 int, off *int64, msk *uint16, n, m0, m5 int){
		1: wgInRun4AVX512, 2: wgInRun4HAVX512, 4: wgInRun4QAVX512}[wgRun4Parts(tw)]
	kernel(&q[0], plane, ld, &x[0], hw, c0, c1, &tab.i64[0], &tab.msk[0], len(ts), m0, m5)
	wgTablePool.Put(tab)
	return true
}

// wgOutRun4 writes the outputs of ts, whole rows of tw tiles one after
// another (see wgRun4), output channels [o0, o1), from q (tile ts[0] at
// q[0]) into y, plus b (b may be nil), on wgOutRun4AVX512: it reports
// false, doing nothing, unless wgRun4Tiles(tw).
func wgOutRun4(y, q []float32, ts []wgTile, o0, o1, h, w, ld, plane int, b []float32) bool {
	tw := (w + 3) / 4
	if !wgRun4Tiles(tw) || len(ts) == 0 || o1 <= o0 {
		return false
	}
	hw := h * w
	tab := wgRun4(ts, w, tw, 4, func(tl wgTile, r int) (int, bool) {
		_ = y[tl.out+(o1-1)*hw+min(3, h-1-tl.y0-1)*w+w-1]
		return tl.out + r*w, tl.y0+1+r < h
	})
	_ = q[(o1-1)*ld+35*plane+len(ts)-1]
	var bp *float32
	if b != nil {
		bp = &b[:o1][0]
	}
	kernel := [...]func(y, q *float32, plane, ld, hw, o0, o1 int, off *int64, msk *uint16, n int, bias *float32){
		1: wgOutRun4AVX512, 2: wgOutRun4HAVX512, 4: wgOutRun4QAVX512}[wgRun4Parts(tw)]
	kernel(&y[0], &q[0], plane, ld, hw, o0, o1, &tab.i64[0], &tab.msk[0], len(ts), bp)
	wgTablePool.Put(tab)
	return true
}

//go:noescape
func wgFilter4AVX512(u, w *float32, o, c, lo, hi int)

//go:noescape
func wgFilter4RAVX512(u, w *float32, o, c, lo, hi int)

// wgFilter4Rows is wgFilter4's work on output channels [lo, hi) on
// wgFilter4AVX512 (wgFilter4RAVX512 with rotate): it reports false, doing
// nothing, without AVX-512.
func wgFilter4Rows(u, w []float32, o, c, lo, hi int, rotate bool) bool {
	if !wgAVX512 || lo >= hi {
		return false
	}
	_, _ = u[36*o*c-1], w[9*o*c-1]
	if rotate {
		wgFilter4RAVX512(&u[0], &w[0], o, c, lo, hi)
		return true
	}
	wgFilter4AVX512(&u[0], &w[0], o, c, lo, hi)
	return true
}

package layers

import "github.com/gozoo/gozoo/internal/sgemm"

// convPacker returns a packer of the im2col matrix of the images of x
// (N, C, H, W) from i0 on, as many as the GEMM's cnt·H'·W' columns cover:
// the (C·kH·kW, cnt·H'·W') matrix whose row (c, i, j) and column (n, oy, ox) hold x[i0+n, c, oy·s − p + i,
// ox·s − p + j], or 0 in the padding (convIm2col's matrices side by side).
// It writes each requested block straight into the GEMM's panel layout, so
// the matrix itself is never stored. Safe for concurrent use.
func convPacker(g convGeom, x []float32, i0 int) sgemm.PackFunc {
	ohw, chw, hw, kk := g.ohw(), g.c*g.h*g.w, g.h*g.w, g.kh*g.kw
	return func(dst []float32, pc, kc, jc, nc, nr int) {
		for p := range kc {
			c, ij := (pc+p)/kk, (pc+p)%kk
			i, j := ij/g.kw, ij%g.kw
			// Runs of columns within one output row and one panel.
			for col := jc; col < jc+nc; {
				n, q := col/ohw, col%ohw
				oy, ox := q/g.ow, q%g.ow
				rel := col - jc
				end := min(jc+nc, jc+(rel/nr+1)*nr, col+g.ow-ox)
				d := dst[(rel/nr)*kc*nr+p*nr+rel%nr:][:end-col]
				convFillRow(g, d, x[(i0+n)*chw+c*hw:][:hw], i, j, oy, ox)
				col = end
			}
			if tail := (nc+nr-1)/nr*nr - nc; tail > 0 {
				clear(dst[(nc/nr)*kc*nr+p*nr+nc%nr:][:tail])
			}
		}
	}
}

// convFillRow sets d[t] = xc[oy·s − p + i, (ox+t)·s − p + j], or 0 in the
// padding, for one channel plane xc (H, W).
func convFillRow(g convGeom, d, xc []float32, i, j, oy, ox int) {
	y := oy*g.stride - g.pad + i
	if y < 0 || y >= g.h {
		clear(d)
		return
	}
	src := xc[y*g.w : (y+1)*g.w]
	if g.stride == 1 {
		x0 := ox - g.pad + j // input column of d[0]
		lo, hi := max(0, -x0), min(len(d), g.w-x0)
		if hi <= lo {
			clear(d)
			return
		}
		clear(d[:lo])
		copy(d[lo:hi], src[x0+lo:])
		clear(d[hi:])
		return
	}
	for t := range d {
		if x := (ox+t)*g.stride - g.pad + j; x >= 0 && x < g.w {
			d[t] = src[x]
		} else {
			d[t] = 0
		}
	}
}

// Package sgemm is a float32 general matrix multiply (BLAS SGEMM) on
// row-major matrices, for the CPU training path of gozoo.
//
// Its semantics are those of gonum's blas/gonum Implementation.Sgemm
// (written out on Sgemm); its speed comes from assembly micro-kernels
// (AVX-512, or AVX2 with FMA, chosen at run time from the CPU's features;
// pure Go under the purego build tag and on other architectures), cache
// blocking with a packed right-hand operand, and both CPUs.
//
// The structure is BLIS's with the operands' roles swapped for row-major C:
// the kernel keeps an mr×nr tile of C in registers, vectorised along the
// columns of C. op(B) is packed, kc rows by nc columns at a time (an
// L2-sized block), into nr-column panels; op(A) is read in place, as mr-row
// panels that stay in L1 while the kernel walks the packed panels of B.
package sgemm

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/gozoo/gozoo/internal/parallel"
)

// Blocking: a packed block of op(B) is at most kcMax × ncMax floats
// (512 KiB, half of a Zen 4 core's L2); a kernel call does at most
// kcMax·mr·nr multiply-adds (about a microsecond), far below the ~1 ms an
// assembly call may run before it delays the garbage collector.
const (
	kcMax = 256
	ncMax = 512
)

// parallelFlops is the work (2·m·n·k) below which Sgemm stays on the
// calling goroutine: starting a second one costs a few microseconds.
const parallelFlops = 1 << 22

// maxWorkers bounds the goroutines of one call.
const maxWorkers = 8

// A parallel product is cut into up to chunksPerWorker chunks of tiles per
// worker, each of chunkFlops of work or more (about 50 µs on one core:
// a chunk repacks its part of B and rereads A).
const (
	chunksPerWorker = 4
	chunkFlops      = 1 << 22
)

// Sgemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices, as
// gonum's Implementation.Sgemm does:
//
//   - op(A) is (m, k): A itself, stored (m, k) with row stride lda ≥ max(1, k),
//     or, when transA, Aᵀ with A stored (k, m) and lda ≥ max(1, m);
//   - op(B) is (k, n): B stored (k, n) with ldb ≥ max(1, n), or, when transB,
//     Bᵀ with B stored (n, k) and ldb ≥ max(1, k);
//   - C is (m, n), stored with row stride ldc ≥ max(1, n);
//   - element (i, j) of a matrix stored with stride ld is at [i·ld + j]; the
//     slices need only reach the last element (len ≥ ld·(rows−1) + cols).
//
// With m = 0 or n = 0 it does nothing. With beta = 0, C is overwritten and
// never read (NaN in C does not propagate). With alpha = 0 or k = 0, A and
// B are not read and C = beta·C. Elements of C outside the m×n matrix
// (the gap between n and ldc) are never touched.
//
// Like gonum, it panics on negative sizes, strides too small for the
// stored matrices or slices too short: they are programming errors.
//
// Sgemm spreads large products over up to GOMAXPROCS goroutines; callers
// that already keep every CPU busy should call SgemmSerial.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	p := problem{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil}
	workers := min(runtime.GOMAXPROCS(0), maxWorkers)
	if 2*m*n*k < parallelFlops {
		workers = 1
	}
	p.run(kernels[0], workers)
}

// PackFunc writes rows [pc, pc+kc) and columns [jc, jc+nc) of a (k, n)
// matrix B into dst as ⌈nc/nr⌉ panels of kc rows by nr columns: element
// (p, j) of the block at dst[(j/nr)·kc·nr + p·nr + j%nr], the columns
// beyond nc of the last panel set to 0. Sgemm may call it from several
// goroutines at once, for disjoint column ranges.
type PackFunc func(dst []float32, pc, kc, jc, nc, nr int)

// SgemmPackB is Sgemm with B (k, n), not transposed, given by a function
// that packs it: the caller can build B's blocks straight in the packed
// layout (a convolution's im2col, say) instead of materialising B.
func SgemmPackB(transA bool, m, n, k int, alpha float32, a []float32, lda int, pack PackFunc, beta float32, c []float32, ldc int) {
	p := problem{transA: transA, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, ldb: max(1, n), beta: beta, c: c, ldc: ldc, pack: pack}
	workers := min(runtime.GOMAXPROCS(0), maxWorkers)
	if 2*m*n*k < parallelFlops {
		workers = 1
	}
	p.run(kernels[0], workers)
}

// SgemmSerial is Sgemm on the calling goroutine only.
func SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	p := problem{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil}
	p.run(kernels[0], 1)
}

// Kernel names the micro-kernel set in use: "avx512", "avx2" or "go".
func Kernel() string { return kernels[0].name }

// kernels lists the kernel sets this CPU and build can run, fastest first.
var kernels = availableKernels()

// microKernel computes an mr×nr tile
//
//	C[i, j] = alpha·Σₚ A[i, p]·B[p, j] + (beta·C[i, j] if loadc)
//
// for p < kc, where A[i, p] is at a[i·rsa + p·csa], B[p, j] at b[p·rsb + j]
// and C[i, j] at c[i·ldc + j] (indices in floats). Without loadc, C is
// written and never read.
type microKernel func(kc int, a *float32, rsa, csa int, b *float32, rsb int, c *float32, ldc int, alpha, beta float32, loadc bool)

// kernel is a micro-kernel and its tile size.
type kernel struct {
	mr, nr int
	fn     microKernel
}

// kernelSet is a wide kernel for most products and a narrow one for
// products with few columns, where the wide one would waste lanes.
type kernelSet struct {
	name         string
	wide, narrow kernel
}

// pick returns the kernel for products with n columns: the narrow one when
// padding n to the wide tile costs over a quarter more work.
func (s kernelSet) pick(n int) kernel {
	w, nw := roundUp(n, s.wide.nr), roundUp(n, s.narrow.nr)
	if 4*w > 5*nw {
		return s.narrow
	}
	return s.wide
}

func roundUp(x, to int) int { return (x + to - 1) / to * to }

// problem is one Sgemm call's arguments.
type problem struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int
	pack           PackFunc // packs B instead of b, when set
}

// check panics, as gonum does, on arguments that cannot describe the
// matrices.
func (p *problem) check() {
	aRows, aCols := p.m, p.k
	if p.transA {
		aRows, aCols = p.k, p.m
	}
	bRows, bCols := p.k, p.n
	if p.transB {
		bRows, bCols = p.n, p.k
	}
	switch {
	case p.m < 0 || p.n < 0 || p.k < 0:
		panic(fmt.Sprintf("sgemm: negative size m=%d n=%d k=%d", p.m, p.n, p.k))
	case p.lda < max(1, aCols):
		panic(fmt.Sprintf("sgemm: lda=%d is below the %d columns of A as stored", p.lda, aCols))
	case p.ldb < max(1, bCols):
		panic(fmt.Sprintf("sgemm: ldb=%d is below the %d columns of B as stored", p.ldb, bCols))
	case p.ldc < max(1, p.n):
		panic(fmt.Sprintf("sgemm: ldc=%d is below the %d columns of C", p.ldc, p.n))
	}
	if p.m == 0 || p.n == 0 {
		return
	}
	switch {
	case len(p.a) < p.lda*(aRows-1)+aCols:
		panic(fmt.Sprintf("sgemm: len(a)=%d is too short for a %d×%d matrix with stride %d", len(p.a), aRows, aCols, p.lda))
	case p.pack == nil && len(p.b) < p.ldb*(bRows-1)+bCols:
		panic(fmt.Sprintf("sgemm: len(b)=%d is too short for a %d×%d matrix with stride %d", len(p.b), bRows, bCols, p.ldb))
	case len(p.c) < p.ldc*(p.m-1)+p.n:
		panic(fmt.Sprintf("sgemm: len(c)=%d is too short for a %d×%d matrix with stride %d", len(p.c), p.m, p.n, p.ldc))
	}
}

// run computes the product with kernel set ks on up to workers goroutines.
func (p *problem) run(ks kernelSet, workers int) {
	p.check()
	if p.m == 0 || p.n == 0 {
		return
	}
	if p.alpha == 0 || p.k == 0 {
		p.scaleC()
		return
	}
	kern := ks.pick(p.n)
	tilesM, tilesN := (p.m+kern.mr-1)/kern.mr, (p.n+kern.nr-1)/kern.nr
	// Split the columns (each worker packs its own part of B) unless there
	// are too few; then split the rows (each worker packs all of B, which
	// is then narrow).
	splitN := tilesN >= 2*workers || tilesN >= tilesM
	tiles := tilesM
	if splitN {
		tiles = tilesN
	}
	workers = max(1, min(workers, tiles))
	if workers == 1 {
		p.compute(kern, 0, p.m, 0, p.n)
		return
	}
	// The tiles are cut into chunks, on tile boundaries (so that every
	// element of C is computed as on one goroutine: the same full or edge
	// tile, the same sums), the larger chunks first. The workers, the
	// calling goroutine included, take them in turn (parallel.Run): a CPU that starts late
	// or runs slow takes fewer, instead of holding the others idle at the
	// end. Every chunk packs its own block of B (all of B when the rows
	// are split), so row chunks are fewer.
	chunks := min(tiles, workers*chunksPerWorker, max(workers, 2*p.m*p.n*p.k/chunkFlops))
	if !splitN {
		chunks = min(chunks, 2*workers)
	}
	// The goroutines share a copy of p, so that p itself does not escape:
	// SgemmSerial's problem then stays on its caller's stack.
	q := *p
	parallel.Run(tiles, chunks, workers, func(_, lo, hi int) {
		if splitN {
			q.compute(kern, 0, q.m, lo*kern.nr, min(hi*kern.nr, q.n))
		} else {
			q.compute(kern, lo*kern.mr, min(hi*kern.mr, q.m), 0, q.n)
		}
	})
}

// scaleC sets C = beta·C without reading C when beta is 0.
func (p *problem) scaleC() {
	for i := range p.m {
		row := p.c[i*p.ldc : i*p.ldc+p.n]
		switch p.beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= p.beta
			}
		}
	}
}

// scratch holds a worker's packed block of B, one packed edge panel of A
// and one edge tile of C. Buffers are pooled: a GC empties the pool, and
// the next calls allocate again.
var scratch = sync.Pool{New: func() any { return new([]float32) }}

// compute does the rows [m0, m1) and columns [n0, n1) of C with kern.
func (p *problem) compute(kern kernel, m0, m1, n0, n1 int) {
	mr, nr := kern.mr, kern.nr
	kBlocks := (p.k + kcMax - 1) / kcMax
	kcTop := (p.k + kBlocks - 1) / kBlocks // balanced: no thin last block
	ncTop := min(ncMax, roundUp(n1-n0, nr))
	need := kcTop*ncTop + mr*kcTop + mr*nr
	bufp := scratch.Get().(*[]float32)
	if cap(*bufp) < need {
		*bufp = make([]float32, need)
	}
	buf := (*bufp)[:need]
	defer scratch.Put(bufp)
	bp, ap, tmp := buf[:kcTop*ncTop], buf[kcTop*ncTop:kcTop*ncTop+mr*kcTop], buf[kcTop*ncTop+mr*kcTop:]

	for jc := n0; jc < n1; jc += ncTop {
		nc := min(ncTop, n1-jc)
		for pc := 0; pc < p.k; pc += kcTop {
			kc := min(kcTop, p.k-pc)
			p.packB(bp, pc, kc, jc, nc, nr)
			beta, loadc := float32(1), true
			if pc == 0 {
				beta, loadc = p.beta, p.beta != 0
			}
			for ir := m0; ir < m1; ir += mr {
				rows := min(mr, m1-ir)
				var a *float32
				rsa, csa := 1, mr
				switch {
				case rows < mr:
					p.packA(ap, ir, rows, pc, kc, mr)
					a = &ap[0]
				case p.transA:
					a, rsa, csa = &p.a[pc*p.lda+ir], 1, p.lda
				default:
					a, rsa, csa = &p.a[ir*p.lda+pc], p.lda, 1
				}
				for jr := 0; jr < nc; jr += nr {
					cols := min(nr, nc-jr)
					b := &bp[jr*kc]
					if rows == mr && cols == nr {
						kern.fn(kc, a, rsa, csa, b, nr, &p.c[ir*p.ldc+jc+jr], p.ldc, p.alpha, beta, loadc)
						continue
					}
					kern.fn(kc, a, rsa, csa, b, nr, &tmp[0], nr, p.alpha, 0, false)
					for i := range rows {
						src := tmp[i*nr : i*nr+cols]
						dst := p.c[(ir+i)*p.ldc+jc+jr:][:cols]
						if !loadc {
							copy(dst, src)
							continue
						}
						for j, v := range src {
							dst[j] = v + beta*dst[j]
						}
					}
				}
			}
		}
	}
}

// packB copies op(B)[pc:pc+kc, jc:jc+nc] into dst as nr-column panels,
// each kc rows of nr floats, the last one padded with zeros.
func (p *problem) packB(dst []float32, pc, kc, jc, nc, nr int) {
	if p.pack != nil {
		p.pack(dst[:roundUp(nc, nr)*kc], pc, kc, jc, nc, nr)
		return
	}
	if !p.transB {
		for q := range kc {
			src := p.b[(pc+q)*p.ldb+jc:][:nc]
			for j := 0; j < nc; j += nr {
				row := dst[j*kc+q*nr:][:nr]
				n := copy(row, src[j:])
				clear(row[n:])
			}
		}
		return
	}
	// B is stored (n, k): column j of op(B) is row j of B.
	for j := 0; j < nc; j += nr {
		panel := dst[j*kc:][:kc*nr]
		cols := min(nr, nc-j)
		for jj := range cols {
			src := p.b[(jc+j+jj)*p.ldb+pc:][:kc]
			for q, v := range src {
				panel[q*nr+jj] = v
			}
		}
		for jj := cols; jj < nr; jj++ {
			for q := range kc {
				panel[q*nr+jj] = 0
			}
		}
	}
}

// packA copies rows [ir, ir+rows) and columns [pc, pc+kc) of op(A) into
// dst as one mr-row panel (element (i, q) at q·mr + i), zero-padded to mr
// rows.
func (p *problem) packA(dst []float32, ir, rows, pc, kc, mr int) {
	dst = dst[:kc*mr]
	clear(dst)
	for i := range rows {
		for q := range kc {
			if p.transA {
				dst[q*mr+i] = p.a[(pc+q)*p.lda+ir+i]
			} else {
				dst[q*mr+i] = p.a[(ir+i)*p.lda+pc+q]
			}
		}
	}
}

package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gemmCase is one product to check; pad is the extra stride of every
// stored matrix beyond its columns.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	pad            int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%t tB=%t m=%d n=%d k=%d alpha=%g beta=%g pad=%d", tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.pad)
}

// operands builds a, b and c for tc with random values; C is filled with
// NaN when beta is 0 (it must not be read) and the gaps between rows hold
// a sentinel that must survive.
func (tc gemmCase) operands(r *rand.Rand) (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	aRows, aCols := tc.m, tc.k
	if tc.transA {
		aRows, aCols = tc.k, tc.m
	}
	bRows, bCols := tc.k, tc.n
	if tc.transB {
		bRows, bCols = tc.n, tc.k
	}
	lda, ldb, ldc = max(1, aCols)+tc.pad, max(1, bCols)+tc.pad, max(1, tc.n)+tc.pad
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(2*r.Float64() - 1)
		}
		return v
	}
	a, b, c = fill(aRows*lda), fill(bRows*ldb), fill(tc.m*ldc)
	for i := range tc.m {
		for j := range ldc {
			switch {
			case j >= tc.n:
				c[i*ldc+j] = sentinel
			case tc.beta == 0:
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	return a, lda, b, ldb, c, ldc
}

const sentinel = 12345

// reference is C = alpha·op(A)·op(B) + beta·C accumulated in float64,
// with the magnitude Σ|alpha·a·b| + |beta·c| of each element for the
// tolerance.
func (tc gemmCase) reference(a []float32, lda int, b []float32, ldb int, c []float32, ldc int) (want, scale []float64) {
	want, scale = make([]float64, tc.m*tc.n), make([]float64, tc.m*tc.n)
	for i := range tc.m {
		for j := range tc.n {
			var s, mag float64
			for p := range tc.k {
				ai, bi := i*lda+p, p*ldb+j
				if tc.transA {
					ai = p*lda + i
				}
				if tc.transB {
					bi = j*ldb + p
				}
				av, bv := a[ai], b[bi]
				s += float64(av) * float64(bv)
				mag += math.Abs(float64(av) * float64(bv))
			}
			s *= float64(tc.alpha)
			mag *= math.Abs(float64(tc.alpha))
			if tc.beta != 0 {
				s += float64(tc.beta) * float64(c[i*ldc+j])
				mag += math.Abs(float64(tc.beta) * float64(c[i*ldc+j]))
			}
			want[i*tc.n+j], scale[i*tc.n+j] = s, mag
		}
	}
	return want, scale
}

// check runs tc with kernel set ks on workers goroutines and compares with
// the reference.
func (tc gemmCase) check(t *testing.T, ks kernelSet, workers int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	a, lda, b, ldb, c, ldc := tc.operands(r)
	want, scale := tc.reference(a, lda, b, ldb, c, ldc)
	p := problem{tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc, nil}
	p.run(ks, workers)
	bad := 0
	for i := range tc.m {
		for j := range ldc {
			got := c[i*ldc+j]
			if j >= tc.n {
				if got != sentinel {
					t.Fatalf("%s %v workers=%d: C[%d,%d] outside the matrix changed to %g", ks.name, tc, workers, i, j, got)
				}
				continue
			}
			w, s := want[i*tc.n+j], scale[i*tc.n+j]
			if d := math.Abs(float64(got) - w); !(d <= 1e-5*s+1e-30) {
				if bad++; bad <= 3 {
					t.Errorf("%s %v workers=%d: C[%d,%d] = %g, want %g (|diff| %.3g, scale %.3g)", ks.name, tc, workers, i, j, got, w, d, s)
				}
			}
		}
	}
}

func TestSgemmShapes(t *testing.T) {
	var cases []gemmCase
	sizes := [][3]int{
		{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 4, 5}, {8, 32, 16}, {9, 33, 17},
		{6, 16, 1}, {7, 17, 300}, {17, 50, 257}, {64, 100, 27}, {13, 600, 40},
		{100, 4, 130}, {40, 16, 513}, {2, 1030, 3},
	}
	for _, s := range sizes {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, ab := range [][2]float32{{1, 0}, {1, 1}, {-0.5, 0.5}, {2, 0}} {
				cases = append(cases, gemmCase{tr[0], tr[1], s[0], s[1], s[2], ab[0], ab[1], (s[0] + s[2]) % 3})
			}
		}
	}
	for _, ks := range kernels {
		t.Run(ks.name, func(t *testing.T) {
			for i, tc := range cases {
				tc.check(t, ks, 1, uint64(i))
				tc.check(t, ks, 2, uint64(i))
			}
		})
	}
}

// TestSgemmRandom checks random shapes, transposes, strides and scalars.
func TestSgemmRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	n := 300
	if testing.Short() {
		n = 60
	}
	scalars := []float32{0, 1, 0.5, -2}
	for _, ks := range kernels {
		t.Run(ks.name, func(t *testing.T) {
			for i := range n {
				tc := gemmCase{
					transA: r.IntN(2) == 1, transB: r.IntN(2) == 1,
					m: 1 + r.IntN(70), n: 1 + r.IntN(90), k: 1 + r.IntN(600),
					alpha: scalars[1+r.IntN(3)], beta: scalars[r.IntN(4)], pad: r.IntN(4),
				}
				tc.check(t, ks, 1+r.IntN(3), uint64(i))
			}
		})
	}
}

// TestSgemmQuick covers the products that never reach a kernel: empty
// matrices, alpha = 0 and k = 0, where A and B must not be read.
func TestSgemmQuick(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name        string
		m, n, k     int
		alpha, beta float32
		c, want     []float32
	}{
		{"alpha0 beta0 clears NaN", 2, 2, 3, 0, 0, []float32{nan, 1, 2, nan}, []float32{0, 0, 0, 0}},
		{"alpha0 scales", 2, 2, 3, 0, 0.5, []float32{2, 4, 6, 8}, []float32{1, 2, 3, 4}},
		{"k0 beta1 keeps", 2, 2, 0, 1, 1, []float32{2, 4, 6, 8}, []float32{2, 4, 6, 8}},
		{"k0 beta0 clears", 2, 2, 0, 1, 0, []float32{nan, 4, 6, 8}, []float32{0, 0, 0, 0}},
		{"m0", 0, 2, 3, 1, 0, []float32{}, []float32{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := make([]float32, max(1, tt.m*tt.k))
			b := make([]float32, max(1, tt.k*tt.n))
			for i := range a {
				a[i] = nan
			}
			for i := range b {
				b[i] = nan
			}
			Sgemm(false, false, tt.m, tt.n, tt.k, tt.alpha, a, max(1, tt.k), b, tt.n, tt.beta, tt.c, tt.n)
			for i, got := range tt.c {
				if got != tt.want[i] {
					t.Errorf("C[%d] = %g, want %g", i, got, tt.want[i])
				}
			}
		})
	}
}

// TestSgemmPanics checks that malformed arguments panic as gonum's do.
func TestSgemmPanics(t *testing.T) {
	s := make([]float32, 16)
	tests := []struct {
		name string
		call func()
	}{
		{"negative m", func() { Sgemm(false, false, -1, 2, 2, 1, s, 2, s, 2, 0, s, 2) }},
		{"small lda", func() { Sgemm(false, false, 2, 2, 3, 1, s, 2, s, 2, 0, s, 2) }},
		{"small ldb transposed", func() { Sgemm(false, true, 2, 2, 3, 1, s, 3, s, 2, 0, s, 2) }},
		{"small ldc", func() { Sgemm(false, false, 2, 3, 2, 1, s, 2, s, 3, 0, s, 2) }},
		{"short a", func() { Sgemm(false, false, 5, 2, 4, 1, s, 4, s, 2, 0, s, 2) }},
		{"short c", func() { Sgemm(false, false, 2, 9, 1, 1, s, 1, s, 9, 0, s, 9) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			tt.call()
		})
	}
}

// TestKernelPick checks that narrow products get the narrow kernel.
func TestKernelPick(t *testing.T) {
	s := kernelSet{wide: kernel{mr: 8, nr: 32}, narrow: kernel{mr: 8, nr: 16}}
	tests := []struct{ n, wantNR int }{{4, 16}, {16, 16}, {17, 32}, {32, 32}, {48, 16}, {100, 32}, {1024, 32}}
	for _, tt := range tests {
		if got := s.pick(tt.n).nr; got != tt.wantNR {
			t.Errorf("pick(%d).nr = %d, want %d", tt.n, got, tt.wantNR)
		}
	}
}

// TestSgemmPackB checks SgemmPackB, with a packer that reads a stored B,
// against Sgemm.
func TestSgemmPackB(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 40 {
		tc := gemmCase{transA: i%2 == 1, m: 1 + r.IntN(40), n: 1 + r.IntN(700), k: 1 + r.IntN(600), alpha: 0.5, beta: float32(i % 3), pad: r.IntN(3)}
		a, lda, b, ldb, c, ldc := tc.operands(r)
		want := append([]float32(nil), c...)
		Sgemm(tc.transA, false, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
		pack := func(dst []float32, pc, kc, jc, nc, nr int) {
			for j := range roundUp(nc, nr) {
				for p := range kc {
					v := float32(0)
					if j < nc {
						v = b[(pc+p)*ldb+jc+j]
					}
					dst[(j/nr)*kc*nr+p*nr+j%nr] = v
				}
			}
		}
		SgemmPackB(tc.transA, tc.m, tc.n, tc.k, tc.alpha, a, lda, pack, tc.beta, c, ldc)
		for j, w := range want {
			if c[j] != w && !(math.IsNaN(float64(c[j])) && math.IsNaN(float64(w))) {
				t.Fatalf("%v: C[%d] = %g, want %g", tc, j, c[j], w)
			}
		}
	}
}

// TestKernel checks that Kernel names the fastest kernel set the CPU's
// features allow, and that the pure-Go set is always there as a fallback.
func TestKernel(t *testing.T) {
	if got, want := Kernel(), wantKernel(); got != want {
		t.Errorf("Kernel() = %q, want %q", got, want)
	}
	if got := kernels[len(kernels)-1].name; got != "go" {
		t.Errorf("last kernel set is %q, want the pure-Go fallback %q", got, "go")
	}
}

// TestSgemmSplitMatchesSerial runs products above parallelFlops, split by
// columns and by rows, with edge tiles and every beta kind, on 1 to 3
// goroutines (through GOMAXPROCS) and on many chunks of one tile (run with
// 8 workers): each tile of C is computed whole by one goroutine, so every
// result must be bit-identical to the one-goroutine run.
func TestSgemmSplitMatchesSerial(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []gemmCase{
		{m: 64, n: 1000, k: 300, alpha: 1, beta: 0},                            // columns, many chunks
		{m: 700, n: 20, k: 300, alpha: 0.5, beta: 1, pad: 2},                   // rows, edge tiles both ways
		{transA: true, transB: true, m: 333, n: 257, k: 70, alpha: 1, beta: 2}, // both transposed
		{transA: true, m: 1000, n: 33, k: 600, alpha: -1, beta: 0, pad: 1},     // rows, k over kcMax
		{transB: true, m: 9, n: 3000, k: 520, alpha: 1, beta: 0.5},             // columns over ncMax
	} {
		if 2*tc.m*tc.n*tc.k < parallelFlops {
			t.Fatalf("%v: under parallelFlops, not split", tc)
		}
		a, lda, b, ldb, c0, ldc := tc.operands(r)
		want := append([]float32(nil), c0...)
		p := problem{tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc, nil}
		p.run(kernels[0], 1)
		for _, workers := range []int{2, 3, 8} {
			got := append([]float32(nil), c0...)
			p.c = got
			p.run(kernels[0], workers)
			for j, w := range want {
				if got[j] != w && !(math.IsNaN(float64(got[j])) && math.IsNaN(float64(w))) {
					t.Fatalf("%v on %d workers: C[%d] = %g, want %g (one worker)", tc, workers, j, got[j], w)
				}
			}
		}
	}
}

package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemm checks every transpose combination, with row strides larger
// than the rows and a nonzero beta, against a naive product.
func TestGemm(t *testing.T) {
	const m, n, k = 5, 4, 3
	for _, transA := range []bool{false, true} {
		for _, transB := range []bool{false, true} {
			t.Run(fmt.Sprintf("transA=%t_transB=%t", transA, transB), func(t *testing.T) {
				testGemm[float64](t, transA, transB, m, n, k, 1e-12)
				testGemm[float32](t, transA, transB, m, n, k, 1e-5)
			})
		}
	}
}

func testGemm[T float](t *testing.T, transA, transB bool, m, n, k int, tol float64) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 1))
	fill := func(rows, cols, ld int) []T {
		v := make([]T, rows*ld)
		for i := range v {
			v[i] = T(2*r.Float64() - 1)
		}
		return v
	}
	// Stored shapes: a is (m, k) or (k, m); b is (k, n) or (n, k); two
	// spare columns per row exercise the leading dimensions.
	aRows, aCols := m, k
	if transA {
		aRows, aCols = k, m
	}
	bRows, bCols := k, n
	if transB {
		bRows, bCols = n, k
	}
	lda, ldb, ldc := aCols+2, bCols+2, n+2
	a, b, c := fill(aRows, aCols, lda), fill(bRows, bCols, ldb), fill(m, n, ldc)
	at := func(i, j int) float64 { // op(a)[i, j]
		if transA {
			return float64(a[j*lda+i])
		}
		return float64(a[i*lda+j])
	}
	bt := func(i, j int) float64 {
		if transB {
			return float64(b[j*ldb+i])
		}
		return float64(b[i*ldb+j])
	}
	const alpha, beta = 1.5, 0.5
	want := make([]float64, len(c))
	for i := range c {
		want[i] = float64(c[i])
	}
	for i := range m {
		for j := range n {
			s := 0.0
			for p := range k {
				s += at(i, p) * bt(p, j)
			}
			want[i*ldc+j] = alpha*s + beta*float64(c[i*ldc+j])
		}
	}
	gemm(transA, transB, m, n, k, T(alpha), a, lda, b, ldb, T(beta), c, ldc)
	for i, w := range want {
		if math.Abs(float64(c[i])-w) > tol {
			t.Fatalf("%T: c[%d]: got %.9g, want %.9g", c, i, c[i], w)
		}
	}
}

package layers

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/gozoo/gozoo/internal/sgemm"
)

// gemm computes c = alpha·op(a)·op(b) + beta·c on row-major matrices, where
// op(a) is (m, k) — a itself, stored (m, k), or aᵀ when transA, a stored
// (k, m) — and op(b) is (k, n) likewise; c is (m, n). lda, ldb and ldc are
// the row strides of a, b and c as stored. With beta = 0, c is overwritten
// and need not be initialised.
//
// It is the one matrix-multiply entry point of the package: every op that
// multiplies matrices calls it, so swapping the kernel behind it speeds all
// of them up. float32 runs on internal/sgemm (assembly micro-kernels, both
// CPUs for large products); float64 on gonum's pure-Go BLAS.
func gemm[T float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch a := any(a).(type) {
	case []float32:
		sgemm.Sgemm(transA, transB, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		gonum.Implementation{}.Dgemm(gemmTranspose(transA), gemmTranspose(transB), m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// gemmSerial is gemm on the calling goroutine only, for callers that
// already keep every CPU busy (one image per worker).
func gemmSerial[T float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if a, ok := any(a).([]float32); ok {
		sgemm.SgemmSerial(transA, transB, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
		return
	}
	gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmTranspose maps a transpose flag to gonum's BLAS enum.
func gemmTranspose(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

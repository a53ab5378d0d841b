package sgemm

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are the square reference size and the GEMMs of VGG's 3×3
// convolutions at 32×32 input: per image (as layers/conv.go calls them:
// forward (o, h·w, 9c), input gradient ᵀ(9c, h·w, o), weight gradient
// (o, 9c, h·w)ᵀ) and over a batch of 64 images.
var benchShapes = []struct {
	name           string
	transA, transB bool
	m, n, k        int
}{
	{"square1024", false, false, 1024, 1024, 1024},
	{"fwd_c3_32x32", false, false, 64, 1024, 27},
	{"fwd_c64_16x16", false, false, 128, 256, 576},
	{"fwd_c128_8x8", false, false, 256, 64, 1152},
	{"fwd_c256_4x4", false, false, 512, 16, 2304},
	{"fwd_c512_2x2", false, false, 512, 4, 4608},
	{"dx_c64_16x16", true, false, 576, 256, 128},
	{"dx_c256_4x4", true, false, 2304, 16, 512},
	{"dw_c64_16x16", false, true, 128, 576, 256},
	{"dw_c256_4x4", false, true, 512, 2304, 16},
	{"fwd_c64_16x16_batch64", false, false, 128, 16384, 576},
	{"fwd_c256_4x4_batch64", false, false, 512, 1024, 2304},
}

// BenchmarkSgemm runs each shape with Sgemm, SgemmSerial and gonum's
// Sgemm side by side and reports GFLOP/s.
func BenchmarkSgemm(b *testing.B) {
	impls := []struct {
		name string
		fn   func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	}{
		{"sgemm", Sgemm},
		{"serial", SgemmSerial},
		{"gonum", func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			ta, tb := blas.NoTrans, blas.NoTrans
			if transA {
				ta = blas.Trans
			}
			if transB {
				tb = blas.Trans
			}
			gonum.Implementation{}.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}},
	}
	for _, s := range benchShapes {
		lda, ldb := s.k, s.n
		if s.transA {
			lda = s.m
		}
		if s.transB {
			ldb = s.k
		}
		x, y, z := make([]float32, s.m*s.k), make([]float32, s.k*s.n), make([]float32, s.m*s.n)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		for i := range y {
			y[i] = float32(i%5) - 2
		}
		for _, im := range impls {
			b.Run(fmt.Sprintf("%s/%s", s.name, im.name), func(b *testing.B) {
				for b.Loop() {
					im.fn(s.transA, s.transB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, z, s.n)
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

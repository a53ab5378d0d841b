package layers

import (
	"fmt"

	"github.com/gozoo/gozoo/internal/sgemm"
)

// Kernels names the compute kernels this process runs, for benchmark
// reports: the float32 GEMM's instruction set ("avx512", "avx2" or "go"),
// and which algorithm the 3×3 stride-1 convolutions use: Winograd
// F(4×4, 3×3) on maps of 16×16 and more and F(2×2, 3×3) below (the
// default; F(4×4) from 8×8 with ZOO_CONV=f4), F(2×2, 3×3) everywhere
// (ZOO_CONV=f2), or the direct im2col path (ZOO_CONV=direct); the weight
// gradient runs on F(2×2, 3×3) wherever the forward pass runs on Winograd.
func Kernels() string {
	conv := "winograd F(2x2,3x3), weight gradient too (3x3 pad 1 stride 1, ≥16 channels, float32; ZOO_CONV=f2), else im2col+gemm"
	switch {
	case convDirect:
		conv = "im2col+gemm (ZOO_CONV=direct)"
	case wgF4On:
		conv = fmt.Sprintf("winograd F(4x4,3x3) on maps of %dx%d and more, F(2x2,3x3) below and for the weight gradient (3x3 pad 1 stride 1, ≥16 channels, float32), else im2col+gemm", wgF4MinSide, wgF4MinSide)
	}
	return "sgemm " + sgemm.Kernel() + "; conv " + conv
}

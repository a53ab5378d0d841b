package layers

import "github.com/gozoo/gozoo/internal/sgemm"

// Kernels names the compute kernels this process runs, for benchmark
// reports: the float32 GEMM's instruction set ("avx512", "avx2" or "go"),
// and whether 3×3 stride-1 convolutions use Winograd F(2×2, 3×3) or the
// direct im2col path (ZOO_CONV=direct).
func Kernels() string {
	conv := "winograd F(2x2,3x3) (3x3 pad 1 stride 1, ≥16 channels, float32), else im2col+gemm"
	if convDirect {
		conv = "im2col+gemm (ZOO_CONV=direct)"
	}
	return "sgemm " + sgemm.Kernel() + "; conv " + conv
}

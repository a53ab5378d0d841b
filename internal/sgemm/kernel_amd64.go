//go:build amd64 && !purego

package sgemm

import "golang.org/x/sys/cpu"

//go:generate go run asm_gen.go

// The assembly micro-kernels (sgemm_amd64.s); see microKernel for the
// contract.

//go:noescape
func kernAVX512x8x32(kc int, a *float32, rsa, csa int, b *float32, rsb int, c *float32, ldc int, alpha, beta float32, loadc bool)

//go:noescape
func kernAVX512x8x16(kc int, a *float32, rsa, csa int, b *float32, rsb int, c *float32, ldc int, alpha, beta float32, loadc bool)

//go:noescape
func kernAVX2x6x16(kc int, a *float32, rsa, csa int, b *float32, rsb int, c *float32, ldc int, alpha, beta float32, loadc bool)

//go:noescape
func kernAVX2x6x8(kc int, a *float32, rsa, csa int, b *float32, rsb int, c *float32, ldc int, alpha, beta float32, loadc bool)

var (
	avx512Kernels = kernelSet{
		name:   "avx512",
		wide:   kernel{mr: 8, nr: 32, fn: kernAVX512x8x32},
		narrow: kernel{mr: 8, nr: 16, fn: kernAVX512x8x16},
	}
	avx2Kernels = kernelSet{
		name:   "avx2",
		wide:   kernel{mr: 6, nr: 16, fn: kernAVX2x6x16},
		narrow: kernel{mr: 6, nr: 8, fn: kernAVX2x6x8},
	}
)

// availableKernels lists the kernel sets this CPU runs, fastest first.
// cpu.X86.HasAVX512F is only true when the OS saves the AVX-512 state.
func availableKernels() []kernelSet {
	var ks []kernelSet
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernels)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernels)
	}
	return append(ks, goKernels)
}

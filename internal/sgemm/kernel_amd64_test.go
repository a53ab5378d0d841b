//go:build amd64 && !purego

package sgemm

import "golang.org/x/sys/cpu"

// wantKernel is the kernel set this CPU should run, from its features.
func wantKernel() string {
	switch {
	case cpu.X86.HasAVX512F:
		return "avx512"
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return "avx2"
	}
	return "go"
}

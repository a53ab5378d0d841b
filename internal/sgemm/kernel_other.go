//go:build !amd64 || purego

package sgemm

// availableKernels lists the kernel sets this build runs: pure Go only.
func availableKernels() []kernelSet { return []kernelSet{goKernels} }

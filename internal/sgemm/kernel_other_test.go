//go:build !amd64 || purego

package sgemm

// wantKernel is the kernel set this build should run: pure Go only.
func wantKernel() string { return "go" }

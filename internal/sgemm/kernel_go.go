package sgemm

import "unsafe"

// goKernels is the pure-Go kernel set: the fallback under the purego tag,
// on other architectures and on x86 CPUs without AVX2 and FMA.
var goKernels = kernelSet{
	name:   "go",
	wide:   kernel{mr: 4, nr: 4, fn: kernGo4x4},
	narrow: kernel{mr: 4, nr: 4, fn: kernGo4x4},
}

// kernGo4x4 is the pure-Go 4×4 micro-kernel; see microKernel.
func kernGo4x4(kc int, a *float32, rsa, csa int, b *float32, rsb int, c *float32, ldc int, alpha, beta float32, loadc bool) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	// Offsets in floats: a pointer is only formed for an element that is
	// read, never one past the end of an operand.
	at := func(p *float32, i int) float32 { return *(*float32)(unsafe.Add(unsafe.Pointer(p), 4*i)) }
	for q := range kc {
		ao, bo := q*csa, q*rsb
		b0, b1, b2, b3 := at(b, bo), at(b, bo+1), at(b, bo+2), at(b, bo+3)
		a0 := at(a, ao)
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := at(a, ao+rsa)
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a2 := at(a, ao+2*rsa)
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		a3 := at(a, ao+3*rsa)
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	rows := [4][4]float32{
		{c00, c01, c02, c03},
		{c10, c11, c12, c13},
		{c20, c21, c22, c23},
		{c30, c31, c32, c33},
	}
	for i, row := range rows {
		ci := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(c), 4*i*ldc)), 4) // row i of the tile
		for j, v := range row {
			if loadc {
				ci[j] = alpha*v + beta*ci[j]
			} else {
				ci[j] = alpha * v
			}
		}
	}
}

package sgemm_test

import (
	"fmt"
	"math"

	"github.com/gozoo/gozoo/internal/sgemm"
)

// ExampleSgemm multiplies a (2, 3) matrix by the transpose of a (2, 3)
// matrix into C; C's NaN is overwritten because beta is 0.
func ExampleSgemm() {
	a := []float32{
		1, 2, 3,
		4, 5, 6,
	}
	b := []float32{ // stored (2, 3), used as its (3, 2) transpose
		1, 0, 1,
		0, 1, 0,
	}
	c := []float32{0, 0, 0, float32(math.NaN())}
	sgemm.Sgemm(false, true, 2, 2, 3, 1, a, 3, b, 3, 0, c, 2)
	fmt.Println(c)
	// Output: [4 2 10 5]
}

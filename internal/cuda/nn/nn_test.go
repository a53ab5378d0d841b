package nn

import (
	"errors"
	"testing"
)

func TestCheckLabels(t *testing.T) {
	tests := []struct {
		labels []float32
		ok     bool
	}{
		{[]float32{0, 9, 3}, true},
		{[]float32{10}, false},
		{[]float32{-1}, false},
		{[]float32{1.5}, false},
	}
	for _, tt := range tests {
		err := checkLabels(tt.labels, 10)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrLabel)) {
			t.Errorf("checkLabels(%v, 10) = %v, want ok %t", tt.labels, err, tt.ok)
		}
	}
}

func TestConvGeometry(t *testing.T) {
	tests := []struct {
		x, w        []int
		stride, pad int
		oh, ow      int
		ok          bool
	}{
		{[]int{2, 3, 32, 32}, []int{64, 3, 3, 3}, 1, 1, 32, 32, true},
		{[]int{2, 3, 7, 9}, []int{5, 3, 3, 3}, 2, 0, 3, 4, true},
		{[]int{2, 3, 7, 9}, []int{5, 4, 3, 3}, 1, 0, 0, 0, false},
		{[]int{2, 3, 2, 2}, []int{5, 3, 3, 3}, 1, 0, 0, 0, false},
		{[]int{3, 2, 2}, []int{5, 3, 3, 3}, 1, 0, 0, 0, false},
	}
	for _, tt := range tests {
		g, err := convGeometry(Tensor{Shape: tt.x}, Tensor{Shape: tt.w}, tt.stride, tt.pad)
		if (err == nil) != tt.ok || (tt.ok && (g.oh != tt.oh || g.ow != tt.ow)) {
			t.Errorf("convGeometry(%v, %v, %d, %d) = %d×%d, %v; want %d×%d, ok %t", tt.x, tt.w, tt.stride, tt.pad, g.oh, g.ow, err, tt.oh, tt.ow, tt.ok)
		}
	}
}

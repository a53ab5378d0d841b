package layers

import (
	"strings"
	"testing"
)

// TestKernels checks that Kernels names the convolution algorithm that
// ZOO_CONV selected.
func TestKernels(t *testing.T) {
	defer func(direct, f4 bool) { convDirect, wgF4On = direct, f4 }(convDirect, wgF4On)
	for _, tc := range []struct {
		direct, f4 bool
		want, not  string
	}{
		{want: "winograd F(2x2,3x3)", not: "F(4x4"},
		{f4: true, want: "winograd F(4x4,3x3)"},
		{direct: true, want: "conv im2col+gemm (ZOO_CONV=direct)", not: "winograd"},
	} {
		convDirect, wgF4On = tc.direct, tc.f4
		got := Kernels()
		if !strings.HasPrefix(got, "sgemm ") || !strings.Contains(got, tc.want) || (tc.not != "" && strings.Contains(got, tc.not)) {
			t.Errorf("direct %t, f4 %t: Kernels() = %q, want it to name %q and not %q", tc.direct, tc.f4, got, tc.want, tc.not)
		}
	}
}

package layers

import (
	"fmt"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// poolCase is one MaxPool2d configuration.
type poolCase struct {
	x                       []int
	kernel, stride, padding int
}

var poolCases = []poolCase{
	{x: []int{2, 3, 5, 7}, kernel: 3, stride: 2, padding: 1},
	{x: []int{1, 2, 6, 6}, kernel: 2, stride: 2},
	{x: []int{2, 1, 5, 5}, kernel: 3, stride: 1, padding: 1},
	{x: []int{1, 2, 7, 4}, kernel: 1, stride: 2},
	{x: []int{1, 1, 4, 5}, kernel: 2, stride: 3, padding: 1},
	{x: []int{2, 2, 3, 3}, kernel: 3, stride: 1},
	{x: []int{1, 2, 9, 6}, kernel: 5, stride: 2, padding: 2},
}

func (c poolCase) String() string {
	return fmt.Sprintf("x%v_k%d_s%d_p%d", c.x, c.kernel, c.stride, c.padding)
}

func (c poolCase) build(xs []*G.Node) (*G.Node, error) {
	return MaxPool2d(xs[0], c.kernel, c.stride, c.padding)
}

// maxPoolNaive is PyTorch's definition in float64: the maximum over each
// window of the −∞-padded input.
func maxPoolNaive(c poolCase, x *tensor.Dense) *tensor.Dense {
	n, ch, h, w := c.x[0], c.x[1], c.x[2], c.x[3]
	oh := (h+2*c.padding-c.kernel)/c.stride + 1
	ow := (w+2*c.padding-c.kernel)/c.stride + 1
	xv := x.Data().([]float64)
	y := make([]float64, 0, n*ch*oh*ow)
	for pl := range n * ch {
		for oy := range oh {
			for ox := range ow {
				best := math.Inf(-1)
				for ky := range c.kernel {
					for kx := range c.kernel {
						iy, ix := oy*c.stride-c.padding+ky, ox*c.stride-c.padding+kx
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							best = math.Max(best, xv[(pl*h+iy)*w+ix])
						}
					}
				}
				y = append(y, best)
			}
		}
	}
	return tensor.New(tensor.WithShape(n, ch, oh, ow), tensor.WithBacking(y))
}

func TestMaxPool2dForward(t *testing.T) {
	for _, c := range poolCases {
		t.Run(c.String(), func(t *testing.T) {
			x := randDense(1, c.x...)
			want := maxPoolNaive(c, x)
			assertClose(t, runForward(t, c.build, x), want, 0)
			got32 := runForward(t, c.build, toFloat32(x))
			if got32.Dtype() != tensor.Float32 {
				t.Fatalf("float32 input gave a %v output", got32.Dtype())
			}
			assertClose(t, got32, want, 1e-7)
		})
	}
}

func TestMaxPool2dGradient(t *testing.T) {
	for _, c := range poolCases {
		t.Run(c.String(), func(t *testing.T) {
			gradCheck(t, c.build, []*tensor.Dense{randDense(1, c.x...)}, []int{0}, 1e-6)
		})
	}
}

// TestMaxPool2dPyTorchIndices pins values and argmax indices that PyTorch
// 1.13's max_pool2d(..., return_indices=True) gives on ties, NaN and −∞.
func TestMaxPool2dPyTorchIndices(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	x := []float64{
		1, nan, 3, nan,
		2, 2, 0, 1,
		5, 5, 1, 1,
		-inf, -inf, 1, 1,
	}
	tests := []struct {
		c        poolCase
		x        []float64
		wantY    []float64
		wantArgs []int32
	}{
		{c: poolCase{x: []int{1, 1, 4, 4}, kernel: 2, stride: 2}, x: x, wantY: []float64{nan, nan, 5, 1}, wantArgs: []int32{1, 3, 8, 10}},
		{c: poolCase{x: []int{1, 1, 4, 4}, kernel: 3, stride: 2, padding: 1}, x: x, wantY: []float64{nan, nan, 5, 5}, wantArgs: []int32{1, 3, 8, 9}},
		{c: poolCase{x: []int{1, 1, 2, 2}, kernel: 2, stride: 2}, x: []float64{-inf, -inf, -inf, -inf}, wantY: []float64{-inf}, wantArgs: []int32{0}},
		{c: poolCase{x: []int{1, 1, 3, 3}, kernel: 2, stride: 1}, x: make([]float64, 9), wantY: make([]float64, 4), wantArgs: []int32{0, 1, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.c.String(), func(t *testing.T) {
			g := G.NewGraph()
			xn := G.NodeFromAny(g, tensor.New(tensor.WithShape(tt.c.x...), tensor.WithBacking(tt.x)), G.WithName("x"))
			y, err := tt.c.build(G.Nodes{xn})
			if err != nil {
				t.Fatal(err)
			}
			m := G.NewTapeMachine(g)
			defer m.Close()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			got := y.Value().Data().([]float64)
			for i, w := range tt.wantY {
				if got[i] != w && !(math.IsNaN(got[i]) && math.IsNaN(w)) {
					t.Errorf("y[%d]: got %v, want %v", i, got[i], w)
				}
			}
			if args := y.Op().(*maxPoolOp).argmax; fmt.Sprint(args) != fmt.Sprint(tt.wantArgs) {
				t.Errorf("argmax: got %v, want %v", args, tt.wantArgs)
			}
		})
	}
}

// TestMaxPool2dNaNGradient runs forward and backward through windows that
// are all NaN (Gorgonia's own MaxPool2D panics there) and expects the
// gradient to land on the last NaN of each window.
func TestMaxPool2dNaNGradient(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			x := randDense(1, 1, 2, 4, 4)
			xv := x.Data().([]float64)
			for i := range 4 * 4 {
				xv[i] = math.NaN() // the whole first plane
			}
			in := x
			if dt == tensor.Float32 {
				in = toFloat32(x)
			}
			g := G.NewGraph()
			xn := G.NodeFromAny(g, in, G.WithName("x"))
			y, err := MaxPool2d(xn, 2, 2, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := G.Grad(G.Must(G.Sum(y)), xn); err != nil {
				t.Fatal(err)
			}
			m := G.NewTapeMachine(g)
			defer m.Close()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			dx, err := xn.Grad()
			if err != nil {
				t.Fatal(err)
			}
			got := toFloat64s(dx.(*tensor.Dense))[:16]
			want := []float64{ // the bottom-right of each 2×2 window
				0, 0, 0, 0,
				0, 1, 0, 1,
				0, 0, 0, 0,
				0, 1, 0, 1,
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("gradient of the NaN plane: got %v, want %v", got, want)
			}
		})
	}
}

func TestMaxPool2dPrealloc(t *testing.T) {
	for _, c := range poolCases {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(fmt.Sprintf("%v_%v", c, dt), func(t *testing.T) {
				x := randDense(1, c.x...)
				if dt == tensor.Float32 {
					x = toFloat32(x)
				}
				g := G.NewGraph()
				y, err := c.build(G.Nodes{G.NodeFromAny(g, x, G.WithName("x"))})
				if err != nil {
					t.Fatal(err)
				}
				op := y.Op().(*maxPoolOp)
				checkPrealloc(t, op, x)
				yv, err := op.Do(x)
				if err != nil {
					t.Fatal(err)
				}
				dy := randDense(2, op.g.yShape()...)
				if dt == tensor.Float32 {
					dy = toFloat32(dy)
				}
				checkPrealloc(t, maxPoolGradOp{fwd: op}, yv, dy)
			})
		}
	}
}

// TestMaxPool2dNotMerged builds two identical poolings of one input: they
// keep separate argmax state, so hash-consing must not merge them.
func TestMaxPool2dNotMerged(t *testing.T) {
	g := G.NewGraph()
	x := G.NodeFromAny(g, randDense(1, 1, 1, 4, 4), G.WithName("x"))
	a, err := MaxPool2d(x, 2, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MaxPool2d(x, 2, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("two MaxPool2d calls returned the same node")
	}
}

func TestMaxPool2dShapeErrors(t *testing.T) {
	tests := []struct {
		name                    string
		x                       []int
		kernel, stride, padding int
		want                    string
	}{
		{name: "rank 3", x: []int{3, 8, 8}, kernel: 2, stride: 2, want: "rank 4"},
		{name: "zero kernel", x: []int{1, 3, 8, 8}, kernel: 0, stride: 2, want: "kernel is 0"},
		{name: "zero stride", x: []int{1, 3, 8, 8}, kernel: 2, stride: 0, want: "stride is 0"},
		{name: "negative padding", x: []int{1, 3, 8, 8}, kernel: 2, stride: 2, padding: -1, want: "padding"},
		{name: "padding over half the kernel", x: []int{1, 3, 8, 8}, kernel: 3, stride: 2, padding: 2, want: "kernel/2"},
		{name: "kernel too large", x: []int{1, 3, 2, 8}, kernel: 3, stride: 1, want: "larger than the padded input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := G.NewGraph()
			x := G.NewTensor(g, tensor.Float64, len(tt.x), G.WithShape(tt.x...), G.WithName("x"))
			_, err := MaxPool2d(x, tt.kernel, tt.stride, tt.padding)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := MaxPool2d(nil, 2, 2, 0); err == nil {
		t.Error("MaxPool2d(nil): got no error")
	}
}

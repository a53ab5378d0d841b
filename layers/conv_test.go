package layers

import (
	"fmt"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convCase is one Conv2d configuration: shapes of x and w, with or without
// a bias.
type convCase struct {
	x, w            []int
	stride, padding int
	bias            bool
}

var convCases = []convCase{
	{x: []int{2, 3, 5, 6}, w: []int{4, 3, 3, 3}, stride: 1, padding: 1, bias: true},
	{x: []int{2, 2, 7, 5}, w: []int{3, 2, 3, 3}, stride: 2, padding: 0},
	{x: []int{1, 2, 5, 4}, w: []int{2, 2, 3, 3}, stride: 2, padding: 2, bias: true},
	{x: []int{3, 3, 4, 5}, w: []int{4, 3, 1, 1}, stride: 1, padding: 0, bias: true},
	{x: []int{2, 2, 5, 5}, w: []int{3, 2, 1, 1}, stride: 2, padding: 1},
	{x: []int{1, 2, 4, 6}, w: []int{2, 2, 2, 3}, stride: 1, padding: 0, bias: true},
	{x: []int{2, 1, 2, 2}, w: []int{1, 1, 4, 4}, stride: 3, padding: 1, bias: true},
	{x: []int{1, 3, 3, 3}, w: []int{2, 3, 3, 3}, stride: 1, padding: 1},
}

func (c convCase) String() string {
	return fmt.Sprintf("x%v_w%v_s%d_p%d_bias%t", c.x, c.w, c.stride, c.padding, c.bias)
}

// inputs returns random x, w and, with a bias, b.
func (c convCase) inputs() []*tensor.Dense {
	in := []*tensor.Dense{randDense(1, c.x...), randDense(2, c.w...)}
	if c.bias {
		in = append(in, randDense(3, c.w[0]))
	}
	return in
}

func (c convCase) build(xs []*G.Node) (*G.Node, error) {
	var b *G.Node
	if c.bias {
		b = xs[2]
	}
	return Conv2d(xs[0], xs[1], b, c.stride, c.padding)
}

// convNaive is the textbook definition of PyTorch's Conv2d, in float64.
func convNaive(x, w, b *tensor.Dense, stride, pad int) (*tensor.Dense, []int) {
	xs, ws := x.Shape(), w.Shape()
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	o, kh, kw := ws[0], ws[2], ws[3]
	oh, ow := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	xv, wv := x.Data().([]float64), w.Data().([]float64)
	y := make([]float64, n*o*oh*ow)
	for i := range n {
		for oc := range o {
			for oy := range oh {
				for ox := range ow {
					s := 0.0
					if b != nil {
						s = b.Data().([]float64)[oc]
					}
					for ic := range c {
						for ky := range kh {
							for kx := range kw {
								iy, ix := oy*stride-pad+ky, ox*stride-pad+kx
								if iy < 0 || iy >= h || ix < 0 || ix >= wd {
									continue
								}
								s += xv[((i*c+ic)*h+iy)*wd+ix] * wv[((oc*c+ic)*kh+ky)*kw+kx]
							}
						}
					}
					y[((i*o+oc)*oh+oy)*ow+ox] = s
				}
			}
		}
	}
	shape := []int{n, o, oh, ow}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(y)), shape
}

// runForward builds build's graph on inputs and returns its output value.
func runForward(t *testing.T, build func(xs []*G.Node) (*G.Node, error), inputs ...*tensor.Dense) *tensor.Dense {
	t.Helper()
	g := G.NewGraph()
	xs := make([]*G.Node, len(inputs))
	for i, in := range inputs {
		xs[i] = G.NodeFromAny(g, in, G.WithName(string(rune('a'+i))))
	}
	y, err := build(xs)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	return y.Value().(*tensor.Dense)
}

// toFloat32 returns a float32 copy of a float64 tensor.
func toFloat32(d *tensor.Dense) *tensor.Dense {
	src := d.Data().([]float64)
	v := make([]float32, len(src))
	for i, x := range src {
		v[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(d.Shape().Clone()...), tensor.WithBacking(v))
}

// toFloat64s returns a float32 or float64 tensor's data as float64s.
func toFloat64s(d *tensor.Dense) []float64 {
	switch v := d.Data().(type) {
	case []float64:
		return v
	case []float32:
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	panic(fmt.Sprintf("toFloat64s: dtype %v", d.Dtype()))
}

// assertClose fails unless got and want have the same shape and agree
// elementwise within tol, relative to max(1, |want|).
func assertClose(t *testing.T, got, want *tensor.Dense, tol float64) {
	t.Helper()
	if !got.Shape().Eq(want.Shape()) {
		t.Fatalf("shape: got %v, want %v", got.Shape(), want.Shape())
	}
	g, w := toFloat64s(got), toFloat64s(want)
	for i := range w {
		if d := math.Abs(g[i]-w[i]) / math.Max(1, math.Abs(w[i])); !(d <= tol) {
			t.Fatalf("element %d: got %.9g, want %.9g", i, g[i], w[i])
		}
	}
}

// checkPrealloc runs op.Do on in, then op.UsePreallocDo with a buffer of
// the result's shape filled with NaN, and checks that the buffer is reused
// and fully overwritten with the same result.
func checkPrealloc(t *testing.T, op G.Op, in ...G.Value) {
	t.Helper()
	want, err := op.Do(in...)
	if err != nil {
		t.Fatalf("%v Do: %v", op, err)
	}
	wd := want.(*tensor.Dense)
	buf := tensor.New(tensor.Of(wd.Dtype()), tensor.WithShape(wd.Shape().Clone()...))
	switch v := buf.Data().(type) {
	case []float64:
		for i := range v {
			v[i] = math.NaN()
		}
	case []float32:
		for i := range v {
			v[i] = float32(math.NaN())
		}
	}
	got, err := op.(G.UsePreallocDoer).UsePreallocDo(buf, in...)
	if err != nil {
		t.Fatalf("%v UsePreallocDo: %v", op, err)
	}
	if got != G.Value(buf) {
		t.Errorf("%v UsePreallocDo did not reuse the buffer it was given", op)
	}
	assertClose(t, got.(*tensor.Dense), wd, 0)
}

func TestConv2dForward(t *testing.T) {
	for _, c := range convCases {
		t.Run(c.String(), func(t *testing.T) {
			in := c.inputs()
			var b *tensor.Dense
			if c.bias {
				b = in[2]
			}
			want, _ := convNaive(in[0], in[1], b, c.stride, c.padding)
			got := runForward(t, c.build, in...)
			assertClose(t, got, want, 1e-12)

			in32 := make([]*tensor.Dense, len(in))
			for i, d := range in {
				in32[i] = toFloat32(d)
			}
			got32 := runForward(t, c.build, in32...)
			if got32.Dtype() != tensor.Float32 {
				t.Fatalf("float32 inputs gave a %v output", got32.Dtype())
			}
			assertClose(t, got32, want, 1e-5)
		})
	}
}

func TestConv2dGradient(t *testing.T) {
	for _, c := range convCases {
		t.Run(c.String(), func(t *testing.T) {
			in := c.inputs()
			wrt := []int{0, 1}
			if c.bias {
				wrt = append(wrt, 2)
			}
			gradCheck(t, c.build, in, wrt, 1e-6)
		})
	}
}

func TestConv2dPrealloc(t *testing.T) {
	for _, c := range convCases {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(fmt.Sprintf("%v_%v", c, dt), func(t *testing.T) {
				in := c.inputs()
				if dt == tensor.Float32 {
					for i := range in {
						in[i] = toFloat32(in[i])
					}
				}
				g := G.NewGraph()
				x := G.NodeFromAny(g, in[0], G.WithName("x"))
				w := G.NodeFromAny(g, in[1], G.WithName("w"))
				var b *G.Node
				if c.bias {
					b = G.NodeFromAny(g, in[2], G.WithName("b"))
				}
				geom, err := convGeometry(x, w, b, c.stride, c.padding)
				if err != nil {
					t.Fatal(err)
				}
				dy := randDense(4, geom.yShape()...)
				if dt == tensor.Float32 {
					dy = toFloat32(dy)
				}
				vals := make([]G.Value, len(in))
				for i, d := range in {
					vals[i] = d
				}
				checkPrealloc(t, convOp{g: geom, bias: c.bias}, vals...)
				checkPrealloc(t, convGradInputOp{g: geom}, in[1], dy)
				checkPrealloc(t, convGradWeightOp{g: geom}, in[0], dy)
				checkPrealloc(t, biasGradOp{dims: 4, n: geom.n, c: geom.o, hw: geom.ohw()}, dy)
			})
		}
	}
}

// TestRunTwice runs a graph with every op of this file and its gradients
// twice on one TapeMachine and expects identical values.
func TestRunTwice(t *testing.T) {
	g := G.NewGraph()
	x := G.NodeFromAny(g, randDense(1, 2, 3, 9, 7), G.WithName("x"))
	w := G.NodeFromAny(g, randDense(2, 4, 3, 3, 3), G.WithName("w"))
	b := G.NodeFromAny(g, randDense(3, 4), G.WithName("b"))
	lw := G.NodeFromAny(g, randDense(4, 5, 4*3*2), G.WithName("lw"))
	lb := G.NodeFromAny(g, randDense(5, 5), G.WithName("lb"))
	y, err := Conv2d(x, w, b, 2, 1)
	if err == nil {
		y, err = ReLU(y)
	}
	if err == nil {
		y, err = MaxPool2d(y, 3, 2, 1)
	}
	if err == nil {
		y, err = Flatten(y)
	}
	if err == nil {
		y, err = Linear(y, lw, lb)
	}
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	loss := G.Must(G.Sum(G.Must(G.Square(y))))
	wrt := G.Nodes{x, w, b, lw, lb}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	watched := append(G.Nodes{y}, grads...)
	var first []*tensor.Dense
	for run := range 3 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		for i, n := range watched {
			v := n.Value().(*tensor.Dense)
			if run == 0 {
				first = append(first, v.Clone().(*tensor.Dense))
				continue
			}
			assertClose(t, v, first[i], 0)
		}
	}
}

func TestConv2dShapeErrors(t *testing.T) {
	tests := []struct {
		name            string
		x, w, b         []int
		stride, padding int
		dtype           tensor.Dtype
		want            string
	}{
		{name: "x rank 3", x: []int{3, 5, 5}, w: []int{2, 3, 3, 3}, stride: 1, want: "rank 4"},
		{name: "w rank 2", x: []int{1, 3, 5, 5}, w: []int{2, 27}, stride: 1, want: "rank 4"},
		{name: "channel mismatch", x: []int{1, 3, 5, 5}, w: []int{2, 4, 3, 3}, stride: 1, want: "channels"},
		{name: "kernel too large", x: []int{1, 3, 2, 5}, w: []int{2, 3, 3, 3}, stride: 1, want: "larger than the padded input"},
		{name: "zero stride", x: []int{1, 3, 5, 5}, w: []int{2, 3, 3, 3}, stride: 0, want: "stride"},
		{name: "negative padding", x: []int{1, 3, 5, 5}, w: []int{2, 3, 3, 3}, stride: 1, padding: -1, want: "padding"},
		{name: "bias length", x: []int{1, 3, 5, 5}, w: []int{2, 3, 3, 3}, b: []int{3}, stride: 1, want: "b has 3 elements"},
		{name: "bias rank", x: []int{1, 3, 5, 5}, w: []int{2, 3, 3, 3}, b: []int{2, 1}, stride: 1, want: "rank 1"},
		{name: "int dtype", x: []int{1, 3, 5, 5}, w: []int{2, 3, 3, 3}, stride: 1, dtype: tensor.Int, want: "dtype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := G.NewGraph()
			dt := tensor.Float64
			if tt.dtype != (tensor.Dtype{}) {
				dt = tt.dtype
			}
			x := G.NewTensor(g, dt, len(tt.x), G.WithShape(tt.x...), G.WithName("x"))
			w := G.NewTensor(g, tensor.Float64, len(tt.w), G.WithShape(tt.w...), G.WithName("w"))
			var b *G.Node
			if tt.b != nil {
				b = G.NewTensor(g, tensor.Float64, len(tt.b), G.WithShape(tt.b...), G.WithName("b"))
			}
			_, err := Conv2d(x, w, b, tt.stride, tt.padding)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("nil x", func(t *testing.T) {
		g := G.NewGraph()
		w := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 3, 3), G.WithName("w"))
		if _, err := Conv2d(nil, w, nil, 1, 0); err == nil {
			t.Fatal("got no error for a nil x")
		}
	})
	t.Run("mixed dtypes", func(t *testing.T) {
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, 3, 5, 5), G.WithName("x"))
		w := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 3, 3), G.WithName("w"))
		if _, err := Conv2d(x, w, nil, 1, 0); err == nil || !strings.Contains(err.Error(), "one dtype") {
			t.Fatalf("got error %v, want one about mixed dtypes", err)
		}
	})
}

// BenchmarkConv2d times a VGG-style 3×3 layer at CIFAR scale in float32,
// forward alone and forward with all three gradients, in GFLOP/s of the
// multiply-adds done (forward once, backward twice that).
func BenchmarkConv2d(b *testing.B) {
	const n, c, o, hw = 16, 64, 64, 32
	macs := float64(n * o * hw * hw * c * 9)
	for _, bc := range []struct {
		name     string
		backward bool
	}{{"forward", false}, {"forward+backward", true}} {
		b.Run(bc.name, func(b *testing.B) {
			g := G.NewGraph()
			x := G.NodeFromAny(g, toFloat32(randDense(1, n, c, hw, hw)), G.WithName("x"))
			w := G.NodeFromAny(g, toFloat32(randDense(2, o, c, 3, 3)), G.WithName("w"))
			bias := G.NodeFromAny(g, toFloat32(randDense(3, o)), G.WithName("b"))
			y, err := Conv2d(x, w, bias, 1, 1)
			if err != nil {
				b.Fatal(err)
			}
			flops := 2 * macs
			if bc.backward {
				if _, err := G.Grad(G.Must(G.Sum(y)), x, w, bias); err != nil {
					b.Fatal(err)
				}
				flops *= 3
			}
			m := G.NewTapeMachine(g)
			defer m.Close()
			for b.Loop() {
				m.Reset()
				if err := m.RunAll(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

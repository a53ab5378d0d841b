package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// dropoutGraph is loss = Σ Dropout(x, p) ⊙ R with x's gradient, on a
// float64 x of values in [1, 2) (so no element is 0 before dropout).
type dropoutGraph struct {
	m    G.VM
	y    *G.Node
	dx   *G.Node
	r    []float64
	xval []float64
}

// newDropoutGraph builds a dropoutGraph for n elements (a multiple of 10).
func newDropoutGraph(t *testing.T, n int, p float64, src *rand.PCG) *dropoutGraph {
	t.Helper()
	xv := make([]float64, n)
	for i := range xv {
		xv[i] = 1 + float64(i%7)/8
	}
	g := G.NewGraph()
	x := G.NodeFromAny(g, tensor.New(tensor.WithShape(n/10, 10), tensor.WithBacking(xv)), G.WithName("x"))
	y, err := Dropout(x, p, src, true)
	if err != nil {
		t.Fatalf("Dropout: %v", err)
	}
	r := randDense(7, n/10, 10)
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, G.NodeFromAny(g, r, G.WithName("R"))))))
	grads, err := G.Grad(loss, x)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	return &dropoutGraph{m: G.NewTapeMachine(g), y: y, dx: grads[0], r: data[float64](r), xval: xv}
}

// run runs the graph once and returns the mask it drew (true = kept).
func (d *dropoutGraph) run(t *testing.T) []bool {
	t.Helper()
	d.m.Reset()
	if err := d.m.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	y := data[float64](d.y.Value().(*tensor.Dense))
	keep := make([]bool, len(y))
	for i, v := range y {
		keep[i] = v != 0
	}
	return keep
}

func TestDropoutForwardAndGradient(t *testing.T) {
	const n = 200000
	for _, p := range []float64{0.3, 0.5, 0.7} {
		t.Run(fmt.Sprintf("p=%g", p), func(t *testing.T) {
			d := newDropoutGraph(t, n, p, rand.NewPCG(1, 2))
			defer d.m.Close()
			for run := range 2 { // the second run draws a new mask and must use it in backward
				keep := d.run(t)
				y := data[float64](d.y.Value().(*tensor.Dense))
				dx := data[float64](d.dx.Value().(*tensor.Dense))
				scale := 1 / (1 - p)
				zeroed, sumX, sumY := 0, 0.0, 0.0
				for i := range y {
					wantY, wantDx := 0.0, 0.0
					if keep[i] {
						wantY, wantDx = d.xval[i]*scale, d.r[i]*scale
					} else {
						zeroed++
					}
					if y[i] != wantY || dx[i] != wantDx {
						t.Fatalf("p=%g run %d element %d: got y %g dx %g, want y %g dx %g", p, run, i, y[i], dx[i], wantY, wantDx)
					}
					sumX += d.xval[i]
					sumY += y[i]
				}
				if frac := float64(zeroed) / n; math.Abs(frac-p) > 0.01 {
					t.Errorf("p=%g: fraction zeroed %.4f, want %.2f±0.01", p, frac, p)
				}
				if rel := math.Abs(sumY-sumX) / sumX; rel > 0.01 {
					t.Errorf("p=%g: mean of output %.4f, mean of input %.4f", p, sumY/n, sumX/n)
				}
			}
		})
	}
}

func TestDropoutMaskFromSource(t *testing.T) {
	a := newDropoutGraph(t, 1000, 0.3, rand.NewPCG(5, 6))
	defer a.m.Close()
	src := rand.NewPCG(5, 6)
	b := newDropoutGraph(t, 1000, 0.3, src)
	defer b.m.Close()
	a1, b1 := a.run(t), b.run(t)
	if !slices.Equal(a1, b1) {
		t.Fatal("same seed: masks differ")
	}
	state, err := src.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b2 := b.run(t)
	if slices.Equal(b1, b2) {
		t.Fatal("two runs drew the same mask")
	}
	if err := src.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	if b3 := b.run(t); !slices.Equal(b2, b3) {
		t.Fatal("restored source: mask differs from the one drawn after the marshalled state")
	}
}

func TestDropoutAllDropped(t *testing.T) {
	d := newDropoutGraph(t, 100, 1, rand.NewPCG(1, 1))
	defer d.m.Close()
	d.run(t)
	for _, v := range [][]float64{data[float64](d.y.Value().(*tensor.Dense)), data[float64](d.dx.Value().(*tensor.Dense))} {
		for i, f := range v {
			if f != 0 {
				t.Fatalf("p=1: element %d is %g, want 0", i, f)
			}
		}
	}
}

func TestDropoutFloat32Scale(t *testing.T) {
	g := G.NewGraph()
	xv := make([]float32, 1000)
	for i := range xv {
		xv[i] = 1
	}
	x := G.NodeFromAny(g, tensor.New(tensor.WithShape(10, 10, 10), tensor.WithBacking(xv)), G.WithName("x"))
	y, err := Dropout(x, 0.3, rand.NewPCG(3, 4), true)
	if err != nil {
		t.Fatalf("Dropout: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	want := float32(1) / float32(0.7)
	kept := 0
	for i, v := range data[float32](y.Value().(*tensor.Dense)) {
		if v != 0 && v != want {
			t.Fatalf("element %d: got %g, want 0 or %g", i, v, want)
		}
		if v != 0 {
			kept++
		}
	}
	if kept < 600 || kept > 800 {
		t.Errorf("kept %d of 1000, want about 700", kept)
	}
}

func TestDropoutIdentityAndErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 3), G.WithName("x"))
	xi := G.NewMatrix(g, tensor.Int, G.WithShape(2, 3), G.WithName("xi"))
	src := rand.NewPCG(1, 2)
	for _, tc := range []struct {
		name  string
		x     *G.Node
		p     float64
		src   *rand.PCG
		train bool
		want  string // "" means x itself comes back
	}{
		{"eval", x, 0.5, src, false, ""},
		{"p=0", x, 0, src, true, ""},
		{"eval with nil source", x, 0.5, nil, false, ""},
		{"negative p", x, -0.1, src, true, "outside [0, 1]"},
		{"p above 1", x, 1.5, src, true, "outside [0, 1]"},
		{"NaN p", x, math.NaN(), src, true, "outside [0, 1]"},
		{"nil source", x, 0.5, nil, true, "nil random source"},
		{"int dtype", xi, 0.5, src, true, "only float32 and float64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y, err := Dropout(tc.x, tc.p, tc.src, tc.train)
			if tc.want == "" {
				if err != nil || y != tc.x {
					t.Fatalf("got (%v, %v), want x itself and no error", y, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

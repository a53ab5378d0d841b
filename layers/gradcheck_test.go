package layers

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// randDense returns a float64 tensor of the given shape with entries drawn
// uniformly from [-1, 1) by a seeded generator.
func randDense(seed uint64, shape ...int) *tensor.Dense {
	r := rand.New(rand.NewPCG(seed, 1))
	n := 1
	for _, s := range shape {
		n *= s
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = 2*r.Float64() - 1
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

// gradCheck compares the gradients Gorgonia computes through build's graph
// with central finite differences, in float64. build receives one node per
// input (bound to inputs[i]) and returns the output node; the scalar that is
// differentiated is the output itself when it is a scalar, else sum(output ⊙ R)
// for a fixed random R, so every output
// element's gradient path is exercised. wrt lists the inputs to check.
// Inputs are perturbed in place and restored.
func gradCheck(t *testing.T, build func(xs []*G.Node) (*G.Node, error), inputs []*tensor.Dense, wrt []int, tol float64) {
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
	loss := y
	if !y.IsScalar() {
		r := randDense(99, y.Shape()...)
		rn := G.NodeFromAny(g, r, G.WithName("R"))
		loss = G.Must(G.Sum(G.Must(G.HadamardProd(y, rn))))
	}
	wrtNodes := make(G.Nodes, len(wrt))
	for i, w := range wrt {
		wrtNodes[i] = xs[w]
	}
	grads, err := G.Grad(loss, wrtNodes...)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	run := func() float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatalf("RunAll: %v", err)
		}
		return loss.Value().Data().(float64)
	}
	run()
	analytic := make([][]float64, len(wrt))
	for i, gn := range grads {
		analytic[i] = append([]float64(nil), gn.Value().Data().([]float64)...)
	}
	const h = 1e-6
	for i, w := range wrt {
		x := inputs[w].Data().([]float64)
		worst := 0.0
		for j := range x {
			old := x[j]
			x[j] = old + h
			up := run()
			x[j] = old - h
			down := run()
			x[j] = old
			num := (up - down) / (2 * h)
			diff := math.Abs(num-analytic[i][j]) / math.Max(1, math.Abs(num))
			worst = max(worst, diff)
			if diff > tol {
				t.Errorf("input %d element %d: analytic %.8g, numeric %.8g", w, j, analytic[i][j], num)
				return
			}
		}
		t.Logf("input %d: worst relative gradient error %.2g over %d elements", w, worst, len(x))
	}
}

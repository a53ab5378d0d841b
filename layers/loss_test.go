package layers

import (
	"fmt"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestCrossEntropyGradient(t *testing.T) {
	for _, eps := range []float64{0, 0.1, 1} {
		t.Run(fmt.Sprintf("smoothing=%g", eps), func(t *testing.T) {
			logits := randDense(21, 4, 5)
			labels := tensor.New(tensor.WithShape(4), tensor.WithBacking([]float64{0, 3, 4, 1}))
			ones := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{1}))
			gradCheck(t, func(xs []*G.Node) (*G.Node, error) {
				loss, err := CrossEntropy(xs[0], xs[1], eps)
				if err != nil {
					return nil, err
				}
				// gradCheck's own scalar path fails on Gorgonia's scalar
				// types; a (1) vector takes its tensor path.
				return G.Mul(loss, xs[2])
			}, []*tensor.Dense{logits, labels, ones}, []int{0}, 1e-6)
		})
	}
}

// xentRun builds CrossEntropy with its gradient and runs it once; it returns
// the loss and the gradient of the logits, or RunAll's error.
func xentRun(t *testing.T, logits, labels *tensor.Dense, eps float64) (float64, []float64, error) {
	t.Helper()
	g := G.NewGraph()
	z := G.NodeFromAny(g, logits, G.WithName("z"))
	loss, err := CrossEntropy(z, G.NodeFromAny(g, labels, G.WithName("labels")), eps)
	if err != nil {
		t.Fatalf("CrossEntropy: %v", err)
	}
	if _, err := G.Grad(loss, z); err != nil {
		t.Fatalf("Grad: %v", err)
	}
	m := G.NewTapeMachine(g, G.BindDualValues(z))
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return 0, nil, err
	}
	dz, err := z.Grad()
	if err != nil {
		t.Fatalf("z.Grad: %v", err)
	}
	var l float64
	switch v := loss.Value().Data().(type) {
	case float32:
		l = float64(v)
	case float64:
		l = v
	}
	return l, bnLoad(dz.(*tensor.Dense)), nil
}

func TestCrossEntropyByHand(t *testing.T) {
	// Values from torch.nn.functional.cross_entropy in float64.
	for _, tc := range []struct {
		eps      float64
		loss     float64
		gradient []float64
	}{
		{0, 0.4076059644443804, []float64{0.04501528658519022, 0.12236423552739882, -0.1673795221125891, -0.1673795221125891, 0.12236423552739882, 0.04501528658519022}},
		{0.1, 0.5076059644443804, []float64{0.02834861991852355, 0.10569756886073216, -0.13404618877925578, -0.13404618877925578, 0.10569756886073216, 0.02834861991852355}},
	} {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(fmt.Sprintf("smoothing=%g/%v", tc.eps, dt), func(t *testing.T) {
				logits := bnCast(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{1, 2, 3, 1, 0, -1})), dt)
				labels := bnCast(tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{2, 0})), dt)
				loss, grad, err := xentRun(t, logits, labels, tc.eps)
				if err != nil {
					t.Fatalf("RunAll: %v", err)
				}
				tol := map[tensor.Dtype]float64{tensor.Float64: 1e-14, tensor.Float32: 1e-7}[dt]
				bnAssertClose(t, "loss", []float64{loss}, []float64{tc.loss}, tol)
				bnAssertClose(t, "gradient", grad, tc.gradient, tol)
			})
		}
	}
}

func TestCrossEntropyLargeLogits(t *testing.T) {
	logits := tensor.New(tensor.WithShape(1, 2), tensor.WithBacking([]float32{1000, 1001}))
	labels := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{0}))
	loss, grad, err := xentRun(t, logits, labels, 0)
	if err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	want := math.Log1p(math.E) // −log(e^0 / (e^0 + e^1))
	bnAssertClose(t, "loss", []float64{loss}, []float64{want}, 1e-6)
	p := 1 / (1 + math.Exp(-1))
	bnAssertClose(t, "gradient", grad, []float64{(1 - p) - 1, p}, 1e-6)
}

func TestCrossEntropyInvalidLabel(t *testing.T) {
	logits := randDense(22, 2, 3)
	for _, bad := range []float64{3, -1, 1.5, math.NaN()} {
		t.Run(fmt.Sprint(bad), func(t *testing.T) {
			labels := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{0, bad}))
			_, _, err := xentRun(t, logits, labels, 0)
			if err == nil || !strings.Contains(err.Error(), "not a class index in 0..2") {
				t.Fatalf("got error %v, want one about the label", err)
			}
		})
	}
}

func TestCrossEntropyBuildErrors(t *testing.T) {
	g := G.NewGraph()
	z := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 3), G.WithName("z"))
	z3 := G.NewTensor(g, tensor.Float64, 3, G.WithShape(4, 3, 1), G.WithName("z3"))
	zi := G.NewMatrix(g, tensor.Int, G.WithShape(4, 3), G.WithName("zi"))
	y := G.NewVector(g, tensor.Float64, G.WithShape(4), G.WithName("y"))
	y5 := G.NewVector(g, tensor.Float64, G.WithShape(5), G.WithName("y5"))
	yi := G.NewVector(g, tensor.Int, G.WithShape(4), G.WithName("yi"))
	for _, tc := range []struct {
		name         string
		logits, labs *G.Node
		eps          float64
		want         string
	}{
		{"rank 3 logits", z3, y, 0, "want (N, K)"},
		{"label count", z, y5, 0, "labels have shape"},
		{"int logits", zi, yi, 0, "only float32 and float64"},
		{"int labels", z, yi, 0, "labels have dtype"},
		{"negative smoothing", z, y, -0.1, "outside [0, 1]"},
		{"smoothing above 1", z, y, 1.1, "outside [0, 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CrossEntropy(tc.logits, tc.labs, tc.eps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCrossEntropyFloat32(t *testing.T) {
	for _, eps := range []float64{0, 0.1} {
		logits := randDense(35, 8, 10)
		for i, v := range data[float64](logits) {
			data[float64](logits)[i] = 20 * v
		}
		labels := tensor.New(tensor.WithShape(8), tensor.WithBacking([]float64{0, 9, 3, 3, 5, 1, 7, 2}))
		ones := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{1}))
		float32Parity(t, func(xs []*G.Node) (*G.Node, error) {
			loss, err := CrossEntropy(xs[0], xs[1], eps)
			if err != nil {
				return nil, err
			}
			return G.Mul(loss, xs[2])
		}, []*tensor.Dense{logits, labels, ones}, []int{0}, 1e-6)
	}
}

func ExampleCrossEntropy() {
	g := G.NewGraph()
	logits := G.NodeFromAny(g, tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{1, 2, 3, 1, 0, -1})), G.WithName("logits"))
	labels := G.NodeFromAny(g, tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{2, 0})), G.WithName("labels"))
	loss, err := CrossEntropy(logits, labels, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := G.Grad(loss, logits); err != nil {
		fmt.Println(err)
		return
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("loss %.4f\n", loss.Value().Data())
	// Output: loss 0.4076
}

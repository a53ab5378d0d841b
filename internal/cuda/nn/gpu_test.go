package nn

// GPU against CPU: every function of this package is compared with the CPU
// op of package layers (or train's solvers) on the same inputs, forward and
// gradients, within 1e-4 relative. The tests run where cuda.Open succeeds
// and skip elsewhere; ZOO_CUDA_REQUIRED=1 (set by scripts/gpu-check.sh)
// turns the skip into a failure.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gozoo/gozoo/internal/cuda"
	"github.com/gozoo/gozoo/layers"
	"github.com/gozoo/gozoo/train"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// backend opens the GPU or skips (fails under ZOO_CUDA_REQUIRED=1).
func backend(t *testing.T) *Backend {
	t.Helper()
	d, err := cuda.Open(cuda.Options{})
	if err != nil {
		if os.Getenv("ZOO_CUDA_REQUIRED") == "1" {
			t.Fatalf("ZOO_CUDA_REQUIRED=1 but: %v", err)
		}
		if errors.Is(err, cuda.ErrNoDriver) {
			t.Skip("no NVIDIA driver: GPU comparisons skipped")
		}
		t.Skipf("no usable GPU: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	b, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rnd returns n values uniform in [-1, 1) from a seeded PCG.
func rnd(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2*r.Float64() - 1)
	}
	return v
}

// input is a host tensor.
type input struct {
	data  []float32
	shape []int
}

func in(seed uint64, shape ...int) input {
	n := 1
	for _, s := range shape {
		n *= s
	}
	return input{rnd(seed, n), shape}
}

// cpuRun builds the CPU graph over ins, takes loss = Σ y⊙r (r fixed
// random) unless y is a scalar, and returns y and the gradients of the
// inputs listed in wrt.
func cpuRun(t *testing.T, ins []input, wrt []int, build func(xs []*G.Node) (*G.Node, error)) (y []float32, r []float32, grads [][]float32) {
	t.Helper()
	g := G.NewGraph()
	xs := make([]*G.Node, len(ins))
	for i, x := range ins {
		d := tensor.New(tensor.WithShape(x.shape...), tensor.WithBacking(append([]float32(nil), x.data...)))
		xs[i] = G.NodeFromAny(g, d, G.WithName(fmt.Sprintf("x%d", i)))
	}
	yn, err := build(xs)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	loss := yn
	if !yn.IsScalar() {
		r = rnd(99, yn.Shape().TotalSize())
		rn := G.NodeFromAny(g, tensor.New(tensor.WithShape(yn.Shape().Clone()...), tensor.WithBacking(r)), G.WithName("r"))
		loss = G.Must(G.Sum(G.Must(G.HadamardProd(yn, rn))))
	}
	var nodes G.Nodes
	for _, i := range wrt {
		nodes = append(nodes, xs[i])
	}
	gn, err := G.Grad(loss, nodes...)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	if yn.IsScalar() {
		y = []float32{yn.Value().Data().(float32)}
	} else {
		y = append([]float32(nil), yn.Value().Data().([]float32)...)
	}
	for _, n := range gn {
		grads = append(grads, append([]float32(nil), n.Value().Data().([]float32)...))
	}
	return y, r, grads
}

// near reports the largest difference of got from want, failing beyond
// 1e-4 relative to want's largest magnitude (at least 1e-3).
func near(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	var diff, scale float64
	for i := range got {
		diff = max(diff, math.Abs(float64(got[i])-float64(want[i])))
		scale = max(scale, math.Abs(float64(want[i])))
	}
	tol := 1e-4 * max(scale, 1e-3)
	t.Logf("%s: max |gpu−cpu| = %.3g (scale %.3g)", what, diff, scale)
	if !(diff <= tol) {
		t.Errorf("%s: max |gpu−cpu| = %g > %g", what, diff, tol)
	}
}

// up uploads host data or fails the test.
func up(t *testing.T, b *Backend, x input) Tensor {
	t.Helper()
	d, err := b.Upload(x.data, x.shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Free(d) })
	return d
}

// down downloads or fails the test.
func down(t *testing.T, b *Backend, x Tensor, err error) []float32 {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Free(x) })
	v, err := b.Download(x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestConv2dGPU(t *testing.T) {
	b := backend(t)
	tests := []struct {
		name            string
		x, w            input
		bias            bool
		stride, padding int
	}{
		{"3x3 s1 p1 bias", in(1, 2, 3, 8, 8), in(2, 4, 3, 3, 3), true, 1, 1},
		{"3x3 s2 p0", in(3, 3, 2, 7, 9), in(4, 5, 2, 3, 3), false, 2, 0},
		{"1x1", in(5, 2, 4, 4, 4), in(6, 3, 4, 1, 1), true, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins, wrt := []input{tt.x, tt.w}, []int{0, 1}
			if tt.bias {
				ins, wrt = append(ins, in(7, tt.w.shape[0])), []int{0, 1, 2}
			}
			y, r, grads := cpuRun(t, ins, wrt, func(xs []*G.Node) (*G.Node, error) {
				var bn *G.Node
				if tt.bias {
					bn = xs[2]
				}
				return layers.Conv2d(xs[0], xs[1], bn, tt.stride, tt.padding)
			})
			x, w := up(t, b, tt.x), up(t, b, tt.w)
			var bias Tensor
			if tt.bias {
				bias = up(t, b, ins[2])
			}
			gy, err := b.Conv2d(x, w, bias, tt.stride, tt.padding)
			near(t, "y", down(t, b, gy, err), y)
			dy := up(t, b, input{r, gy.Shape})
			dx, dw, db, err := b.Conv2dBackward(x, w, dy, tt.stride, tt.padding)
			near(t, "dx", down(t, b, dx, err), grads[0])
			near(t, "dw", down(t, b, dw, nil), grads[1])
			if tt.bias {
				near(t, "db", down(t, b, db, nil), grads[2])
			}
		})
	}
}

func TestLinearGPU(t *testing.T) {
	b := backend(t)
	ins := []input{in(1, 5, 7), in(2, 3, 7), in(3, 3)}
	y, r, grads := cpuRun(t, ins, []int{0, 1, 2}, func(xs []*G.Node) (*G.Node, error) { return layers.Linear(xs[0], xs[1], xs[2]) })
	x, w, bias := up(t, b, ins[0]), up(t, b, ins[1]), up(t, b, ins[2])
	gy, err := b.Linear(x, w, bias)
	near(t, "y", down(t, b, gy, err), y)
	dx, dw, db, err := b.LinearBackward(x, w, up(t, b, input{r, gy.Shape}))
	near(t, "dx", down(t, b, dx, err), grads[0])
	near(t, "dw", down(t, b, dw, nil), grads[1])
	near(t, "db", down(t, b, db, nil), grads[2])
}

func TestReLUGPU(t *testing.T) {
	b := backend(t)
	ins := []input{in(1, 2, 3, 4, 5)}
	y, r, grads := cpuRun(t, ins, []int{0}, func(xs []*G.Node) (*G.Node, error) { return layers.ReLU(xs[0]) })
	gy, err := b.ReLU(up(t, b, ins[0]))
	near(t, "y", down(t, b, gy, err), y)
	dx, err := b.ReLUGrad(gy, up(t, b, input{r, gy.Shape}))
	near(t, "dx", down(t, b, dx, err), grads[0])
}

func TestMaxPool2dGPU(t *testing.T) {
	b := backend(t)
	for _, tt := range []struct{ k, s, p int }{{2, 2, 0}, {3, 2, 1}, {3, 1, 1}} {
		t.Run(fmt.Sprintf("k%d s%d p%d", tt.k, tt.s, tt.p), func(t *testing.T) {
			ins := []input{in(1, 2, 3, 8, 7)}
			y, r, grads := cpuRun(t, ins, []int{0}, func(xs []*G.Node) (*G.Node, error) { return layers.MaxPool2d(xs[0], tt.k, tt.s, tt.p) })
			gy, am, err := b.MaxPool2d(up(t, b, ins[0]), tt.k, tt.s, tt.p)
			near(t, "y", down(t, b, gy, err), y)
			t.Cleanup(func() { b.Free(am) })
			dx, err := b.MaxPool2dGrad(up(t, b, input{r, gy.Shape}), am, 8, 7, tt.k, tt.s, tt.p)
			near(t, "dx", down(t, b, dx, err), grads[0])
		})
	}
}

func TestAdaptiveAvgPool2dGPU(t *testing.T) {
	b := backend(t)
	for _, tt := range []struct{ h, w, oh, ow int }{{5, 7, 3, 2}, {1, 1, 7, 7}, {4, 4, 1, 1}} {
		t.Run(fmt.Sprintf("%dx%d to %dx%d", tt.h, tt.w, tt.oh, tt.ow), func(t *testing.T) {
			ins := []input{in(1, 2, 3, tt.h, tt.w)}
			y, r, grads := cpuRun(t, ins, []int{0}, func(xs []*G.Node) (*G.Node, error) { return layers.AdaptiveAvgPool2d(xs[0], tt.oh, tt.ow) })
			gy, err := b.AdaptiveAvgPool2d(up(t, b, ins[0]), tt.oh, tt.ow)
			near(t, "y", down(t, b, gy, err), y)
			dx, err := b.AdaptiveAvgPool2dGrad(up(t, b, input{r, gy.Shape}), tt.h, tt.w)
			near(t, "dx", down(t, b, dx, err), grads[0])
		})
	}
}

func TestBatchNorm2dGPU(t *testing.T) {
	b := backend(t)
	for _, train := range []bool{true, false} {
		t.Run(fmt.Sprintf("train=%t", train), func(t *testing.T) {
			ins := []input{in(1, 4, 3, 5, 5), in(2, 3), in(3, 3)}
			stats := layers.NewBNStats(tensor.Float32, 3)
			y, r, grads := cpuRun(t, ins, []int{0, 1, 2}, func(xs []*G.Node) (*G.Node, error) {
				return layers.BatchNorm2d(xs[0], xs[1], xs[2], stats, train)
			})
			rm, rv := up(t, b, input{make([]float32, 3), []int{3}}), up(t, b, input{[]float32{1, 1, 1}, []int{3}})
			x, gamma := up(t, b, ins[0]), up(t, b, ins[1])
			gy, mean, invStd, err := b.BatchNorm2d(x, gamma, up(t, b, ins[2]), rm, rv, stats.Eps, stats.Momentum, train)
			near(t, "y", down(t, b, gy, err), y)
			t.Cleanup(func() { b.Free(mean, invStd) })
			dx, dg, db, err := b.BatchNorm2dBackward(x, gamma, up(t, b, input{r, gy.Shape}), mean, invStd, train)
			near(t, "dx", down(t, b, dx, err), grads[0])
			near(t, "dgamma", down(t, b, dg, nil), grads[1])
			near(t, "dbeta", down(t, b, db, nil), grads[2])
			gm, _ := b.Download(rm)
			gv, _ := b.Download(rv)
			near(t, "running mean", gm, stats.Mean.Data().([]float32))
			near(t, "running var", gv, stats.Var.Data().([]float32))
		})
	}
}

func TestDropoutGPU(t *testing.T) {
	b := backend(t)
	const p = 0.3
	ins := []input{in(1, 4, 50)}
	y, r, grads := cpuRun(t, ins, []int{0}, func(xs []*G.Node) (*G.Node, error) {
		return layers.Dropout(xs[0], p, rand.NewPCG(11, 12), true)
	})
	// The same stream the CPU op draws from: one Float64 per element.
	rng := rand.New(rand.NewPCG(11, 12))
	keep := make([]bool, 200)
	for i := range keep {
		keep[i] = rng.Float64() >= p
	}
	mask, err := b.UploadMask(keep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Free(mask) })
	gy, err := b.Dropout(up(t, b, ins[0]), mask, p)
	near(t, "y", down(t, b, gy, err), y)
	dx, err := b.Dropout(up(t, b, input{r, gy.Shape}), mask, p)
	near(t, "dx", down(t, b, dx, err), grads[0])
}

func TestCrossEntropyGPU(t *testing.T) {
	b := backend(t)
	labels := []float32{3, 0, 9, 4, 4, 1}
	for _, eps := range []float64{0, 0.1} {
		t.Run(fmt.Sprint("smoothing ", eps), func(t *testing.T) {
			ins := []input{in(1, 6, 10), {labels, []int{6}}}
			y, _, grads := cpuRun(t, ins, []int{0}, func(xs []*G.Node) (*G.Node, error) { return layers.CrossEntropy(xs[0], xs[1], eps) })
			z := up(t, b, ins[0])
			loss, lab, err := b.CrossEntropy(z, labels, eps)
			near(t, "loss", down(t, b, loss, err), y)
			t.Cleanup(func() { b.Free(lab) })
			dz, err := b.CrossEntropyGrad(z, lab, eps, 1)
			near(t, "dz", down(t, b, dz, err), grads[0])
		})
	}
	if _, _, err := b.CrossEntropy(up(t, b, in(1, 2, 10)), []float32{1, 10}, 0); !errors.Is(err, ErrLabel) {
		t.Errorf("label 10 of 10 classes: err = %v, want ErrLabel", err)
	}
}

// TestSolversGPU runs three steps of each solver on both sides.
func TestSolversGPU(t *testing.T) {
	b := backend(t)
	sgd := func(c train.SGDConfig) func() (train.Optimizer, error) {
		return func() (train.Optimizer, error) { return train.NewSGD(c) }
	}
	adam := train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	tests := []struct {
		name string
		cpu  func() (train.Optimizer, error)
		step func(w, g Tensor, bufs []Tensor, k int) error
	}{
		{"sgd momentum nesterov wd", sgd(train.SGDConfig{Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}),
			func(w, g Tensor, bufs []Tensor, k int) error {
				return b.SGDStep(w, g, bufs[0], 0.1, 5e-4, 0.9, 0, true, k == 1)
			}},
		{"sgd plain", sgd(train.SGDConfig{}),
			func(w, g Tensor, _ []Tensor, k int) error {
				return b.SGDStep(w, g, Tensor{}, 0.1, 0, 0, 0, false, k == 1)
			}},
		{"adam", func() (train.Optimizer, error) { return train.NewAdam(adam) },
			func(w, g Tensor, bufs []Tensor, k int) error {
				return b.AdamStep(w, g, bufs[0], bufs[1], Tensor{}, 0.1, k, AdamConfig{0.9, 0.999, 1e-8, 0.01, false})
			}},
		{"adamw", func() (train.Optimizer, error) { return train.NewAdamW(adam) },
			func(w, g Tensor, bufs []Tensor, k int) error {
				return b.AdamStep(w, g, bufs[0], bufs[1], Tensor{}, 0.1, k, AdamConfig{0.9, 0.999, 1e-8, 0.01, true})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt, err := tt.cpu()
			if err != nil {
				t.Fatal(err)
			}
			w0 := in(1, 100)
			wc := tensor.New(tensor.WithShape(100), tensor.WithBacking(append([]float32(nil), w0.data...)))
			w := up(t, b, w0)
			bufs := []Tensor{up(t, b, input{make([]float32, 100), []int{100}}), up(t, b, input{make([]float32, 100), []int{100}})}
			for k := 1; k <= 3; k++ {
				g := in(uint64(10+k), 100)
				gc := tensor.New(tensor.WithShape(100), tensor.WithBacking(append([]float32(nil), g.data...)))
				if err := opt.Step([]train.Param{{Name: "w", Value: wc, Grad: gc}}, 0.1); err != nil {
					t.Fatal(err)
				}
				if err := tt.step(w, up(t, b, g), bufs, k); err != nil {
					t.Fatal(err)
				}
			}
			got, err := b.Download(w)
			if err != nil {
				t.Fatal(err)
			}
			near(t, "w after 3 steps", got, wc.Data().([]float32))
		})
	}
}

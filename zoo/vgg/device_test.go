package vgg

// The device path (Device: graphs of internal/cuda/ops, the device SGD)
// against the CPU path (Net + train.SGD) from the same weights on the same
// batches. The host emulation (internal/cuda/emu) runs everywhere; the CUDA
// backend (internal/cuda/nn) where a GPU is found, skipping elsewhere unless
// ZOO_CUDA_REQUIRED=1 (scripts/gpu-check.sh sets it).

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/internal/cuda"
	"github.com/gozoo/gozoo/internal/cuda/emu"
	"github.com/gozoo/gozoo/internal/cuda/nn"
	"github.com/gozoo/gozoo/internal/cuda/ops"
	"github.com/gozoo/gozoo/train"
	G "gorgonia.org/gorgonia"
)

// gpuBackend opens the GPU backend or skips (fails under ZOO_CUDA_REQUIRED=1).
func gpuBackend(t *testing.T) *nn.Backend {
	t.Helper()
	d, err := cuda.Open(cuda.Options{})
	if err != nil {
		if os.Getenv("ZOO_CUDA_REQUIRED") == "1" {
			t.Fatalf("ZOO_CUDA_REQUIRED=1 but: %v", err)
		}
		if errors.Is(err, cuda.ErrNoDriver) {
			t.Skip("no NVIDIA driver: the CUDA backend is not tested here")
		}
		t.Skipf("no usable GPU: %v", err)
	}
	b, err := nn.New(d)
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// batch returns seeded images and labels.
func batch(seed uint64, n, c, h, w, classes int) ([]float32, []int) {
	r := rand.New(rand.NewPCG(seed, 3))
	x := make([]float32, n*c*h*w)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	y := make([]int, n)
	for i := range y {
		y[i] = r.IntN(classes)
	}
	return x, y
}

// relDiff is max|got − want| / max|want|.
func relDiff(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var d, s float64
	for i := range got {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
		s = max(s, math.Abs(float64(want[i])))
	}
	return d / max(s, 1e-12)
}

type stepCase struct {
	name  string
	model string
	opts  Options
}

var stepCases = []stepCase{
	{"vgg11 cifar head", "vgg11", Options{WidthMult: 1.0 / 16, Seed: 3}},
	{"vgg11_bn cifar head", "vgg11_bn", Options{WidthMult: 1.0 / 16, Seed: 4}},
	{"vgg11_bn imagenet head with dropout", "vgg11_bn", Options{WidthMult: 1.0 / 16, Seed: 5, Head: HeadImageNet}},
}

// compareSteps takes three SGD steps (momentum, weight decay) on both paths
// and compares the losses and logits at every step, then the weights and
// running statistics, then an evaluation pass, within tol relative.
func compareSteps[T any](t *testing.T, b ops.Backend[T], tc stepCase, n int, tol float64) {
	cpuM, err := New(tc.model, tc.opts)
	if err != nil {
		t.Fatal(err)
	}
	devM, err := New(tc.model, tc.opts)
	if err != nil {
		t.Fatal(err)
	}
	net, err := cpuM.NewNet(NetOptions{LabelSmoothing: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	dev, err := NewDevice(devM, b, NetOptions{LabelSmoothing: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.SGDConfig{Momentum: 0.9, WeightDecay: 5e-4}
	cpuOpt, err := train.NewSGD(cfg)
	if err != nil {
		t.Fatal(err)
	}
	devOpt, err := dev.NewSGD(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := cpuM.Opts
	check := func(what string, got, want []float32) {
		t.Helper()
		d := relDiff(got, want)
		if testing.Verbose() && (what == "step 3 loss" || what == "evaluation logits" || what == "features.0.weight") {
			t.Logf("%s: max|device − cpu|/max|cpu| = %.3g", what, d)
		}
		if !(d <= tol) {
			t.Errorf("%s: max|device − cpu|/max|cpu| = %.3g > %.g", what, d, tol)
		}
	}
	for step := 1; step <= 3; step++ {
		x, y := batch(uint64(step), n, o.InChannels, o.Height, o.Width, o.Classes)
		want, err := net.Forward(x, y, true)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dev.Forward(x, y, true)
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("step %d loss", step), []float32{float32(got.Loss)}, []float32{float32(want.Loss)})
		check(fmt.Sprintf("step %d logits", step), got.Logits, want.Logits)
		if err := cpuOpt.Step(net.Params(), 0.05); err != nil {
			t.Fatal(err)
		}
		if err := devOpt.Step(dev.Params(), 0.05); err != nil {
			t.Fatal(err)
		}
	}
	if err := dev.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, p := range cpuM.Params() {
		got, _ := devM.Tensor(p.Name)
		check(p.Name, got.Float32s(), p.Value.Float32s())
	}
	for name, s := range cpuM.stats {
		ds := devM.stats[name]
		check(name+".running_mean", ds.Mean.Float32s(), s.Mean.Float32s())
		check(name+".running_var", ds.Var.Float32s(), s.Var.Float32s())
		if ds.NumBatchesTracked != s.NumBatchesTracked {
			t.Errorf("%s.num_batches_tracked: device %d, cpu %d", name, ds.NumBatchesTracked, s.NumBatchesTracked)
		}
	}
	x, y := batch(9, n, o.InChannels, o.Height, o.Width, o.Classes)
	want, err := net.Forward(x, y, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dev.Logits(x)
	if err != nil {
		t.Fatal(err)
	}
	check("evaluation logits", got, want.Logits)
	cs, err := cpuOpt.State()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := devOpt.State()
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Tensors) != len(cs.Tensors) || ds.Step != cs.Step {
		t.Fatalf("solver state: device %d buffers at step %d, cpu %d at step %d", len(ds.Tensors), ds.Step, len(cs.Tensors), cs.Step)
	}
	for k, v := range cs.Tensors {
		check(k, ds.Tensors[k].Float32s(), v.Float32s())
	}
}

// TestDeviceStepsEmulated runs the device path on the host emulation.
func TestDeviceStepsEmulated(t *testing.T) {
	for _, tc := range stepCases {
		t.Run(tc.name, func(t *testing.T) { compareSteps(t, emu.New(), tc, 4, 1e-5) })
	}
}

// TestDeviceStepsGPU runs the same on the GPU (1e-4: cuBLAS and the kernels
// sum in another order than the CPU).
func TestDeviceStepsGPU(t *testing.T) {
	b := gpuBackend(t)
	for _, tc := range stepCases {
		t.Run(tc.name, func(t *testing.T) { compareSteps(t, b, tc, 4, 1e-4) })
	}
}

// TestDeviceStepsFullGPU: whole vgg11_bn and vgg16_bn at full width on the
// GPU against the CPU, batch 8 (slow on the CPU side: not in -short).
func TestDeviceStepsFullGPU(t *testing.T) {
	if testing.Short() {
		t.Skip("full-width models: not in -short")
	}
	b := gpuBackend(t)
	for _, name := range []string{"vgg11_bn", "vgg16_bn"} {
		t.Run(name, func(t *testing.T) { compareSteps(t, b, stepCase{name, name, Options{Seed: 1}}, 8, 1e-4) })
	}
}

// TestDeviceNoAllocAfterFirstStep: the second and third training steps (and
// an evaluation pass after the first) allocate no device buffer.
func TestDeviceNoAllocAfterFirstStep(t *testing.T) {
	m, err := New("vgg11_bn", Options{WidthMult: 1.0 / 16, Seed: 1, Head: HeadImageNet})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := NewDevice(m, emu.New(), NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := dev.NewSGD(train.SGDConfig{Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	var allocs []int
	for step := 1; step <= 3; step++ {
		x, y := batch(uint64(step), 4, 3, 32, 32, 10)
		if _, err := dev.Forward(x, y, true); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(nil, 0.01); err != nil {
			t.Fatal(err)
		}
		if _, err := dev.Logits(x); err != nil {
			t.Fatal(err)
		}
		allocs = append(allocs, dev.Allocs())
	}
	if allocs[0] == 0 || allocs[1] != allocs[0] || allocs[2] != allocs[0] {
		t.Errorf("device allocations after steps 1, 2, 3: %v; want the same non-zero count each time", allocs)
	}
}

// TestDeviceCheckRefuses: a graph in which a device value would reach a
// Gorgonia op is refused before it runs, naming the op.
func TestDeviceCheckRefuses(t *testing.T) {
	b := emu.New()
	x, err := b.Upload(make([]float32, 2*3*4*4), 2, 3, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		build func(g *G.ExprGraph, xn *G.Node) error
		want  string
	}{
		{"only device ops", func(g *G.ExprGraph, xn *G.Node) error { _, err := ops.ReLU(b, xn); return err }, ""},
		{"gorgonia add", func(g *G.ExprGraph, xn *G.Node) error {
			y, err := ops.ReLU(b, xn)
			if err == nil {
				_, err = G.Add(y, y)
			}
			return err
		}, "runs Gorgonia's"},
		{"one value feeding two inputs, summed by G.Grad", func(g *G.ExprGraph, xn *G.Node) error {
			f, err := ops.Flatten(b, xn) // (2, 48)
			if err != nil {
				return err
			}
			bias, err := b.Upload([]float32{0, 0}, 2)
			if err != nil {
				return err
			}
			bn := G.NodeFromAny(g, ops.NewValue(bias, []int{2}), G.WithName("bias"))
			z, err := ops.Linear(b, f, f, bn) // f is both x and w: its gradient is a sum
			if err != nil {
				return err
			}
			lab := G.NewVector(g, G.Float32, G.WithShape(2), G.WithName("labels"), G.WithInit(G.Zeroes()))
			loss, err := ops.CrossEntropy(b, z, lab, 0)
			if err != nil {
				return err
			}
			_, err = G.Grad(loss, xn)
			return err
		}, "runs Gorgonia's"},
		{"host input into a device op", func(g *G.ExprGraph, xn *G.Node) error {
			h := G.NewTensor(g, G.Float32, 4, G.WithShape(2, 3, 4, 4), G.WithName("host"), G.WithInit(G.Zeroes()))
			_, err := ops.ReLU(b, h)
			return err
		}, "not a device value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := G.NewGraph()
			xn := G.NodeFromAny(g, ops.NewValue(x, []int{2, 3, 4, 4}), G.WithName("x"))
			if err := tt.build(g, xn); err != nil {
				t.Fatal(err)
			}
			err := ops.Check(g)
			if tt.want == "" && err != nil {
				t.Errorf("Check: %v, want nil", err)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

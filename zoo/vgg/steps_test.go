package vgg

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/safetensors"
	"github.com/gozoo/gozoo/train"
)

// TestPyTorchTrainingSteps takes five training steps of a width-1/16 VGG
// (vgg11_bn in training mode for SGD, vgg11 for Adam and AdamW: see
// testdata/gen/steps.py) with each of our solvers, from the same weights and
// on the same batches as torch.optim, and compares the losses, every weight
// and every running statistic afterwards (max|got − want| / max|want| per
// tensor ≤ 1e-5; 1e-4 for the losses and for the biases that batch norm makes
// irrelevant, whose gradient is rounding noise).
func TestPyTorchTrainingSteps(t *testing.T) {
	forEachFixture(t, "steps", "steps.py", func(t *testing.T, f *safetensors.File, num func(string) float64) {
		md := f.Metadata
		m, err := New(md["model"], Options{WidthMult: num("width")})
		if err != nil {
			t.Fatal(err)
		}
		loadFixtureState(t, m, f)
		var opt train.Optimizer
		switch md["optimizer"] {
		case "sgd":
			opt, err = train.NewSGD(train.SGDConfig{Momentum: num("momentum"), WeightDecay: num("weight_decay"), Nesterov: md["nesterov"] == "True"})
		case "adam", "adamw":
			c := train.DefaultAdamConfig()
			c.WeightDecay = num("weight_decay")
			if md["optimizer"] == "adam" {
				opt, err = train.NewAdam(c)
			} else {
				opt, err = train.NewAdamW(c)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		net, err := m.NewNet(NetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer net.Close()
		for i := range int(num("steps")) {
			x := floats(t, f, fmt.Sprintf("input.%d", i))
			l64, _ := f.Tensors[fmt.Sprintf("labels.%d", i)].Int64s()
			labels := []int{int(l64[0]), int(l64[1])}
			out, err := net.Forward(x, labels, true)
			if err != nil {
				t.Fatal(err)
			}
			want := floats(t, f, fmt.Sprintf("loss.%d", i))[0]
			if d := math.Abs(out.Loss-float64(want)) / math.Abs(float64(want)); d > 1e-4 {
				t.Errorf("step %d: loss %g, PyTorch %g", i, out.Loss, want)
			}
			if err := opt.Step(net.Params(), num("lr")); err != nil {
				t.Fatal(err)
			}
		}
		worst := 0.0
		for _, name := range m.StateNames() {
			if strings.HasSuffix(name, "num_batches_tracked") {
				w, _ := f.Tensors["after."+name].Int64s()
				if got := m.BatchNormStats(strings.TrimSuffix(name, ".num_batches_tracked")).NumBatchesTracked; got != w[0] {
					t.Errorf("%s = %d, want %d", name, got, w[0])
				}
				continue
			}
			v, _ := m.Tensor(name)
			got, want := f32(v), floats(t, f, "after."+name)
			var maxDiff, maxWant float64
			for i := range got {
				maxDiff = max(maxDiff, math.Abs(float64(got[i]-want[i])))
				maxWant = max(maxWant, math.Abs(float64(want[i])))
			}
			rel := maxDiff / maxWant
			tol := 1e-5
			if l, _ := m.Layer(strings.TrimSuffix(strings.TrimSuffix(name, ".bias"), ".weight")); l.Kind == Conv && strings.HasSuffix(name, ".bias") {
				tol = 1e-4 // followed by batch norm: its gradient is rounding noise
			}
			if rel > tol || math.IsNaN(rel) {
				t.Errorf("%s after the steps: max difference %.3g (relative %.3g) exceeds %g", name, maxDiff, rel, tol)
			}
			worst = max(worst, rel)
		}
		t.Logf("worst relative difference over all tensors after %s steps: %.3g", md["steps"], worst)
	})
}

package vgg

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// tiny returns a small, fast model.
func tiny(t *testing.T, name string, o Options) *Model {
	t.Helper()
	if o.WidthMult == 0 {
		o.WidthMult = 1.0 / 16
	}
	m, err := New(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func images(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 2))
	v := make([]float32, n*3*32*32)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func f32(t *tensor.Dense) []float32 { return slices.Clone(t.Data().([]float32)) }

func TestSeededInitIsReproducible(t *testing.T) {
	a := tiny(t, "vgg11_bn", Options{Seed: 7, Head: HeadImageNet})
	b := tiny(t, "vgg11_bn", Options{Seed: 7, Head: HeadImageNet})
	c := tiny(t, "vgg11_bn", Options{Seed: 8, Head: HeadImageNet})
	for i, p := range a.Params() {
		if !slices.Equal(f32(p.Value), f32(b.Params()[i].Value)) {
			t.Errorf("%s differs between two models of seed 7", p.Name)
		}
	}
	if slices.Equal(f32(a.Params()[0].Value), f32(c.Params()[0].Value)) {
		t.Error("seeds 7 and 8 gave the same features.0.weight")
	}
}

// TestInitStatistics checks torchvision's scheme: Kaiming normal (fan_out)
// convolutions, N(0, 0.01²) linear weights, zero biases, BN γ=1, β=0.
func TestInitStatistics(t *testing.T) {
	m := tiny(t, "vgg11_bn", Options{WidthMult: 0.25, Seed: 1, Head: HeadImageNet})
	std := func(v []float32) float64 {
		var s, s2 float64
		for _, x := range v {
			s += float64(x)
			s2 += float64(x) * float64(x)
		}
		n := float64(len(v))
		return math.Sqrt(s2/n - (s/n)*(s/n))
	}
	w, _ := m.Tensor("features.8.weight") // Conv2d(64, 128) at width 0.25: (128, 128, 3, 3)... fan_out = O·9
	o := w.Shape()[0]
	if got, want := std(f32(w)), math.Sqrt(2/float64(o*9)); math.Abs(got-want)/want > 0.03 {
		t.Errorf("features.8.weight std %.5f, want %.5f (Kaiming normal, fan_out)", got, want)
	}
	lw, _ := m.Tensor("classifier.3.weight")
	if got := std(f32(lw)); math.Abs(got-0.01)/0.01 > 0.03 {
		t.Errorf("classifier.3.weight std %.5f, want 0.01", got)
	}
	for name, want := range map[string]float32{"features.0.bias": 0, "features.1.weight": 1, "features.1.bias": 0, "classifier.6.bias": 0, "features.1.running_var": 1} {
		v, ok := m.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		for _, x := range f32(v) {
			if x != want {
				t.Errorf("%s has %g, want all %g", name, x, want)
				break
			}
		}
	}
}

// TestGraphsShareState: a training run changes the running statistics and a
// solver's update of the parameters is seen by an evaluation graph of another
// batch size; evaluating changes nothing.
func TestGraphsShareState(t *testing.T) {
	m := tiny(t, "vgg11_bn", Options{Seed: 3})
	trainG, err := m.NewGraph(GraphOptions{Batch: 4, Train: true, Loss: true})
	if err != nil {
		t.Fatal(err)
	}
	defer trainG.Close()
	evalG, err := m.NewGraph(GraphOptions{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer evalG.Close()

	x := images(1, 4)
	if err := evalG.Run(x[:3*3072], nil); err != nil {
		t.Fatal(err)
	}
	before := f32(evalG.OutputValue())
	mean, _ := m.Tensor("features.1.running_mean")
	statsBefore := f32(mean)

	if err := trainG.Run(x, []int{0, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(statsBefore, f32(mean)) {
		t.Fatal("a training run left features.1.running_mean unchanged")
	}
	if n := m.BatchNormStats("features.1").NumBatchesTracked; n != 1 {
		t.Errorf("num_batches_tracked = %d after one training run, want 1", n)
	}
	statsAfterTrain := f32(mean)
	if err := evalG.Run(x[:3*3072], nil); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(before, f32(evalG.OutputValue())) {
		t.Error("the evaluation graph did not see the new running statistics")
	}
	if !slices.Equal(statsAfterTrain, f32(mean)) {
		t.Error("an evaluation run changed the running statistics")
	}
	// A solver-like in-place update is seen by the other graph.
	w, _ := m.Tensor("classifier.0.bias")
	w.Data().([]float32)[0] += 1
	out1 := f32(evalG.OutputValue())
	if err := evalG.Run(x[:3*3072], nil); err != nil {
		t.Fatal(err)
	}
	if got := evalG.OutputValue().Data().([]float32)[0]; math.Abs(float64(got-out1[0]-1)) > 1e-5 {
		t.Errorf("logit 0 moved by %g after adding 1 to its bias, want 1", got-out1[0])
	}
	if len(trainG.Grads()) != len(m.Params()) {
		t.Errorf("%d gradients for %d parameters", len(trainG.Grads()), len(m.Params()))
	}
}

// TestEvalIsPerImage: in evaluation mode a batch's logits equal the logits
// of each image run alone.
func TestEvalIsPerImage(t *testing.T) {
	m := tiny(t, "vgg13_bn", Options{Seed: 4, Head: HeadImageNet})
	g4, _ := m.NewGraph(GraphOptions{Batch: 4})
	g1, _ := m.NewGraph(GraphOptions{Batch: 1})
	x := images(2, 4)
	if err := g4.Run(x, nil); err != nil {
		t.Fatal(err)
	}
	all := f32(g4.OutputValue())
	for i := range 4 {
		if err := g1.Run(x[i*3072:(i+1)*3072], nil); err != nil {
			t.Fatal(err)
		}
		for j, v := range f32(g1.OutputValue()) {
			if d := math.Abs(float64(v - all[i*10+j])); d > 1e-5 {
				t.Fatalf("image %d logit %d: %g alone, %g in the batch", i, j, v, all[i*10+j])
			}
		}
	}
}

func TestActivations(t *testing.T) {
	m := tiny(t, "vgg16", Options{Seed: 5, Batch: 2})
	g, err := m.NewGraph(GraphOptions{Watch: []string{"features.1", "block4"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Watch("features.30"); err != nil {
		t.Fatal(err)
	}
	if err := g.Run(images(3, 2), nil); err != nil {
		t.Fatal(err)
	}
	for name, shape := range map[string][]int{"features.1": {2, 4, 32, 32}, "block4": {2, 32, 2, 2}, "features.30": {2, 32, 1, 1}} {
		a, err := g.Activation(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a.Shape(), shape) {
			t.Errorf("%s has shape %v, want %v", name, a.Shape(), shape)
		}
	}
	relu, _ := g.Activation("features.1")
	if slices.Min(f32(relu)) < 0 || slices.Max(f32(relu)) == 0 {
		t.Error("features.1 (ReLU) has negative values or is all zero")
	}
	if _, err := g.Activation("features.2"); err == nil || !strings.Contains(err.Error(), "not watched") {
		t.Errorf("Activation of an unwatched layer: %v", err)
	}
	if _, err := g.Node("features.99"); err == nil || !strings.Contains(err.Error(), "features.30") {
		t.Errorf("Node(features.99): %v, want an error listing the layers", err)
	}
}

func TestHeads(t *testing.T) {
	tests := []struct {
		opts  Options
		shape []int
	}{
		{Options{Head: HeadNone}, []int{2, 32, 1, 1}},
		{Options{Head: HeadNone, Pool: "avg", Height: 64, Width: 64}, []int{2, 32}},
		{Options{Head: HeadNone, Pool: "max", Height: 64, Width: 64}, []int{2, 32}},
		{Options{Head: HeadImageNet, Classes: 7, Height: 40, Width: 48}, []int{2, 7}},
		{Options{Head: HeadCIFAR, Height: 64, Width: 96}, []int{2, 10}},
	}
	for _, tt := range tests {
		tt.opts.Batch = 2
		m := tiny(t, "vgg11", tt.opts)
		g, err := m.NewGraph(GraphOptions{})
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, 2*3*tt.opts.Height*tt.opts.Width)
		if tt.opts.Height == 0 {
			x = images(1, 2)
		}
		if err := g.Run(x, nil); err != nil {
			t.Fatalf("%+v: %v", tt.opts, err)
		}
		if got := g.OutputValue().Shape(); !slices.Equal(got, tt.shape) {
			t.Errorf("%+v: output %v, want %v", tt.opts, got, tt.shape)
		}
	}
}

func TestRunErrors(t *testing.T) {
	m := tiny(t, "vgg11", Options{Batch: 2})
	g, _ := m.NewGraph(GraphOptions{Loss: true})
	if err := g.Run(make([]float32, 5), []int{0, 1}); err == nil || !strings.Contains(err.Error(), "want 6144") {
		t.Errorf("wrong input size: %v", err)
	}
	if err := g.Run(images(1, 2), []int{0}); err == nil {
		t.Error("one label for two images: no error")
	}
	if err := g.Run(images(1, 2), []int{0, 10}); err == nil || !strings.Contains(err.Error(), "outside 0..9") {
		t.Errorf("label 10 of 10 classes: %v", err)
	}
	if _, err := m.NewGraph(GraphOptions{Loss: true, Frozen: []string{"features.0.wieght"}}); err == nil {
		t.Error("freezing a misspelt parameter: no error")
	}
	none := tiny(t, "vgg11", Options{Head: HeadNone})
	if _, err := none.NewGraph(GraphOptions{Loss: true}); err == nil {
		t.Error("a loss on the none head: no error")
	}
}

func TestFrozen(t *testing.T) {
	m := tiny(t, "vgg11", Options{Batch: 2})
	g, err := m.NewGraph(GraphOptions{Train: true, Loss: true, Frozen: []string{"features.0.weight", "features.0.bias"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(images(1, 2), []int{3, 4}); err != nil {
		t.Fatal(err)
	}
	if got, want := len(g.Grads()), len(m.Params())-2; got != want {
		t.Errorf("%d gradients, want %d", got, want)
	}
	if g.Grads()[0].Name != "features.3.weight" {
		t.Errorf("first gradient is %s, want features.3.weight", g.Grads()[0].Name)
	}
}

// TestTrainsOnOneImage: every batch-norm layer of a VGG sees at least a 2×2
// map (the smallest input, 2^stages, is halved only after the last stage's
// convolutions), so a batch of one image trains with finite statistics, as in
// PyTorch; the training loop relies on it for a data set's short last batch.
func TestTrainsOnOneImage(t *testing.T) {
	m := tiny(t, "vgg11_bn", Options{Seed: 1})
	net, err := m.NewNet(NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	out, err := net.Forward(images(3, 1), []int{4}, true)
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(out.Loss) || math.IsInf(out.Loss, 0) {
		t.Fatalf("loss %v on one image", out.Loss)
	}
	for _, l := range m.Layers {
		s := m.BatchNormStats(l.Name)
		if s == nil {
			continue
		}
		if l.Shape[1]*l.Shape[2] < 4 {
			t.Errorf("%s sees a %d×%d map, want at least 2×2", l.Name, l.Shape[1], l.Shape[2])
		}
		for _, v := range f32(s.Var) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s running_var has %v after one image", l.Name, v)
			}
		}
	}
}

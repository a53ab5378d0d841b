package vgg

import (
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/safetensors"
	"gorgonia.org/tensor"
)

// TestPyTorchParity runs the whole-model fixtures written by
// testdata/gen/vgg.py (torchvision's VGG with seeded random weights, reduced
// widths) and compares logits, loss, the gradients of the loss with respect
// to the input and every parameter, and in training mode the batch-norm
// running statistics after the step.
//
// Error measure, per tensor: max|got − want| / max|want|; outputs and
// running statistics within 1e-5, gradients within 1e-4. A gradient whose
// true value is zero (the bias of a convolution followed by training-mode
// batch norm, where PyTorch's float32 result is rounding noise) is measured
// against the largest gradient of the model instead.
func TestPyTorchParity(t *testing.T) {
	forEachFixture(t, "parity", "vgg.py", func(t *testing.T, f *safetensors.File, num func(string) float64) {
		md := f.Metadata
		train := md["mode"] == "train"
		opts := Options{WidthMult: num("width"), Head: Head(md["head"]), Classes: int(num("classes")), Batch: int(num("batch")), Dropout: NoDropout}
		m, err := New(md["model"], opts)
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := md["hidden"]; ok {
			if l, _ := m.Layer("classifier.0"); strconv.Itoa(l.Out) != h {
				t.Fatalf("hidden size %d, fixture has %s", l.Out, h)
			}
		}
		loadFixtureState(t, m, f)
		g, err := m.NewGraph(GraphOptions{Train: train, Loss: true, InputGrad: true})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		input := floats(t, f, "input")
		labels64, err := f.Tensors["labels"].Int64s()
		if err != nil {
			t.Fatal(err)
		}
		labels := make([]int, len(labels64))
		for i, l := range labels64 {
			labels[i] = int(l)
		}
		if err := g.Run(input, labels); err != nil {
			t.Fatal(err)
		}
		check := func(what string, got, want []float32, tol, zeroScale float64) {
			t.Helper()
			if len(got) != len(want) {
				t.Errorf("%s: %d values, want %d", what, len(got), len(want))
				return
			}
			var maxDiff, maxWant float64
			for i := range got {
				maxDiff = max(maxDiff, math.Abs(float64(got[i]-want[i])))
				maxWant = max(maxWant, math.Abs(float64(want[i])))
			}
			scale := maxWant
			if maxWant < 1e-3*zeroScale { // a true zero: rounding noise on both sides
				scale = zeroScale
			}
			if rel := maxDiff / scale; rel > tol || math.IsNaN(rel) {
				t.Errorf("%s: max difference %.3g (relative %.3g) exceeds %g", what, maxDiff, rel, tol)
			} else {
				t.Logf("%-36s max diff %.3g, relative %.3g", what, maxDiff, rel)
			}
		}
		check("logits", f32(g.OutputValue()), floats(t, f, "logits"), 1e-5, 0)
		check("loss", []float32{float32(g.LossValue())}, floats(t, f, "loss"), 1e-5, 0)
		check("grad.input", f32(g.InputGrad()), floats(t, f, "grad.input"), 1e-4, 0)
		var gradScale float64
		for _, p := range g.Grads() {
			for _, v := range floats(t, f, "grad."+p.Name) {
				gradScale = max(gradScale, math.Abs(float64(v)))
			}
		}
		for _, p := range g.Grads() {
			check("grad."+p.Name, f32(p.Value), floats(t, f, "grad."+p.Name), 1e-4, gradScale)
		}
		if !train || !m.Opts.BatchNorm {
			return
		}
		for _, name := range m.StateNames() {
			if strings.HasSuffix(name, ".weight") || strings.HasSuffix(name, ".bias") {
				continue
			}
			want, ok := f.Tensors["after."+name]
			if !ok {
				t.Errorf("fixture lacks after.%s", name)
				continue
			}
			if layer, ok := strings.CutSuffix(name, ".num_batches_tracked"); ok {
				w, _ := want.Int64s()
				if got := m.BatchNormStats(layer).NumBatchesTracked; got != w[0] {
					t.Errorf("%s = %d, want %d", name, got, w[0])
				}
				continue
			}
			v, _ := m.Tensor(name)
			check("after."+name, f32(v), floats(t, f, "after."+name), 1e-5, 0)
		}
	})
}

func floats(t *testing.T, f *safetensors.File, name string) []float32 {
	t.Helper()
	ten, ok := f.Tensors[name]
	if !ok {
		t.Fatalf("fixture lacks %s", name)
	}
	v, err := ten.Float32s()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// TestWeightsRoundTrip: saved weights load back bit-identically, and a file
// that does not fit is refused whole.
func TestWeightsRoundTrip(t *testing.T) {
	a := tiny(t, "vgg11_bn", Options{Seed: 1})
	a.BatchNormStats("features.1").NumBatchesTracked = 5
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := a.SaveWeights(path); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name, opts, err := FromMetadata(f.Metadata)
	if err != nil || name != "vgg11_bn" || opts.WidthMult != 1.0/16 || opts.Classes != 10 || opts.Dtype != tensor.Float32 {
		t.Fatalf("FromMetadata = %q, %+v, %v", name, opts, err)
	}
	opts.Seed = 2
	b, err := New(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.LoadWeights(path, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range a.StateNames() {
		if strings.HasSuffix(name, "num_batches_tracked") {
			continue
		}
		x, _ := a.Tensor(name)
		y, _ := b.Tensor(name)
		if !slices.Equal(f32(x), f32(y)) {
			t.Errorf("%s differs after the round trip", name)
		}
	}
	if b.BatchNormStats("features.1").NumBatchesTracked != 5 {
		t.Error("num_batches_tracked was not restored")
	}

	// A model of another width: everything mismatches, nothing is loaded.
	c := tiny(t, "vgg11_bn", Options{Seed: 3, WidthMult: 1.0 / 8})
	before := f32(c.Params()[0].Value)
	err = c.LoadWeights(path, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "nothing was loaded") || !strings.Contains(err.Error(), "features.0.weight: shape") {
		t.Fatalf("loading into another width: %v", err)
	}
	if !slices.Equal(before, f32(c.Params()[0].Value)) {
		t.Error("a refused load changed the model")
	}

	// Transfer learning: the features of a 10-class model into a 7-class one.
	d := tiny(t, "vgg11_bn", Options{Seed: 4, Classes: 7})
	head := f32(d.Params()[len(d.Params())-2].Value)
	if err := d.LoadWeights(path, LoadOptions{Prefixes: []string{"features."}}); err != nil {
		t.Fatal(err)
	}
	x, _ := a.Tensor("features.0.weight")
	y, _ := d.Tensor("features.0.weight")
	if !slices.Equal(f32(x), f32(y)) || !slices.Equal(head, f32(d.Params()[len(d.Params())-2].Value)) {
		t.Error("prefix loading did not load the features and keep the head")
	}
	// Without the prefix the head's shape is reported.
	if err := d.LoadWeights(path, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "classifier.0.weight: shape [10 ") {
		t.Errorf("loading a 10-class head into 7 classes: %v", err)
	}
}

// TestLoadStateConversions: F16, BF16 and F64 tensors are converted; an
// integer weight or a missing tensor is reported with the others.
func TestLoadStateConversions(t *testing.T) {
	m := tiny(t, "vgg11", Options{})
	sd := m.StateDict()
	w := sd["features.0.weight"]
	v, _ := w.Float32s()
	f64 := make([]float64, len(v))
	for i := range v {
		f64[i] = float64(v[i])
	}
	sd["features.0.weight"] = safetensors.FromFloat64(w.Shape, f64)
	sd["features.3.bias"] = safetensors.Tensor{DType: "BF16", Shape: []int{sd["features.3.bias"].Shape[0]}, Data: make([]byte, 2*sd["features.3.bias"].Shape[0])}
	if err := m.LoadState(sd, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := m.Tensor("features.0.weight")
	if !slices.Equal(f32(got), v) {
		t.Error("F64 weights were not converted exactly")
	}
	sd["classifier.0.bias"] = safetensors.FromInt64([]int{10}, make([]int64, 10))
	delete(sd, "features.6.weight")
	sd["extra.weight"] = safetensors.FromFloat32([]int{1}, []float32{1})
	err := m.LoadState(sd, LoadOptions{})
	for _, want := range []string{"missing features.6.weight", "classifier.0.bias", "unexpected extra.weight"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// forEachFixture runs check on every safetensors fixture in
// testdata/<dir>, each as a subtest, with num parsing a metadata number.
func forEachFixture(t *testing.T, dir, script string, check func(t *testing.T, f *safetensors.File, num func(string) float64)) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.safetensors"))
	if len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s: run testdata/gen/%s", dir, script)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".safetensors"), func(t *testing.T) {
			f, err := safetensors.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			check(t, f, func(k string) float64 {
				v, err := strconv.ParseFloat(f.Metadata[k], 64)
				if err != nil {
					t.Fatalf("metadata %s=%q: %v", k, f.Metadata[k], err)
				}
				return v
			})
		})
	}
}

// loadFixtureState loads the model's state dict from a fixture that holds
// other tensors too.
func loadFixtureState(t *testing.T, m *Model, f *safetensors.File) {
	t.Helper()
	state := make(map[string]safetensors.Tensor)
	for _, name := range m.StateNames() {
		state[name] = f.Tensors[name]
	}
	if err := m.LoadState(state, LoadOptions{}); err != nil {
		t.Fatal(err)
	}
}

package onnx

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/safetensors"
	"github.com/gozoo/gozoo/zoo/vgg"
)

// ortDir returns the folder holding node_modules/onnxruntime-node, from
// ZOO_ORT_DIR. Without node or the package the test is skipped, or fails
// when ZOO_ORT_REQUIRED is set (as CI sets it), so that CI never passes
// without running the model in ONNX Runtime.
func ortDir(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("ZOO_ORT_REQUIRED") != "" {
			t.Fatalf("ONNX Runtime check cannot run, and ZOO_ORT_REQUIRED is set: "+format, args...)
		}
		t.Skipf("ONNX Runtime check skipped: "+format, args...)
	}
	const install = "npm install --ignore-scripts onnxruntime-node@1.30.0"
	dir := os.Getenv("ZOO_ORT_DIR")
	if dir == "" {
		missing("set ZOO_ORT_DIR to a folder where `%s` was run (.ci/run does this)", install)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node is not installed (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "onnxruntime-node", "package.json")); err != nil {
		missing("ZOO_ORT_DIR=%s has no onnxruntime-node (%v); run `%s` there", dir, err, install)
	}
	return dir
}

// randomize gives every BatchNorm2d non-trivial statistics and affine
// parameters and every bias and Linear weight random values, so that a
// swapped or ignored tensor shows in the logits.
func randomize(t *testing.T, m *vgg.Model, r *rand.Rand) {
	t.Helper()
	fill := func(name string, lo, hi float64) {
		d, ok := m.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		v := d.Data().([]float32)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*r.Float64())
		}
	}
	for _, l := range m.Layers {
		switch l.Kind {
		case vgg.Conv:
			fill(l.Name+".bias", -0.2, 0.2)
		case vgg.BatchNorm:
			fill(l.Name+".weight", 0.5, 1.5)
			fill(l.Name+".bias", -0.5, 0.5)
			fill(l.Name+".running_mean", -0.5, 0.5)
			fill(l.Name+".running_var", 0.5, 2)
		case vgg.Linear:
			a := 1 / math.Sqrt(float64(l.In))
			fill(l.Name+".weight", -a, a)
			fill(l.Name+".bias", -0.2, 0.2)
		}
	}
}

// ortRun exports m, writes images, and runs them in ONNX Runtime through
// testdata/run_ort.mjs at each batch size; it returns the outputs by batch.
func ortRun(t *testing.T, dir string, m *vgg.Model, images []float32, batches ...int) map[int][]float32 {
	t.Helper()
	tmp := t.TempDir()
	var model bytes.Buffer
	if err := Export(&model, m, ExportOptions{}); err != nil {
		t.Fatalf("Export: %v", err)
	}
	modelPath, inputPath := filepath.Join(tmp, "model.onnx"), filepath.Join(tmp, "input.bin")
	raw := make([]byte, 0, 4*len(images))
	for _, v := range images {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	if err := os.WriteFile(modelPath, model.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inputPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	o := m.Opts
	args := []string{filepath.Join("testdata", "run_ort.mjs"), modelPath, inputPath,
		fmt.Sprintf("%d,%d,%d", o.InChannels, o.Height, o.Width), filepath.Join(tmp, "out")}
	for _, b := range batches {
		args = append(args, fmt.Sprint(b))
	}
	cmd := exec.Command("node", args...)
	cmd.Env = append(os.Environ(), "ZOO_ORT_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var report struct {
		InputNames, OutputNames []string
		Runs                    []struct {
			Batch int
			Dims  []int
		}
	}
	if err := json.Unmarshal(stdout, &report); err != nil {
		t.Fatalf("run_ort.mjs printed %q: %v", stdout, err)
	}
	if want := []string{outputName(m)}; !slices.Equal(report.InputNames, []string{InputName}) || !slices.Equal(report.OutputNames, want) {
		t.Errorf("ONNX Runtime sees inputs %v, outputs %v; want [%s], %v", report.InputNames, report.OutputNames, InputName, want)
	}
	out := map[int][]float32{}
	for _, run := range report.Runs {
		if want := append([]int{run.Batch}, m.OutputShape()...); !slices.Equal(run.Dims, want) {
			t.Errorf("batch %d: ONNX Runtime output dims %v, want %v", run.Batch, run.Dims, want)
		}
		b, err := os.ReadFile(filepath.Join(tmp, fmt.Sprintf("out.%d.bin", run.Batch)))
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		out[run.Batch] = v
	}
	return out
}

// relErr is max|got − want| / max|want|: the error relative to the
// outputs' scale (a per-element ratio is meaningless for outputs near 0).
func relErr(got, want []float32) float64 {
	var diff, scale float64
	for i := range want {
		diff = max(diff, math.Abs(float64(got[i])-float64(want[i])))
		scale = max(scale, math.Abs(float64(want[i])))
	}
	return diff / scale
}

// TestONNXRuntimeParity runs exported models in ONNX Runtime (onnxruntime-node,
// CPU) and compares their outputs with gozoo's evaluation graph: batch 3,
// and batch 1 from the same file and the same session, which also proves
// the batch dimension is dynamic.
func TestONNXRuntimeParity(t *testing.T) {
	dir := ortDir(t)
	const w = 1.0 / 16
	tests := []struct {
		name  string
		model string
		opts  vgg.Options
	}{
		{"vgg11", "vgg11", vgg.Options{WidthMult: w}},
		{"vgg13_bn", "vgg13_bn", vgg.Options{WidthMult: w}},
		{"vgg16", "vgg16", vgg.Options{WidthMult: w}},
		{"vgg19_bn", "vgg19_bn", vgg.Options{WidthMult: w}},
		{"vgg11_bn imagenet head 1x1 to 7x7", "vgg11_bn", vgg.Options{WidthMult: w, Head: vgg.HeadImageNet, Classes: 7}},
		{"vgg13 40x48", "vgg13", vgg.Options{WidthMult: w, Height: 40, Width: 48}},
		{"vgg11 imagenet head 2x3 to 7x7 (overlapping windows)", "vgg11", vgg.Options{WidthMult: w, Head: vgg.HeadImageNet, Height: 80, Width: 112}},
		{"custom_bn imagenet head 14x7 to 7x7 (AveragePool)", "", vgg.Options{Stages: []vgg.Stage{{4}, {8}}, BatchNorm: true, Head: vgg.HeadImageNet, Height: 56, Width: 28}},
		{"vgg16_bn features", "vgg16_bn", vgg.Options{WidthMult: w, Head: vgg.HeadNone, Height: 64, Width: 64}},
		{"vgg11 features, global avg pool, 40x48", "vgg11", vgg.Options{WidthMult: w, Head: vgg.HeadNone, Pool: "avg", Height: 40, Width: 48}},
		{"vgg11_bn features, global max pool", "vgg11_bn", vgg.Options{WidthMult: w, Head: vgg.HeadNone, Pool: "max", Height: 64, Width: 64}},
		{"grayscale vgg11, 5 classes", "vgg11", vgg.Options{WidthMult: w, InChannels: 1, Classes: 5}},
	}
	const batch = 3
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Seed = uint64(i + 1)
			m := newModel(t, tt.model, tt.opts)
			r := rand.New(rand.NewPCG(uint64(i), 7))
			randomize(t, m, r)
			images, want := gozooRun(t, m, r, batch)
			got := ortRun(t, dir, m, images, batch, 1)
			per := len(want) / batch
			for _, c := range []struct {
				n    int
				want []float32
			}{{batch, want}, {1, want[:per]}} {
				if len(got[c.n]) != len(c.want) {
					t.Errorf("batch %d: ONNX Runtime gave %d values, want %d", c.n, len(got[c.n]), len(c.want))
					continue
				}
				e := relErr(got[c.n], c.want)
				t.Logf("batch %d: max |ort − gozoo| / max |gozoo| = %.2g", c.n, e)
				if e > 1e-4 || math.IsNaN(e) {
					t.Errorf("batch %d: ONNX Runtime and gozoo differ by %.3g relative, want ≤ 1e-4\n ort: %v\nwant: %v", c.n, e, got[c.n][:min(8, per)], c.want[:min(8, per)])
				}
			}
		})
	}
}

// gozooRun fills a batch of images (batch, C, H, W) with r's standard
// normal values and returns them with gozoo's logits for them (batch, classes).
func gozooRun(t *testing.T, m *vgg.Model, r *rand.Rand, batch int) (images, logits []float32) {
	t.Helper()
	o := m.Opts
	images = make([]float32, batch*o.InChannels*o.Height*o.Width)
	for i := range images {
		images[i] = float32(r.NormFloat64())
	}
	g, err := m.NewGraph(vgg.GraphOptions{Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Run(images, nil); err != nil {
		t.Fatal(err)
	}
	return images, slices.Clone(g.OutputValue().Data().([]float32))
}

// TestONNXRuntimeFullSize compares a full-size VGG16-BN with torchvision's
// ImageNet head at 224×224 (a 553 MB ONNX file) in ONNX Runtime and gozoo,
// batch 2. It takes tens of seconds and a few GB of memory, so it runs only
// with ZOO_ORT_FULL=1 (docs/interop.md records its result).
func TestONNXRuntimeFullSize(t *testing.T) {
	if os.Getenv("ZOO_ORT_FULL") == "" {
		t.Skip("full-size check skipped: set ZOO_ORT_FULL=1 (and ZOO_ORT_DIR) to run it")
	}
	dir := ortDir(t)
	for _, name := range []string{"vgg16_bn"} {
		t.Run(name, func(t *testing.T) {
			m := newModel(t, name, vgg.Options{Head: vgg.HeadImageNet, Classes: 1000, Height: 224, Width: 224, Seed: 1})
			r := rand.New(rand.NewPCG(1, 2))
			randomize(t, m, r)
			const batch = 2
			images, want := gozooRun(t, m, r, batch)
			got := ortRun(t, dir, m, images, batch)[batch]
			if len(got) != len(want) {
				t.Fatalf("ONNX Runtime gave %d values, want %d", len(got), len(want))
			}
			e := relErr(got, want)
			t.Logf("%s at 224×224, batch %d: max |ort − gozoo| / max |gozoo| = %.2g", name, batch, e)
			if e > 1e-4 || math.IsNaN(e) {
				t.Errorf("ONNX Runtime and gozoo differ by %.3g relative, want ≤ 1e-4", e)
			}
		})
	}
}

// TestONNXRuntimeMatchesPyTorch runs zoo/vgg's PyTorch fixtures (torchvision
// models with seeded weights, their input and PyTorch's logits, written by
// zoo/vgg/testdata/gen/vgg.py) through Export and ONNX Runtime: torchvision
// weights → gozoo → ONNX gives PyTorch's logits. Fixtures in training mode
// with batch norm are left out: their logits use batch statistics.
func TestONNXRuntimeMatchesPyTorch(t *testing.T) {
	dir := ortDir(t)
	files, _ := filepath.Glob("../testdata/parity/*.safetensors")
	if len(files) == 0 {
		t.Fatal("no fixtures in zoo/vgg/testdata/parity")
	}
	ran := 0
	for _, file := range files {
		f, err := safetensors.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		md := f.Metadata
		if md["mode"] == "train" && strings.HasSuffix(md["model"], "_bn") {
			continue
		}
		ran++
		t.Run(strings.TrimSuffix(filepath.Base(file), ".safetensors"), func(t *testing.T) {
			width, err1 := strconv.ParseFloat(md["width"], 64)
			classes, err2 := strconv.Atoi(md["classes"])
			if err1 != nil || err2 != nil {
				t.Fatalf("metadata width %q, classes %q: want numbers", md["width"], md["classes"])
			}
			m := newModel(t, md["model"], vgg.Options{WidthMult: width, Classes: classes, Head: vgg.Head(md["head"])})
			if err := m.LoadState(f.Tensors, vgg.LoadOptions{IgnoreUnexpected: true}); err != nil {
				t.Fatal(err)
			}
			input, err := f.Tensors["input"].Float32s()
			if err != nil {
				t.Fatal(err)
			}
			want, err := f.Tensors["logits"].Float32s()
			if err != nil {
				t.Fatal(err)
			}
			batch := f.Tensors["input"].Shape[0]
			got := ortRun(t, dir, m, input, batch)[batch]
			if len(got) != len(want) {
				t.Fatalf("ONNX Runtime gave %d values, PyTorch %d", len(got), len(want))
			}
			e := relErr(got, want)
			t.Logf("max |ort − pytorch| / max |pytorch| = %.2g", e)
			if e > 1e-4 || math.IsNaN(e) {
				t.Errorf("ONNX Runtime and PyTorch differ by %.3g relative, want ≤ 1e-4", e)
			}
		})
	}
	if ran == 0 {
		t.Error("no evaluation-mode fixture in zoo/vgg/testdata/parity")
	}
}

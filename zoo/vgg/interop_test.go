package vgg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gozoo/gozoo/safetensors"
)

// torchvisionFixture is one entry of testdata/torchvision/manifest.json,
// written by testdata/gen/torchvision_weights.py.
type torchvisionFixture struct {
	Model   string  `json:"model"`
	Width   float64 `json:"width"`
	Classes int     `json:"classes"`
	Head    Head    `json:"head"`
	// SHA256 of each tensor's bytes after widening to float32 (as torch's
	// .float() does), or of its raw bytes for the int64 num_batches_tracked.
	SHA256 map[string]string `json:"sha256_float32"`
}

func readTorchvisionManifest(t *testing.T) map[string]torchvisionFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "torchvision", "manifest.json"))
	if err != nil {
		t.Fatalf("%v: run testdata/gen/torchvision_weights.py", err)
	}
	var m map[string]torchvisionFixture
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatal("the manifest lists no fixtures")
	}
	return m
}

// TestTorchvisionWeights loads the state dicts of torchvision VGG models
// (seeded random weights, reduced widths; F32, F16 and BF16 copies) and
// saves them again with SaveWeights. An F32 file comes back bit-identical:
// the same names, dtypes, shapes and bytes, num_batches_tracked included.
// An F16 or BF16 file loads exactly: every value equals torch's widening to
// float32 (checked through the manifest's SHA-256 of those bytes).
func TestTorchvisionWeights(t *testing.T) {
	for file, fx := range readTorchvisionManifest(t) {
		t.Run(file, func(t *testing.T) {
			src, err := safetensors.ReadFile(filepath.Join("testdata", "torchvision", file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := New(fx.Model, Options{WidthMult: fx.Width, Classes: fx.Classes, Head: fx.Head})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.LoadState(src.Tensors, LoadOptions{}); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "gozoo.safetensors")
			if err := m.SaveWeights(path); err != nil {
				t.Fatal(err)
			}
			saved, err := safetensors.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := saved.Names(), src.Names(); !slices.Equal(got, want) {
				t.Fatalf("saved names %v, want the file's %v", got, want)
			}
			for _, name := range src.Names() {
				got, orig := saved.Tensors[name], src.Tensors[name]
				sum := sha256.Sum256(got.Data)
				if h := hex.EncodeToString(sum[:]); h != fx.SHA256[name] {
					t.Errorf("%s: saved bytes hash to %.12s, want torch's float32 values %.12s", name, h, fx.SHA256[name])
				}
				if !slices.Equal(got.Shape, orig.Shape) {
					t.Errorf("%s: saved shape %v, want %v", name, got.Shape, orig.Shape)
				}
				wantDType := safetensors.F32
				if orig.DType == safetensors.I64 {
					wantDType = safetensors.I64
				}
				if got.DType != wantDType {
					t.Errorf("%s: saved dtype %s, want %s", name, got.DType, wantDType)
				}
				if orig.DType == wantDType && !bytes.Equal(got.Data, orig.Data) {
					t.Errorf("%s: saved bytes differ from the torchvision file's", name)
				}
			}
		})
	}
}

// TestTorchvisionWeightsCheckNames: a torchvision file does not load into a
// model of another architecture, and the error names what does not fit.
func TestTorchvisionWeightsCheckNames(t *testing.T) {
	path := filepath.Join("testdata", "torchvision", "vgg11_bn.safetensors")
	tests := []struct {
		model string
		opts  Options
		want  []string
	}{
		{"vgg11", Options{WidthMult: 1.0 / 64, Head: HeadImageNet}, []string{"nothing was loaded", "missing features.3.weight", "missing features.6.bias", "… and"}},
		{"vgg11_bn", Options{WidthMult: 1.0 / 64, Head: HeadImageNet, Classes: 7}, []string{"classifier.6.weight: shape [10 64] in the file, [7 64]"}},
		{"vgg11_bn", Options{WidthMult: 1.0 / 64}, []string{"classifier.0.weight: shape [64 392] in the file, [10 8]", "unexpected classifier.3.weight"}},
		{"vgg13_bn", Options{WidthMult: 1.0 / 64, Head: HeadImageNet}, []string{"missing features.3.weight", "features.4.weight: shape [2 1 3 3] in the file, [1] in vgg13_bn"}},
	}
	for _, tt := range tests {
		m, err := New(tt.model, tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		err = m.LoadWeights(path, LoadOptions{})
		for _, want := range tt.want {
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("%s: error %v, want it to contain %q", tt.model, err, want)
			}
		}
	}
}

// TestFullSizeTorchvision is the full-size check, run by
// testdata/fullsize/fullsize.py (which sets ZOO_FULLSIZE_DIR and
// ZOO_FULLSIZE_MODEL): it loads torchvision's 224×224 ImageNet model of that
// name, with the random weights the script wrote, runs the script's input
// through the evaluation graph, compares the logits with PyTorch's and saves
// the weights back for the script to load into PyTorch. Skipped otherwise.
func TestFullSizeTorchvision(t *testing.T) {
	dir, name := os.Getenv("ZOO_FULLSIZE_DIR"), os.Getenv("ZOO_FULLSIZE_MODEL")
	if dir == "" || name == "" {
		t.Skip("the full-size check: run /usr/bin/python3 zoo/vgg/testdata/fullsize/fullsize.py")
	}
	ref, err := safetensors.ReadFile(filepath.Join(dir, name+".io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	input, err := ref.Tensors["input"].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Tensors["logits"].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	batch := ref.Tensors["input"].Shape[0]
	m, err := New(name, Options{Head: HeadImageNet, Classes: 1000, Height: 224, Width: 224, Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadWeights(filepath.Join(dir, name+".torch.safetensors"), LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	g, err := m.NewGraph(GraphOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Run(input, nil); err != nil {
		t.Fatal(err)
	}
	got := f32(g.OutputValue())
	if len(got) != len(want) {
		t.Fatalf("%d logits, want %d", len(got), len(want))
	}
	var maxDiff, maxWant float64
	agree := 0
	for i := range batch {
		row := func(v []float32) []float32 { return v[i*1000 : (i+1)*1000] }
		if argmax(row(got)) == argmax(row(want)) {
			agree++
		}
	}
	for i := range got {
		maxDiff = max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
		maxWant = max(maxWant, math.Abs(float64(want[i])))
	}
	rel := maxDiff / maxWant
	result := fmt.Sprintf(`{"model": %q, "max_abs_diff": %.3g, "max_abs_logit": %.4g, "relative": %.3g, "top1_agree": "%d/%d"}`, name, maxDiff, maxWant, rel, agree, batch)
	t.Log(result)
	if err := os.WriteFile(filepath.Join(dir, name+".result.json"), []byte(result+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rel > 1e-4 || math.IsNaN(rel) || agree != batch {
		t.Errorf("logits differ from PyTorch's: %s", result)
	}
	if err := m.SaveWeights(filepath.Join(dir, name+".gozoo.safetensors")); err != nil {
		t.Fatal(err)
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

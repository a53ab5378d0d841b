package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/gozoo/gozoo/zoo/vgg/onnx"
)

// onnxOf exports m in-process, as zoo export should.
func onnxOf(t *testing.T, m *vgg.Model, o onnx.ExportOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := onnx.Export(&buf, m, o); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExportONNX(t *testing.T) {
	dir := t.TempDir()
	opts := vgg.Options{WidthMult: 0.0625, Classes: 4, Seed: 7}
	src, err := vgg.New("vgg11_bn", opts)
	if err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "w.safetensors")
	if err := src.SaveWeights(weights); err != nil {
		t.Fatal(err)
	}
	// What --weights gives: the file's weights in a model built from the flags.
	loaded, err := vgg.New("vgg11_bn", vgg.Options{WidthMult: 0.0625, Classes: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.LoadWeights(weights, vgg.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	cifarNorm := onnx.ExportOptions{Mean: []float64{0.4914, 0.4822, 0.4465}, Std: []float64{0.247, 0.2435, 0.2616}}
	fresh, err := vgg.New("vgg11_bn", vgg.Options{WidthMult: 0.0625, Classes: 4, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []byte // the file, byte for byte
		out  string
	}{
		{"weights", []string{"--model", "vgg11", "--bn", "--width", "0.0625", "--classes", "4", "--weights", weights},
			onnxOf(t, loaded, cifarNorm), `vgg11_bn, ONNX IR 8 opset 17, input "input" (batch, 3, 32, 32), output "logits" (batch, 4)`},
		{"seed", []string{"--model", "vgg11_bn", "--width", "0.0625", "--classes", "4", "--seed", "3"},
			onnxOf(t, fresh, cifarNorm), "normalization recorded: mean [0.4914 0.4822 0.4465], std [0.247 0.2435 0.2616]"},
		{"mean and std", []string{"--model", "vgg11_bn", "--width", "0.0625", "--classes", "4", "--weights", weights, "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25"},
			onnxOf(t, loaded, onnx.ExportOptions{Mean: []float64{0.5, 0.5, 0.5}, Std: []float64{0.25, 0.25, 0.25}}), "mean [0.5 0.5 0.5], std [0.25 0.25 0.25]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".onnx")
			args := append([]string{"export", "--format", "onnx", "-o", path}, tt.args...)
			out, errOut, code := run(t, args...)
			if code != 0 {
				t.Fatalf("zoo %s: exit %d: %s", strings.Join(args, " "), code, errOut)
			}
			if !strings.Contains(out, tt.out) {
				t.Errorf("stdout lacks %q:\n%s", tt.out, out)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("the file has %d bytes, differing from onnx.Export's %d", len(got), len(tt.want))
			}
		})
	}
}

func TestExportCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for one epoch on the embedded sample; skipped with -short")
	}
	dir := t.TempDir()
	runDir := filepath.Join(dir, "run")
	if _, errOut, code := run(t, "train", "vgg11", "--width", "0.0625", "--data", "sample", "--epochs", "1", "--seed", "4", "--out", runDir, "--quiet"); code != 0 {
		t.Fatalf("zoo train: exit %d: %s", code, errOut)
	}
	path := filepath.Join(dir, "ckpt.onnx")
	out, errOut, code := run(t, "export", "--checkpoint", runDir, "--best", "-o", path)
	if code != 0 {
		t.Fatalf("zoo export --checkpoint: exit %d: %s", code, errOut)
	}
	// The same as exporting the checkpoint's weights file into the model
	// its configuration describes.
	ckpt, err := os.ReadFile(filepath.Join(runDir, "best"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := vgg.New("vgg11", vgg.Options{WidthMult: 0.0625, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadWeights(filepath.Join(runDir, strings.TrimSpace(string(ckpt)), "model.safetensors"), vgg.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	want := onnxOf(t, m, onnx.ExportOptions{Mean: []float64{0.4914, 0.4822, 0.4465}, Std: []float64{0.247, 0.2435, 0.2616}})
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
		t.Errorf("zoo export --checkpoint wrote %d bytes, differing from onnx.Export's %d of the checkpoint's weights\n%s", len(got), len(want), out)
	}
}

func TestExportErrors(t *testing.T) {
	dir := t.TempDir()
	m, err := vgg.New("vgg11", vgg.Options{WidthMult: 0.0625})
	if err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "vgg11.safetensors")
	if err := m.SaveWeights(weights); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "old.onnx")
	if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"format", []string{"--format", "tflite", "--model", "vgg11", "-o", existing}, 2, `--format "tflite": the only format is onnx`},
		{"no output", []string{"--model", "vgg11"}, 2, "pass -o FILE"},
		{"no model", []string{"-o", existing}, 2, "pass --model NAME"},
		{"unknown model", []string{"--model", "vgg12", "-o", existing}, 2, `unknown model "vgg12"`},
		{"not a checkpoint", []string{"--checkpoint", dir, "-o", existing}, 1, "no checkpoint in " + dir},
		{"checkpoint and model", []string{"--checkpoint", dir, "--model", "vgg11", "-o", existing}, 2, "give it without --model"},
		{"checkpoint and width", []string{"--checkpoint", dir, "--width", "2", "-o", existing}, 2, "give it without --width"},
		{"best without checkpoint", []string{"--model", "vgg11", "--best", "-o", existing}, 2, "give it with --checkpoint DIR"},
		{"seed and weights", []string{"--model", "vgg11", "--weights", weights, "--seed", "1", "-o", existing}, 2, "give one"},
		{"weights of another model", []string{"--model", "vgg13", "--width", "0.0625", "--weights", weights, "-o", existing}, 1, "the weights do not fit vgg13"},
		{"missing weights", []string{"--model", "vgg11", "--weights", filepath.Join(dir, "none.safetensors"), "-o", existing}, 1, "none.safetensors"},
		{"mean of two channels", []string{"--model", "vgg11", "--width", "0.0625", "--mean", "0,0", "--std", "1,1", "-o", existing}, 1, "2 mean and 2 std values for 3 input channels"},
		{"missing folder", []string{"--model", "vgg11", "--width", "0.0625", "-o", filepath.Join(dir, "no", "m.onnx")}, 1, "write "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"export"}, tt.args...)
			_, errOut, code := run(t, args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("zoo %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), code, errOut, tt.code, tt.want)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "old" {
		t.Errorf("a failed export changed %s to %d bytes", existing, len(b))
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("a failed export left %s behind", e.Name())
		}
	}
}

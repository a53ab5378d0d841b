package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/safetensors"
	"github.com/gozoo/gozoo/train"
)

// torchvisionDir holds torchvision VGG state dicts written by
// zoo/vgg/testdata/gen/torchvision_weights.py.
const torchvisionDir = "../../zoo/vgg/testdata/torchvision"

// TestConvertRoundTrip: torchvision weights made into a checkpoint with zoo
// convert --weights and written back with zoo convert --checkpoint are
// bit-identical to the original (F32), or to its exact widening to float32
// (BF16); the checkpoint is a run zoo eval accepts, with zero progress, and
// the normalization survives a second round through the weights file.
func TestConvertRoundTrip(t *testing.T) {
	tests := []struct {
		file, model string
		args        []string
		mean        [3]float32
	}{
		{"vgg11_bn.safetensors", "vgg11_bn", []string{"--model", "vgg11", "--bn", "--head", "imagenet", "--classes", "10", "--width", "0.015625"}, [3]float32{0.485, 0.456, 0.406}},
		{"vgg11_bf16.safetensors", "vgg11", []string{"--model", "vgg11", "--head", "imagenet", "--classes", "10", "--width", "0.02"}, [3]float32{0.485, 0.456, 0.406}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dir := t.TempDir()
			src, err := safetensors.ReadFile(filepath.Join(torchvisionDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			runDir := filepath.Join(dir, "run")
			args := append([]string{"convert", "--weights", filepath.Join(torchvisionDir, tt.file), "-o", runDir}, tt.args...)
			if out, errOut, code := run(t, args...); code != 0 || !strings.Contains(out, "wrote "+filepath.Join(runDir, "ckpt-e0000-s0000000")) {
				t.Fatalf("zoo %s: exit %d, stderr %q, stdout %q", strings.Join(args, " "), code, errOut, out)
			}
			m, cfg, ckDir, err := loadCheckpointModel(runDir, true)
			if err != nil {
				t.Fatalf("the converted run does not load: %v", err)
			}
			if m.Name != tt.model || cfg.Head != "imagenet" || cfg.Mean != tt.mean || cfg.Epochs != 30 {
				t.Errorf("checkpoint config: model %s, head %q, mean %v, epochs %d; want %s, imagenet, %v, 30", m.Name, cfg.Head, cfg.Mean, cfg.Epochs, tt.model, tt.mean)
			}
			l, err := train.LoadCheckpoint(ckDir)
			if err != nil {
				t.Fatal(err)
			}
			if l.Checkpoint.Progress != (train.Progress{}) {
				t.Errorf("progress %+v, want zero", l.Checkpoint.Progress)
			}

			back := filepath.Join(dir, "back.safetensors")
			if out, errOut, code := run(t, "convert", "--checkpoint", runDir, "--best", "-o", back); code != 0 || !strings.Contains(out, "normalization recorded: mean [0.485,0.456,0.406]") {
				t.Fatalf("zoo convert --checkpoint: exit %d, stderr %q, stdout %q", code, errOut, out)
			}
			got, err := safetensors.ReadFile(back)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Names(), src.Names()) {
				t.Fatalf("names %v, want %v", got.Names(), src.Names())
			}
			for _, name := range src.Names() {
				g, s := got.Tensors[name], src.Tensors[name]
				want := s.Data
				if s.DType != safetensors.F32 && s.DType != safetensors.I64 {
					v, err := s.Float32s()
					if err != nil {
						t.Fatal(err)
					}
					want = safetensors.FromFloat32(s.Shape, v).Data
				}
				if !slices.Equal(g.Shape, s.Shape) || !bytes.Equal(g.Data, want) {
					t.Errorf("%s: %s %v after the round trip differs from the original %s %v", name, g.DType, g.Shape, s.DType, s.Shape)
				}
			}

			// Second round: the file's recorded normalization wins over the
			// head's default.
			again := filepath.Join(dir, "again")
			cfgPath := filepath.Join(dir, "cifar.safetensors")
			meta := got.Metadata
			meta[metaMean], meta[metaStd] = "[0.5,0.5,0.5]", "[0.25,0.25,0.25]"
			if err := safetensors.WriteFile(cfgPath, got.Tensors, meta); err != nil {
				t.Fatal(err)
			}
			args = append([]string{"convert", "--weights", cfgPath, "-o", again}, tt.args...)
			if _, errOut, code := run(t, args...); code != 0 {
				t.Fatalf("second round: exit %d, %s", code, errOut)
			}
			if _, cfg, _, err := loadCheckpointModel(again, false); err != nil || cfg.Mean != [3]float32{0.5, 0.5, 0.5} || cfg.Std != [3]float32{0.25, 0.25, 0.25} {
				t.Errorf("second round: mean %v, std %v, err %v; want the file's 0.5 and 0.25", cfg.Mean, cfg.Std, err)
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	weights := filepath.Join(torchvisionDir, "vgg11_bn.safetensors")
	existing := filepath.Join(dir, "existing")
	if _, errOut, code := run(t, "convert", "--weights", weights, "--model", "vgg11_bn", "--head", "imagenet", "--classes", "10", "--width", "0.015625", "-o", existing); code != 0 {
		t.Fatal(errOut)
	}
	out := filepath.Join(dir, "out")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no output", []string{"--weights", weights, "--model", "vgg11_bn"}, 2, []string{"pass -o FILE"}},
		{"both inputs", []string{"--weights", weights, "--checkpoint", existing, "-o", out}, 2, []string{"either --checkpoint DIR"}},
		{"neither input", []string{"-o", out}, 2, []string{"either --checkpoint DIR"}},
		{"checkpoint and model", []string{"--checkpoint", existing, "--model", "vgg11", "-o", out}, 2, []string{"without --model"}},
		{"best without checkpoint", []string{"--weights", weights, "--model", "vgg11_bn", "--best", "-o", out}, 2, []string{"--best picks"}},
		{"no model", []string{"--weights", weights, "-o", out}, 2, []string{"--model NAME", "zoo summary --weights"}},
		{"head none", []string{"--weights", weights, "--model", "vgg11_bn", "--head", "none", "-o", out}, 2, []string{"--head cifar or imagenet"}},
		{"input", []string{"--weights", weights, "--model", "vgg11_bn", "--input", "3x64x64", "-o", out}, 2, []string{"no --input"}},
		{"wrong model", []string{"--weights", weights, "--model", "vgg13_bn", "--head", "imagenet", "--classes", "10", "--width", "0.015625", "-o", out}, 1,
			[]string{"do not fit vgg13_bn (nothing was loaded)", "missing features.3.weight", "(file " + weights + ")"}},
		{"wrong classes", []string{"--weights", weights, "--model", "vgg11_bn", "--head", "imagenet", "--width", "0.015625", "-o", out}, 1,
			[]string{"classifier.6.weight: shape [10 64] in the file, [1000 64]"}},
		{"missing file", []string{"--weights", filepath.Join(dir, "nope.safetensors"), "--model", "vgg11", "-o", out}, 1, []string{"nope.safetensors"}},
		{"existing run", []string{"--weights", weights, "--model", "vgg11_bn", "--head", "imagenet", "--classes", "10", "--width", "0.015625", "-o", existing}, 1, []string{"already holds a run"}},
		{"only and checkpoint", []string{"--checkpoint", existing, "--only", "features.", "-o", out}, 2, []string{"give it without --only"}},
		{"only matches nothing", []string{"--weights", weights, "--model", "vgg11_bn", "--only", "backbone.", "-o", out}, 2, []string{"--only backbone. matches no tensor of vgg11_bn"}},
		{"freeze matches nothing", []string{"--weights", weights, "--model", "vgg11_bn", "--head", "imagenet", "--classes", "10", "--width", "0.015625", "--freeze", "backbone.", "-o", out}, 1,
			[]string{`freeze "backbone." matches no parameter`}},
		{"not a checkpoint", []string{"--checkpoint", dir, "-o", filepath.Join(dir, "w.safetensors")}, 1, []string{"no checkpoint in"}},
	}
	for _, tt := range tests {
		_, errOut, code := run(t, append([]string{"convert"}, tt.args...)...)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tt.name, code, tt.code, errOut)
		}
		for _, w := range tt.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr %q lacks %q", tt.name, errOut, w)
			}
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed conversion left %s behind", out)
	}
}

func TestSummaryWeights(t *testing.T) {
	bf16 := filepath.Join(torchvisionDir, "vgg11_bn_bf16.safetensors")
	tests := []struct {
		name string
		args []string
		code int
		want []string // in stdout, then stderr
	}{
		{"contents", []string{"--weights", bf16}, 0, []string{
			"62 tensors", "source  torchvision 0.14 VGG", "classifier.0.weight              BF16   (64, 392)     25,088",
			"features.1.num_batches_tracked", "I64    ()", "total parameters: 32,368 (32368), and 94 buffer values", "BF16 54, I64 8"}},
		{"fits", []string{"--weights", bf16, "vgg11_bn", "--head", "imagenet", "--classes", "10", "--width", "0.015625"}, 0, []string{
			"fits vgg11_bn (head imagenet, 10 classes, width 0.015625): all 62 tensors"}},
		{"fits, --model", []string{"--weights", bf16, "--model", "vgg11", "--bn", "--head", "imagenet", "--classes", "10", "--width", "0.015625"}, 0, []string{"fits vgg11_bn"}},
		{"does not fit", []string{"--weights", bf16, "--model", "vgg11_bn", "--width", "0.015625"}, 1, []string{
			"total parameters: 32,368", "checked against vgg11_bn (head cifar, 10 classes, width 0.015625)", "classifier.0.weight: shape [64 392] in the file, [10 8]", "unexpected classifier.3.weight"}},
		{"two models", []string{"--weights", bf16, "--model", "vgg11", "vgg13"}, 2, []string{"give one"}},
		{"model without weights", []string{"vgg11", "--model", "vgg11"}, 2, []string{"--model goes with --weights"}},
		{"not safetensors", []string{"--weights", "convert.go"}, 1, []string{"summary: safetensors"}},
	}
	for _, tt := range tests {
		out, errOut, code := run(t, append([]string{"summary"}, tt.args...)...)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tt.name, code, tt.code, errOut)
		}
		for _, w := range tt.want {
			if !strings.Contains(out+errOut, w) {
				t.Errorf("%s: output lacks %q:\n%s%s", tt.name, w, out, errOut)
			}
		}
	}
}

// TestConvertTransfer: --only features. loads the features into a model
// with a new head, and --freeze records what zoo train --resume keeps fixed.
func TestConvertTransfer(t *testing.T) {
	weights := filepath.Join(torchvisionDir, "vgg11_bn.safetensors")
	runDir := filepath.Join(t.TempDir(), "run")
	out, errOut, code := run(t, "convert", "--weights", weights, "--model", "vgg11_bn", "--head", "imagenet", "--classes", "7", "--width", "0.015625",
		"--only", "features.", "--freeze", "features.", "-o", runDir)
	if code != 0 || !strings.Contains(out, "56 of its 62 tensors") || !strings.Contains(out, "frozen for training: features.") {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	m, cfg, _, err := loadCheckpointModel(runDir, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Freeze, []string{"features."}) || cfg.NumClasses != 7 {
		t.Errorf("config freeze %v, classes %d; want [features.], 7", cfg.Freeze, cfg.NumClasses)
	}
	src, err := safetensors.ReadFile(weights)
	if err != nil {
		t.Fatal(err)
	}
	sd := m.StateDict()
	for _, name := range m.StateNames() {
		same := bytes.Equal(sd[name].Data, src.Tensors[name].Data)
		if strings.HasPrefix(name, "features.") != same {
			t.Errorf("%s: equal to the file's: %v", name, same)
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gozoo/gozoo/train"
	"github.com/spf13/pflag"
)

// writeCIFAR writes a tiny CIFAR-10 folder in the official binary layout:
// nTrain images in data_batch_1.bin, nTest in test_batch.bin. Each class has
// its own mean brightness, so a model can learn something.
func writeCIFAR(t *testing.T, nTrain, nTest int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cifar-10-batches-bin")
	os.MkdirAll(dir, 0o755)
	r := rand.New(rand.NewPCG(1, 1))
	write := func(name string, n int) {
		var b []byte
		for i := range n {
			c := i % 10
			b = append(b, byte(c))
			for range 3072 {
				b = append(b, byte(c*20+r.IntN(40)))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("data_batch_1.bin", nTrain)
	write("test_batch.bin", nTest)
	os.WriteFile(filepath.Join(dir, "batches.meta.txt"), []byte("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"), 0o644)
	return dir
}

func tinyTrainArgs(data, out string) []string {
	return []string{"train", "vgg11", "--bn", "--head", "imagenet", "--width", "0.0625", "--data", data, "--skip-checksum",
		"--epochs", "2", "--batch-size", "16", "--out", out, "--quiet", "--seed", "5"}
}

// TestTrainResumeBitIdentical: a run interrupted in the middle of its first
// epoch and resumed with zoo train --resume ends with exactly the weights of
// an uninterrupted run (dropout, shuffling, augmentation and optimizer state
// all restored).
func TestTrainResumeBitIdentical(t *testing.T) {
	data := writeCIFAR(t, 48, 20)
	full := filepath.Join(t.TempDir(), "full")
	out, errOut, code := run(t, tinyTrainArgs(data, full)...)
	if code != 0 {
		t.Fatalf("zoo train: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "epoch 2/2") || !strings.Contains(out, "test loss") {
		t.Errorf("zoo train output lacks the epoch lines:\n%s", out)
	}
	// Beside the checkpoints: the metrics log with the resource monitor's
	// columns, the curves and the TensorBoard events.
	csv, err := os.ReadFile(filepath.Join(full, "metrics.csv"))
	if err != nil || !strings.Contains(string(csv), "cpu_percent") || strings.Count(string(csv), "\n") != 3 {
		t.Errorf("metrics.csv: %v\n%s", err, csv)
	}
	for _, p := range []string{"curves.png", "metrics.jsonl", "tensorboard", "best", "latest"} {
		if _, err := os.Stat(filepath.Join(full, p)); err != nil {
			t.Errorf("the run folder lacks %s: %v", p, err)
		}
	}

	// The same run, interrupted after 2 of the 3 batches of epoch 1.
	part := filepath.Join(t.TempDir(), "part")
	cfg := train.DefaultConfig("vgg11_bn", true)
	cfg.Head, cfg.Width, cfg.Data, cfg.SkipChecksum, cfg.Epochs, cfg.BatchSize, cfg.SaveDir, cfg.Seed = "imagenet", 0.0625, data, true, 2, 16, part, 5
	trainSet, testSet, err := loadData(cfg, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	tr, net, err := newTrainer(cfg, trainSet, testSet)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.Hooks = []any{cancelAfter{n: 2, cancel: cancel}}
	if err := tr.Run(ctx); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	if _, err := (&train.Checkpointer{Dir: part, Config: cfg}).Save(tr, false); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run(t, "train", "--resume", part, "--quiet")
	if code != 0 || !strings.Contains(out, "resuming") {
		t.Fatalf("zoo train --resume: exit %d\n%s\n%s", code, out, errOut)
	}
	a, err := os.ReadFile(filepath.Join(full, "ckpt-e0002-s0000006", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(part, "ckpt-e0002-s0000006", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the resumed run's weights differ from the uninterrupted run's")
	}

	// zoo eval on the result counts every test image.
	out, errOut, code = run(t, "eval", "--checkpoint", full)
	if code != 0 || !strings.Contains(out, "(20 images)") || !strings.Contains(out, "truck") {
		t.Errorf("zoo eval: exit %d\n%s\n%s", code, out, errOut)
	}
}

type cancelAfter struct {
	n      int
	cancel func()
}

func (c cancelAfter) AfterStep(t *train.Trainer, s train.StepInfo) error {
	if s.Step == c.n {
		c.cancel()
	}
	return nil
}

func TestTrainNoTensorBoard(t *testing.T) {
	data := writeCIFAR(t, 20, 10)
	out := filepath.Join(t.TempDir(), "run")
	args := append(tinyTrainArgs(data, out), "--no-tensorboard", "--epochs", "1")
	if o, e, code := run(t, args...); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, o, e)
	}
	if _, err := os.Stat(filepath.Join(out, "tensorboard")); err == nil {
		t.Error("--no-tensorboard still wrote tensorboard/")
	}
}

// TestTrainNeverOverwritesARun: a new run into a folder that holds one is
// refused; into the default folder it goes to the next free name.
func TestTrainNeverOverwritesARun(t *testing.T) {
	data := writeCIFAR(t, 20, 10)
	out := filepath.Join(t.TempDir(), "run")
	args := append(tinyTrainArgs(data, out), "--epochs", "1", "--no-tensorboard")
	if o, e, code := run(t, args...); code != 0 {
		t.Fatalf("first run: exit %d\n%s\n%s", code, o, e)
	}
	if _, e, code := run(t, args...); code != 1 || !strings.Contains(e, "already holds a run") {
		t.Errorf("second run into the same --out: exit %d, %q", code, e)
	}
	dir, err := freshRunDir(out, true)
	if err != nil || dir != out+"-2" {
		t.Errorf("freshRunDir(default that holds a run) = %q, %v; want %s-2", dir, err, out)
	}
}

// TestTrainInterruptSavesAndResumes: a signal (the cancelled context Main
// makes of SIGINT and SIGTERM) in the middle of zoo train saves a
// checkpoint, exits with status 130, and --resume finishes the run.
func TestTrainInterruptSavesAndResumes(t *testing.T) {
	data := writeCIFAR(t, 1600, 20) // 100 steps: far longer than the 300 ms before the signal
	out := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the run has taken a few steps (its progress shows in the
		// folder only at the first checkpoint, so wait a moment instead).
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	var stdout, stderr bytes.Buffer
	code := mainContext(ctx, append(tinyTrainArgs(data, out), "--epochs", "1", "--no-tensorboard"), &stdout, &stderr)
	if code != 130 || !strings.Contains(stderr.String(), "checkpoint saved") || !strings.Contains(stderr.String(), "--resume") {
		t.Fatalf("interrupted zoo train: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if _, err := train.LoadCheckpoint(out); err != nil {
		t.Fatalf("the interrupt's checkpoint: %v", err)
	}
	if o, e, code := run(t, "train", "--resume", out, "--quiet"); code != 0 || !strings.Contains(o, "epoch 1/1") {
		t.Errorf("resume after the interrupt: exit %d\n%s\n%s", code, o, e)
	}
}

func TestTrainBadInput(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cfg.json")
	os.WriteFile(cfgFile, []byte(`{"learning_rate": 0.1, "batchsize": 8}`), 0o644)
	broken := filepath.Join(dir, "broken")
	os.MkdirAll(filepath.Join(broken, "ckpt-e0001-s0000001"), 0o755)
	os.WriteFile(filepath.Join(broken, "latest"), []byte("ckpt-e0001-s0000001\n"), 0o644)
	os.WriteFile(filepath.Join(broken, "ckpt-e0001-s0000001", "state.json"), []byte(`{"version": 1, "files": {}}`), 0o644)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"train"}, 2, "name a model"},
		{[]string{"train", "vgg12"}, 2, "valid names"},
		{[]string{"train", "vgg11", "--config", cfgFile}, 1, `unknown field "batchsize"`},
		{[]string{"train", "vgg11", "--optimizer", "lbfgs"}, 2, "sgd, adam or adamw"},
		{[]string{"train", "vgg11", "--epochs", "0"}, 2, "epochs 0"},
		{[]string{"train", "vgg11", "--data", filepath.Join(dir, "nothing")}, 1, "nothing"},
		{[]string{"train", "--resume", dir}, 1, "no checkpoint"},
		{[]string{"train", "--resume", broken}, 1, "unusable"},
		{[]string{"eval"}, 2, "--checkpoint"},
	}
	for _, tt := range tests {
		_, errOut, code := run(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("zoo %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.want)
		}
	}
}

func TestDataInfo(t *testing.T) {
	data := writeCIFAR(t, 30, 10)
	out, errOut, code := run(t, "data", "info", data, "--skip-checksum")
	if code != 0 || !strings.Contains(out, "train: 30 images") || !strings.Contains(out, "test: 10 images") || !strings.Contains(out, "truck") {
		t.Errorf("zoo data info: exit %d\n%s\n%s", code, out, errOut)
	}
	// Checked against the official release, the generated files fail.
	if out, errOut, code := run(t, "data", "info", data); !strings.Contains(out+errOut, "MISMATCH") {
		t.Errorf("zoo data info on custom data without --skip-checksum: exit %d, no MISMATCH verdict:\n%s%s", code, out, errOut)
	}
}

// TestTrainFlagOverrides: each zoo train flag that names a setting lands in
// its own field of the configuration, its default is train.DefaultConfig's,
// and every flag is either such a setting or one of the few that are not.
func TestTrainFlagOverrides(t *testing.T) {
	args := []string{"--data", "d", "--download", "--skip-checksum", "--dataset", "cifar100", "--epochs", "7", "--batch-size", "9",
		"--lr", "0.25", "--optimizer", "adamw", "--schedule", "step", "--warmup", "3", "--out", "o", "--seed", "11", "--width", "0.5",
		"--momentum", "0.8", "--weight-decay", "0.125", "--label-smoothing", "0.2", "--grad-accum", "4", "--keep", "6", "--workers", "5",
		"--classes", "12", "--head", "imagenet", "--freeze", "features.,classifier.0."}
	var fl trainFlags
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	fl.addTo(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	want := train.Config{Data: "d", Download: true, SkipChecksum: true, Dataset: "cifar100", Epochs: 7, BatchSize: 9,
		LearningRate: 0.25, Optimizer: "adamw", Schedule: "step", WarmupEpochs: 3, SaveDir: "o", Seed: 11, Width: 0.5,
		Momentum: 0.8, WeightDecay: 0.125, LabelSmoothing: 0.2, GradAccum: 4, KeepLast: 6, Workers: 5,
		NumClasses: 12, Head: "imagenet", Freeze: []string{"features.", "classifier.0."}}
	var got train.Config
	overrides := fl.overrides()
	for name, apply := range overrides {
		if !fs.Changed(name) {
			t.Errorf("--%s: not among the test's arguments", name)
		}
		apply(&got)
	}
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		t.Errorf("config from the flags:\n got %s\nwant %s", g, w)
	}
	// Unset, the flags' defaults are the recipe's (but for --lr and --out,
	// whose defaults depend on the model).
	var defaults trainFlags
	defaults.addTo(pflag.NewFlagSet("train", pflag.ContinueOnError))
	base := train.DefaultConfig("vgg11", false)
	fromFlags := base
	for name, apply := range defaults.overrides() {
		if name != "lr" && name != "out" {
			apply(&fromFlags)
		}
	}
	if g, w := fmt.Sprintf("%+v", fromFlags), fmt.Sprintf("%+v", base); g != w {
		t.Errorf("the flags' defaults differ from train.DefaultConfig:\n got %s\nwant %s", g, w)
	}
	notSettings := []string{"device", "bn", "config", "resume", "no-augment", "quiet", "no-tensorboard", "help"}
	newTrainCmd(io.Discard, io.Discard).Flags().VisitAll(func(f *pflag.Flag) {
		if _, ok := overrides[f.Name]; !ok && !slices.Contains(notSettings, f.Name) {
			t.Errorf("--%s sets nothing in the configuration: add it to trainFlags.overrides", f.Name)
		}
	})
}

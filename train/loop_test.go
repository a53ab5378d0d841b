package train

import (
	"context"
	"errors"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/safetensors"
	"gorgonia.org/tensor"
)

// softmaxNet is a linear classifier, logits = W·x + b, with hand-written
// gradients: a fast stand-in for a real network in loop tests.
type softmaxNet struct {
	k, d     int
	w, b     *tensor.Dense
	gw, gb   *tensor.Dense
	nanAfter int // Forward returns NaN after this many training calls (0: never)
	calls    int
	rng      *rand.PCG
}

func newSoftmaxNet(k, d int) *softmaxNet {
	n := &softmaxNet{k: k, d: d, rng: rand.NewPCG(1, 2)}
	r := rand.New(rand.NewPCG(3, 4))
	w := make([]float32, k*d)
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.1)
	}
	n.w = tensor.New(tensor.WithShape(k, d), tensor.WithBacking(w))
	n.b = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(k))
	n.gw = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(k, d))
	n.gb = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(k))
	return n
}

func (n *softmaxNet) Forward(x []float32, labels []int, training bool) (Output, error) {
	w, b := n.w.Data().([]float32), n.b.Data().([]float32)
	gw, gb := n.gw.Data().([]float32), n.gb.Data().([]float32)
	N := len(labels)
	logits := make([]float32, N*n.k)
	if training {
		clear(gw)
		clear(gb)
		n.calls++
	}
	var loss float64
	for i := range N {
		xi := x[i*n.d : (i+1)*n.d]
		row := logits[i*n.k : (i+1)*n.k]
		mx := float32(math.Inf(-1))
		for c := range n.k {
			s := b[c]
			for j := range n.d {
				s += w[c*n.d+j] * xi[j]
			}
			row[c] = s
			mx = max(mx, s)
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v - mx))
		}
		loss += -(float64(row[labels[i]]-mx) - math.Log(z))
		if training {
			for c := range n.k {
				g := float32(math.Exp(float64(row[c]-mx))/z) / float32(N)
				if c == labels[i] {
					g -= 1 / float32(N)
				}
				gb[c] += g
				for j := range n.d {
					gw[c*n.d+j] += g * xi[j]
				}
			}
		}
	}
	loss /= float64(N)
	if training && n.nanAfter > 0 && n.calls > n.nanAfter {
		loss = math.NaN()
	}
	return Output{Loss: loss, Logits: logits}, nil
}

func (n *softmaxNet) Params() []Param {
	return []Param{{Name: "w", Value: n.w, Grad: n.gw}, {Name: "b", Value: n.b, Grad: n.gb}}
}
func (n *softmaxNet) Classes() int { return n.k }
func (n *softmaxNet) State() (map[string]safetensors.Tensor, map[string]string) {
	return map[string]safetensors.Tensor{
		"w": safetensors.FromFloat32(n.w.Shape(), slices.Clone(n.w.Data().([]float32))),
		"b": safetensors.FromFloat32(n.b.Shape(), slices.Clone(n.b.Data().([]float32))),
	}, map[string]string{"model": "softmax"}
}
func (n *softmaxNet) LoadState(t map[string]safetensors.Tensor) error {
	w, err := t["w"].Float32s()
	if err != nil {
		return err
	}
	b, err := t["b"].Float32s()
	if err != nil {
		return err
	}
	if len(w) != n.k*n.d || len(b) != n.k {
		return errors.New("softmax: state does not fit")
	}
	copy(n.w.Data().([]float32), w)
	copy(n.b.Data().([]float32), b)
	return nil
}
func (n *softmaxNet) RandState() ([]byte, error)  { return n.rng.MarshalBinary() }
func (n *softmaxNet) SetRandState(b []byte) error { return n.rng.UnmarshalBinary(b) }

// blobs is a data set of Gaussian blobs; an epoch's order is a pure
// function of the epoch.
type blobs struct {
	x      []float32
	labels []int
	d      int
	batch  int
}

func newBlobs(n, k, d, batch int, seed uint64) *blobs {
	r := rand.New(rand.NewPCG(seed, 9))
	bl := &blobs{d: d, batch: batch}
	for i := range n {
		c := i % k
		bl.labels = append(bl.labels, c)
		for j := range d {
			center := 0.0
			if j%k == c {
				center = 2
			}
			bl.x = append(bl.x, float32(center+r.NormFloat64()))
		}
	}
	return bl
}

func (b *blobs) NumBatches() int { return (len(b.labels) + b.batch - 1) / b.batch }

func (b *blobs) Epoch(ctx context.Context, epoch int) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		order := rand.New(rand.NewPCG(uint64(epoch), 7)).Perm(len(b.labels))
		for s := 0; s < len(order); s += b.batch {
			if ctx.Err() != nil {
				yield(Batch{}, ctx.Err())
				return
			}
			var bt Batch
			for _, i := range order[s:min(s+b.batch, len(order))] {
				bt.Images = append(bt.Images, b.x[i*b.d:(i+1)*b.d]...)
				bt.Labels = append(bt.Labels, b.labels[i])
			}
			if !yield(bt, nil) {
				return
			}
		}
	}
}

func newToyTrainer(t *testing.T, epochs int) *Trainer {
	t.Helper()
	opt, err := NewSGD(SGDConfig{Momentum: 0.9, WeightDecay: 5e-4})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := CosineAnnealingLR(0.1, epochs, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &Trainer{Net: newSoftmaxNet(3, 6), Opt: opt, Sched: sched, Train: newBlobs(90, 3, 6, 16, 1), Test: newBlobs(30, 3, 6, 7, 2), Epochs: epochs}
}

type recorder struct {
	steps  int
	epochs []EpochInfo
	cancel func()
	at     int // cancel after this many steps
}

func (r *recorder) AfterStep(t *Trainer, s StepInfo) error {
	r.steps++
	if r.cancel != nil && r.steps == r.at {
		r.cancel()
	}
	return nil
}
func (r *recorder) AfterEpoch(t *Trainer, e EpochInfo) error {
	r.epochs = append(r.epochs, e)
	return nil
}

func TestLoopLearnsAndCallsHooks(t *testing.T) {
	tr := newToyTrainer(t, 4)
	rec := &recorder{}
	tr.Hooks = []any{rec}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.steps != 4*6 || len(rec.epochs) != 4 {
		t.Fatalf("%d steps and %d epochs, want 24 and 4", rec.steps, len(rec.epochs))
	}
	last := rec.epochs[3]
	if last.Test == nil || last.Test.Images != 30 || last.Test.Top1 < 0.8 {
		t.Errorf("test after 4 epochs: %+v, want all 30 images counted and top-1 ≥ 0.8", last.Test)
	}
	if rec.epochs[0].TrainLoss <= last.TrainLoss {
		t.Errorf("training loss went from %g to %g", rec.epochs[0].TrainLoss, last.TrainLoss)
	}
	if got := rec.epochs[1].LR; math.Abs(got-0.1*(1+math.Cos(math.Pi/4))/2) > 1e-12 {
		t.Errorf("epoch 2 ran at lr %g, want cosine's %g", got, 0.1*(1+math.Cos(math.Pi/4))/2)
	}
	total := 0
	for _, row := range last.Test.Confusion {
		for _, v := range row {
			total += v
		}
	}
	if total != 30 {
		t.Errorf("confusion matrix counts %d images, want 30", total)
	}
}

func TestLoopStopsOnNaN(t *testing.T) {
	tr := newToyTrainer(t, 2)
	tr.Net.(*softmaxNet).nanAfter = 3
	err := tr.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "loss became NaN at epoch 1, batch 4") || !strings.Contains(err.Error(), "lower the learning rate") {
		t.Fatalf("err = %v", err)
	}
	if tr.Progress.Step != 3 {
		t.Errorf("%d steps taken, want 3 (the NaN step is not applied)", tr.Progress.Step)
	}
}

// TestLastBatchOfOne: a data set whose last batch holds one image trains on
// it too (17 images in batches of 8: steps of 8, 8 and 1).
func TestLastBatchOfOne(t *testing.T) {
	tr := newToyTrainer(t, 1)
	tr.Train, tr.Test = newBlobs(17, 3, 6, 8, 1), nil
	rec := &recorder{}
	tr.Hooks = []any{rec}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.steps != 3 || tr.Progress.Step != 3 {
		t.Errorf("%d steps (hook %d), want 3: the batch of one is trained on", tr.Progress.Step, rec.steps)
	}
}

// TestGradientAccumulation: two batches of 8 accumulated equal one batch of
// 16 for a mean loss, up to float32 rounding.
func TestGradientAccumulation(t *testing.T) {
	run := func(batch, accum int) []float32 {
		tr := newToyTrainer(t, 1)
		tr.Train = newBlobs(96, 3, 6, batch, 1)
		tr.Test, tr.Accumulate = nil, accum
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if want := 96 / (batch * accum); tr.Progress.Step != want {
			t.Errorf("batch %d × %d: %d steps, want %d", batch, accum, tr.Progress.Step, want)
		}
		return tr.Net.(*softmaxNet).w.Data().([]float32)
	}
	a, b := run(16, 1), run(8, 2)
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5 {
			t.Fatalf("weight %d: %g with batch 16, %g with 8 × 2 accumulated", i, a[i], b[i])
		}
	}
}

// TestResumeIsBitIdentical interrupts a run mid-epoch, saves a checkpoint,
// restores it into a fresh trainer and finishes: the weights equal those of
// an uninterrupted run bit for bit.
func TestResumeIsBitIdentical(t *testing.T) {
	full := newToyTrainer(t, 3)
	if err := full.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := full.Net.(*softmaxNet).w.Data().([]float32)

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := newToyTrainer(t, 3)
	first.Hooks = []any{&recorder{cancel: cancel, at: 8}}
	if err := first.Run(ctx); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("run: %v, want ErrInterrupted", err)
	}
	if first.Progress.Epoch != 1 || first.Progress.BatchInEpoch != 2 {
		t.Fatalf("stopped at %+v, want epoch 1 batch 2", first.Progress)
	}
	ck := &Checkpointer{Dir: dir, Config: map[string]int{"epochs": 3}}
	if _, err := ck.Save(first, false); err != nil {
		t.Fatal(err)
	}
	l, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	second := newToyTrainer(t, 3)
	if err := second.Restore(l); err != nil {
		t.Fatal(err)
	}
	if err := second.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := second.Net.(*softmaxNet).w.Data().([]float32)
	if !slices.Equal(got, want) {
		t.Errorf("resumed weights differ from the uninterrupted run:\n got %v\nwant %v", got[:4], want[:4])
	}
	if second.Progress.Best != full.Progress.Best {
		t.Errorf("best top-1 %g after resume, %g uninterrupted", second.Progress.Best, full.Progress.Best)
	}
}

func TestCheckpointerKeepsLastAndBest(t *testing.T) {
	dir := t.TempDir()
	tr := newToyTrainer(t, 6)
	tr.Hooks = []any{&Checkpointer{Dir: dir, Keep: 2}}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	names, _ := checkpointNames(dir)
	best, _ := os.ReadFile(filepath.Join(dir, "best"))
	latest, _ := os.ReadFile(filepath.Join(dir, "latest"))
	if !slices.Contains(names, strings.TrimSpace(string(best))) || !slices.Contains(names, strings.TrimSpace(string(latest))) {
		t.Errorf("best %q or latest %q missing from %v", best, latest, names)
	}
	if len(names) > 3 {
		t.Errorf("%d checkpoints kept (%v), want at most the last 2 and the best", len(names), names)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, ".tmp*"))
	if len(matches) > 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

// TestCorruptCheckpoints: a damaged checkpoint is reported and loads nothing.
func TestCorruptCheckpoints(t *testing.T) {
	damage := map[string]func(dir string){
		"truncated weights": func(dir string) {
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		},
		"flipped byte": func(dir string) {
			p := filepath.Join(dir, "optimizer.safetensors")
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 1
			os.WriteFile(p, b, 0o644)
		},
		"garbage state": func(dir string) { os.WriteFile(filepath.Join(dir, "state.json"), []byte("{"), 0o644) },
		"future version": func(dir string) {
			p := filepath.Join(dir, "state.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"version": 1`, `"version": 9`, 1)), 0o644)
		},
		"missing file": func(dir string) { os.Remove(filepath.Join(dir, "model.safetensors")) },
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tr := newToyTrainer(t, 1)
			tr.Hooks = []any{&Checkpointer{Dir: dir}}
			if err := tr.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			ckdir, _ := ResolveCheckpoint(dir, false)
			f(ckdir)
			if _, err := LoadCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "unusable") {
				t.Errorf("LoadCheckpoint after %s: %v", name, err)
			}
		})
	}
	if _, err := LoadCheckpoint(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("empty folder: %v", err)
	}
}

// TestRestoreRefusesMismatch: a checkpoint of another optimizer changes
// nothing.
func TestRestoreRefusesMismatch(t *testing.T) {
	dir := t.TempDir()
	tr := newToyTrainer(t, 1)
	tr.Hooks = []any{&Checkpointer{Dir: dir}}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	other := newToyTrainer(t, 1)
	other.Opt, _ = NewAdam(DefaultAdamConfig())
	before := slices.Clone(other.Net.(*softmaxNet).w.Data().([]float32))
	if err := other.Restore(l); err == nil {
		t.Fatal("restoring an SGD checkpoint into Adam: no error")
	}
	if !slices.Equal(before, other.Net.(*softmaxNet).w.Data().([]float32)) {
		t.Error("a refused restore changed the weights")
	}
}

func TestConfig(t *testing.T) {
	base := DefaultConfig("vgg16", false)
	if base.LearningRate != 0.01 || DefaultConfig("vgg16_bn", true).LearningRate != 0.1 {
		t.Errorf("default lr: %g without BN, want 0.01; %g with, want 0.1", base.LearningRate, DefaultConfig("vgg16_bn", true).LearningRate)
	}
	cfg, err := ParseConfig(strings.NewReader(`{"learning_rate": 0.05, "batch_size": 32, "milestones": [10, 20]}`), base)
	if err != nil || cfg.LearningRate != 0.05 || cfg.BatchSize != 32 || cfg.Momentum != 0.9 || len(cfg.Milestones) != 2 {
		t.Errorf("ParseConfig = %+v, %v", cfg, err)
	}
	if _, err := ParseConfig(strings.NewReader(`{"learning_rte": 0.05}`), base); err == nil || !strings.Contains(err.Error(), "learning_rte") || !strings.Contains(err.Error(), "learning_rate") {
		t.Errorf("unknown key: %v, want an error naming it and the valid keys", err)
	}
	if _, err := ParseConfig(strings.NewReader(`{"epochs": "ten"}`), base); err == nil {
		t.Error("a string for epochs: no error")
	}
	bad := base
	bad.Optimizer = "lbfgs"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "sgd, adam or adamw") {
		t.Errorf("Validate(lbfgs) = %v", err)
	}
	bad = base
	bad.Schedule = "linear"
	if err := bad.Validate(); err == nil {
		t.Error("Validate(schedule linear): no error")
	}
	if err := base.Validate(); err != nil {
		t.Errorf("the default config is invalid: %v", err)
	}
}

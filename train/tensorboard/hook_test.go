package tensorboard

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"iter"
	"path/filepath"
	"testing"

	"github.com/gozoo/gozoo/safetensors"
	"github.com/gozoo/gozoo/train"
	"gorgonia.org/tensor"
)

// constNet scores every image the same: a stand-in network for the hook.
type constNet struct{ w, g *tensor.Dense }

func newConstNet() *constNet {
	return &constNet{
		w: tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{-1, 0, 0.5, 1, 2, 3})),
		g: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(2, 3)),
	}
}

func (n *constNet) Forward(images []float32, labels []int, training bool) (train.Output, error) {
	logits := make([]float32, 2*len(labels))
	for i := range labels {
		logits[2*i] = 1 // always predicts class 0
	}
	return train.Output{Loss: 0.75, Logits: logits}, nil
}
func (n *constNet) Params() []train.Param {
	return []train.Param{{Name: "fc.weight", Value: n.w, Grad: n.g}}
}
func (n *constNet) Classes() int { return 2 }
func (n *constNet) State() (map[string]safetensors.Tensor, map[string]string) {
	return nil, nil
}
func (n *constNet) LoadState(map[string]safetensors.Tensor) error { return nil }
func (n *constNet) RandState() ([]byte, error)                    { return nil, nil }
func (n *constNet) SetRandState([]byte) error                     { return nil }

// grey is batches of (N, 3, 4, 4) images, all of the value v, labels 0.
type grey struct {
	batches, n int
	v          float32
}

func (g grey) NumBatches() int { return g.batches }
func (g grey) Epoch(ctx context.Context, epoch int) iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		for range g.batches {
			b := train.Batch{Images: make([]float32, g.n*3*4*4), Labels: make([]int, g.n)}
			for i := range b.Images {
				b.Images[i] = g.v
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}

func TestHook(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, "tensorboard"))
	if err != nil {
		t.Fatal(err)
	}
	opt, err := train.NewSGD(train.SGDConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := train.Constant(0.01)
	if err != nil {
		t.Fatal(err)
	}
	mon := train.NewMonitor()
	// 0.5 normalized with mean 0.5, std 0.25 is a pixel of 0.625·255 ≈ 159.
	h := &Hook{W: w, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25}, Monitor: mon}
	tr := &train.Trainer{Net: newConstNet(), Opt: opt, Sched: sched, Train: grey{3, 4, 0.5}, Test: grey{1, 5, 0}, Epochs: 2,
		Hooks: []any{h, &train.MetricsLog{Dir: dir, Monitor: mon}}}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	counts := map[string]int{}
	last := map[string]float32{}
	var images, histos []value
	for _, e := range readEvents(t, w.Path())[1:] {
		for _, v := range e.values {
			counts[v.tag]++
			switch {
			case v.simple != nil:
				last[v.tag] = *v.simple
			case v.image != nil:
				images = append(images, v)
			case v.histo != nil:
				histos = append(histos, v)
			}
		}
	}
	for _, c := range []struct {
		tag  string
		n    int
		last float32
	}{
		{"train/loss_step", 6, 0.75}, {"lr", 6, 0.01}, {"train/loss", 2, 0.75}, {"train/accuracy", 2, 1},
		{"test/loss", 2, 0.75}, {"test/accuracy", 2, 1}, {"epoch/lr", 2, 0.01},
	} {
		if counts[c.tag] != c.n || last[c.tag] != c.last {
			t.Errorf("%s: %d values, the last %v; want %d, %v", c.tag, counts[c.tag], last[c.tag], c.n, c.last)
		}
	}
	for _, tag := range []string{"perf/images_per_sec", "perf/epoch_seconds", "perf/heap_inuse_mib", "perf/gc_pause_ms"} {
		if counts[tag] != 2 || last[tag] < 0 {
			t.Errorf("%s: %d values, the last %v; want 2 values ≥ 0", tag, counts[tag], last[tag])
		}
	}
	if len(images) != 2 {
		t.Fatalf("%d images, want one per epoch", len(images))
	}
	img, err := png.Decode(bytes.NewReader(images[0].image.png))
	if err != nil {
		t.Fatal(err)
	}
	// Four 4×4 images in a 2×2 grid with 2-pixel gaps: 14×14.
	if got := img.Bounds().Size(); got != image.Pt(14, 14) || images[0].image.width != 14 {
		t.Errorf("grid %v (header width %d), want 14×14", got, images[0].image.width)
	}
	if r, _, _, _ := img.At(2, 2).RGBA(); r>>8 != 159 {
		t.Errorf("de-normalized pixel %d, want 159", r>>8)
	}
	if r, _, _, _ := img.At(0, 0).RGBA(); r != 0 {
		t.Errorf("gap pixel %d, want 0", r>>8)
	}
	if len(histos) != 2 || histos[1].tag != "weights/fc.weight" {
		t.Fatalf("histograms %+v, want weights/fc.weight per epoch", histos)
	}
	if hg := histos[1].histo; hg.Num != 6 || hg.Min != -1 || hg.Max != 3 || hg.Sum != 5.5 {
		t.Errorf("histogram num %v min %v max %v sum %v, want 6 -1 3 5.5", hg.Num, hg.Min, hg.Max, hg.Sum)
	}
}

func TestGridBadShape(t *testing.T) {
	h := &Hook{}
	b := train.Batch{Images: make([]float32, 2*3*5*4), Labels: []int{0, 1}} // 5×4 is not square
	if _, err := h.Grid(b, 4); err == nil {
		t.Error("non-square images without ImageShape: no error")
	}
	h.ImageShape = [3]int{3, 5, 4}
	img, err := h.Grid(b, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got != image.Pt(2*(4+2)+2, 5+4) {
		t.Errorf("grid %v, want (14,9)", got)
	}
}

func TestHookOneScalarPerStep(t *testing.T) {
	w, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := train.NewSGD(train.SGDConfig{})
	sched, _ := train.Constant(0.01)
	h := &Hook{W: w, GridImages: -1}
	// Three batches summed into one optimizer step per epoch.
	tr := &train.Trainer{Net: newConstNet(), Opt: opt, Sched: sched, Train: grey{3, 4, 0.5}, Epochs: 2, Accumulate: 3, Hooks: []any{h}}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var steps []int64
	for _, e := range readEvents(t, w.Path())[1:] {
		for _, v := range e.values {
			if v.image != nil {
				t.Errorf("image %s with GridImages < 0", v.tag)
			}
			if v.tag == "train/loss_step" {
				steps = append(steps, e.step)
			}
		}
	}
	if fmt.Sprint(steps) != "[1 2]" {
		t.Errorf("train/loss_step at steps %v, want [1 2]", steps)
	}
}

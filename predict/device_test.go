package predict

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gozoo/gozoo/internal/cuda/emu"
	"github.com/gozoo/gozoo/zoo/vgg"
)

// TestLogitsOption: a predictor whose logits come from a vgg.Device (here on
// the host emulation of the GPU backend) computes every batch there and
// predicts what the CPU graph does, across MaxBatch chunks.
func TestLogitsOption(t *testing.T) {
	m, err := vgg.New("vgg11_bn", vgg.Options{WidthMult: 1.0 / 16, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := vgg.NewDevice(m, emu.New(), vgg.NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := New(m, Options{MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	var calls, seen int // the device's Logits calls, and the images they got
	logits := func(images []float32) ([]float32, error) {
		calls++
		seen += len(images) / (3 * 32 * 32)
		return dev.Logits(images)
	}
	gpu, err := New(m, Options{MaxBatch: 2, Logits: logits})
	if err != nil {
		t.Fatal(err)
	}
	defer gpu.Close()
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 5*cpu.InputSize())
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	want, err := cpu.PredictInputs(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gpu.PredictInputs(x, 3)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 || seen != 5 {
		t.Errorf("the device computed %d batches of %d images in all, want 3 batches (MaxBatch 2) of 5", calls, seen)
	}
	if len(got) != len(want) {
		t.Fatalf("%d predictions, want %d", len(got), len(want))
	}
	for i := range want {
		for c, p := range want[i].Probabilities {
			if d := math.Abs(got[i].Probabilities[c] - p); d > 1e-6 {
				t.Errorf("image %d class %d: probability %g, want %g", i, c, got[i].Probabilities[c], p)
			}
		}
		if got[i].Top[0] != want[i].Top[0] {
			t.Errorf("image %d: top %v, want %v", i, got[i].Top[0], want[i].Top[0])
		}
	}
}

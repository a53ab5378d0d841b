package predict

import (
	"image"
	"image/color"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/gozoo/gozoo/zoo/vgg"
)

// tinyModel is VGG-11 at 1/16 width with seeded random weights.
func tinyModel(t testing.TB, o vgg.Options) *vgg.Model {
	t.Helper()
	o.WidthMult, o.Seed = 0.0625, 3
	m, err := vgg.New("vgg11_bn", o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testImages returns n different images of different sizes.
func testImages(n int) []image.Image {
	var out []image.Image
	for i := range n {
		img := image.NewNRGBA(image.Rect(0, 0, 20+7*i, 50-3*i))
		for y := range img.Bounds().Dy() {
			for x := range img.Bounds().Dx() {
				img.SetNRGBA(x, y, color.NRGBA{uint8(x * 9 * (i + 1)), uint8(y * 5), uint8(40 * i), 255})
			}
		}
		out = append(out, img)
	}
	return out
}

func TestPredictBatchedEqualsOneByOne(t *testing.T) {
	p, err := New(tinyModel(t, vgg.Options{}), Options{MaxBatch: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	imgs := testImages(7) // chunks of 3, 3, 1
	all, err := p.Predict(imgs, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(imgs) {
		t.Fatalf("%d predictions for %d images", len(all), len(imgs))
	}
	for i, img := range imgs {
		one, err := p.Predict([]image.Image{img}, 3)
		if err != nil {
			t.Fatal(err)
		}
		for c, want := range one[0].Probabilities {
			if got := all[i].Probabilities[c]; math.Abs(got-want) > 1e-5 {
				t.Errorf("image %d class %d: batched probability %g, alone %g", i, c, got, want)
			}
		}
		var sum float64
		for _, v := range all[i].Probabilities {
			sum += v
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("image %d: probabilities sum to %g, want 1", i, sum)
		}
		top := all[i].Top
		if len(top) != 3 || !slices.IsSortedFunc(top, func(a, b Class) int { return -cmpFloat(a.Probability, b.Probability) }) {
			t.Errorf("image %d: top %v: want 3 classes, most probable first", i, top)
		}
		if top[0].Label != "class "+string(rune('0'+top[0].Index)) || top[0].Probability != all[i].Probabilities[top[0].Index] {
			t.Errorf("image %d: top class %+v does not match its name or probability", i, top[0])
		}
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestTopK(t *testing.T) {
	p := &Predictor{classes: []string{"a", "b", "c", "d"}}
	probs := []float64{0.1, 0.4, 0.1, 0.4}
	for _, tc := range []struct {
		k    int
		want []int
	}{{1, []int{1}}, {2, []int{1, 3}}, {0, []int{1, 3, 0, 2}}, {9, []int{1, 3, 0, 2}}} {
		var got []int
		for _, c := range p.top(probs, tc.k) {
			got = append(got, c.Index)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("top %d of %v = %v, want %v", tc.k, probs, got, tc.want)
		}
	}
}

func TestSoftmaxLargeLogits(t *testing.T) {
	got := softmax([]float32{1000, 1000, -1000})
	if math.Abs(got[0]-0.5) > 1e-12 || math.Abs(got[1]-0.5) > 1e-12 || got[2] != 0 {
		t.Errorf("softmax(1000, 1000, −1000) = %v, want (0.5, 0.5, 0)", got)
	}
}

func TestFeatures(t *testing.T) {
	m := tinyModel(t, vgg.Options{})
	p, err := New(m, Options{MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	imgs := testImages(3)
	for _, tc := range []struct {
		layer string
		want  []int
	}{
		{"block4", []int{3, 32, 2, 2}},
		{"features.0", []int{3, 4, 32, 32}},
		{"flatten", []int{3, 32}},
		{"classifier.0", []int{3, 10}},
	} {
		f, err := p.Features(imgs, tc.layer)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.Shape, tc.want) || len(f.Data) != shapeSize(tc.want) {
			t.Errorf("%s: shape %v with %d values, want %v", tc.layer, f.Shape, len(f.Data), tc.want)
		}
	}
	// The last layer's features are the logits: their softmax is Predict's.
	logits, _ := p.Features(imgs, "classifier.0")
	preds, _ := p.Predict(imgs, 1)
	for i := range imgs {
		probs := softmax(logits.Data[i*10 : (i+1)*10])
		if math.Abs(probs[3]-preds[i].Probabilities[3]) > 1e-6 {
			t.Errorf("image %d: softmax of classifier.0 %g, Predict %g", i, probs[3], preds[i].Probabilities[3])
		}
	}
	if _, err := p.Features(imgs, "features.99"); err == nil {
		t.Error("Features of features.99: no error")
	}
	if got := p.Layers(); !slices.Contains(got, "block5") || got[0] != "features.0" || got[len(got)-1] != "block5" {
		t.Errorf("Layers() = %v: want features.0 first and block1..block5 last", got)
	}
}

func TestNewRejects(t *testing.T) {
	m := tinyModel(t, vgg.Options{})
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"wrong class count", Options{Classes: []string{"a", "b"}}},
		{"zero std", Options{Mean: [3]float32{0.5, 0.5, 0.5}}},
		{"negative batch", Options{MaxBatch: -1}},
	} {
		if _, err := New(m, tc.o); err == nil {
			t.Errorf("%s: New: no error", tc.name)
		}
	}
	gray, err := vgg.New("vgg11", vgg.Options{InChannels: 1, WidthMult: 0.0625})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(gray, Options{}); err == nil {
		t.Error("New with a 1-channel model: no error")
	}
}

// TestConcurrent runs Predict from many goroutines (run with -race): every
// answer equals the sequential one.
func TestConcurrent(t *testing.T) {
	p, err := New(tinyModel(t, vgg.Options{}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	imgs := testImages(4)
	want, err := p.Predict(imgs, 1)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			i := g % len(imgs)
			got, err := p.Predict(imgs[i:i+1], 1)
			if err != nil {
				errs <- err
				return
			}
			if got[0].Top[0].Index != want[i].Top[0].Index || math.Abs(got[0].Top[0].Probability-want[i].Top[0].Probability) > 1e-5 {
				t.Errorf("goroutine %d: top %+v, want %+v", g, got[0].Top[0], want[i].Top[0])
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

package cifar10

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"
	"time"
)

// tiny returns n generated CIFAR-10 images with labels i % 10.
func tiny(n int) *Dataset {
	d := &Dataset{Name: "cifar10", Images: make([]uint8, n*ImageSize), Labels: make([]int, n)}
	for i := range n {
		d.Labels[i] = i % 10
		for k := range ImageSize {
			d.Images[i*ImageSize+k] = uint8(i*31 + k*7)
		}
	}
	return d
}

// collect runs one epoch and returns its batches.
func collect(t *testing.T, l *Loader, epoch int) []Batch {
	t.Helper()
	var out []Batch
	for b, err := range l.Epoch(context.Background(), epoch) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func norm(p uint8, c int) float32 { return (float32(p)/255 - DefaultMean[c]) / DefaultStd[c] }

func TestLoaderEval(t *testing.T) {
	tests := []struct{ n, batch, wantBatches, lastLen int }{
		{10, 4, 3, 2},
		{10, 5, 2, 5},
		{3, 64, 1, 3},
	}
	for _, tc := range tests {
		d := tiny(tc.n)
		l, err := NewLoader(d, LoaderConfig{BatchSize: tc.batch})
		if err != nil {
			t.Fatal(err)
		}
		if got := l.NumBatches(); got != tc.wantBatches {
			t.Errorf("n=%d batch=%d: NumBatches() = %d, want %d", tc.n, tc.batch, got, tc.wantBatches)
		}
		bs := collect(t, l, 0)
		if len(bs) != tc.wantBatches || bs[len(bs)-1].Len() != tc.lastLen {
			t.Fatalf("n=%d batch=%d: %d batches, last of %d, want %d, last of %d", tc.n, tc.batch, len(bs), bs[len(bs)-1].Len(), tc.wantBatches, tc.lastLen)
		}
		i := 0
		for bi, b := range bs {
			if b.Index != bi {
				t.Errorf("batch %d has Index %d", bi, b.Index)
			}
			for k := range b.Len() {
				if b.Labels[k] != d.Labels[i] {
					t.Errorf("image %d: label %d, want %d", i, b.Labels[k], d.Labels[i])
				}
				for p, v := range d.Image(i) {
					if got, want := b.Images[k*ImageSize+p], norm(v, p/1024); got != want {
						t.Fatalf("image %d byte %d: %g, want %g", i, p, got, want)
					}
				}
				i++
			}
		}
		if i != tc.n {
			t.Errorf("epoch covered %d images, want %d", i, tc.n)
		}
	}
}

func TestLoaderDeterminism(t *testing.T) {
	d := tiny(50)
	run := func(seed uint64, workers, epoch int) []Batch {
		l, err := NewLoader(d, LoaderConfig{BatchSize: 8, Shuffle: true, Augment: true, Seed: seed, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		return collect(t, l, epoch)
	}
	same := func(a, b []Batch) bool {
		return slices.EqualFunc(a, b, func(x, y Batch) bool {
			return slices.Equal(x.Labels, y.Labels) && slices.Equal(x.Images, y.Images)
		})
	}
	ref := run(1, 1, 3)
	if !same(ref, run(1, 4, 3)) || !same(ref, run(1, 2, 3)) {
		t.Error("epoch 3 differs between 1, 2 and 4 workers")
	}
	if same(ref, run(1, 1, 4)) {
		t.Error("epochs 3 and 4 are identical, want a new shuffle and augmentation")
	}
	if same(ref, run(2, 1, 3)) {
		t.Error("seeds 1 and 2 give identical epochs")
	}
	// Each epoch is a permutation of the data.
	var labels []int
	for _, b := range ref {
		labels = append(labels, b.Labels...)
	}
	slices.Sort(labels)
	want := slices.Clone(d.Labels)
	slices.Sort(want)
	if !slices.Equal(labels, want) {
		t.Errorf("shuffled labels %v are not a permutation of %v", labels, want)
	}
}

// transform returns image src (3, 32, 32) normalized, shifted by (dy, dx)
// with zero padding and mirrored if flip, written directly from the
// definition: out(y, x) = src(y+dy, x'+dx) with x' = 31−x when flipped.
func transform(src []uint8, dy, dx int, flip bool) []float32 {
	out := make([]float32, ImageSize)
	for c := range 3 {
		for y := range 32 {
			for x := range 32 {
				xs := x
				if flip {
					xs = 31 - x
				}
				sy, sx := y+dy, xs+dx
				var p uint8
				if sy >= 0 && sy < 32 && sx >= 0 && sx < 32 {
					p = src[c*1024+sy*32+sx]
				}
				out[c*1024+y*32+x] = norm(p, c)
			}
		}
	}
	return out
}

func TestLoaderAugment(t *testing.T) {
	d := tiny(40)
	l, err := NewLoader(d, LoaderConfig{BatchSize: 16, Augment: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	flips, shifts := 0, 0
	i := 0
	for _, b := range collect(t, l, 0) {
		for k := range b.Len() {
			got := b.Images[k*ImageSize : (k+1)*ImageSize]
			found := false
			for dy := -4; dy <= 4 && !found; dy++ {
				for dx := -4; dx <= 4 && !found; dx++ {
					for _, flip := range []bool{false, true} {
						if slices.Equal(got, transform(d.Image(i), dy, dx, flip)) {
							found = true
							if flip {
								flips++
							}
							if dy != 0 || dx != 0 {
								shifts++
							}
							break
						}
					}
				}
			}
			if !found {
				t.Errorf("image %d: not a padded crop and flip of its source", i)
			}
			i++
		}
	}
	if flips == 0 || flips == 40 || shifts < 20 {
		t.Errorf("%d of 40 flipped and %d shifted, want about half flipped and most shifted", flips, shifts)
	}
}

func TestLoaderStopsWorkers(t *testing.T) {
	d := tiny(64)
	l, err := NewLoader(d, LoaderConfig{BatchSize: 2, Shuffle: true, Augment: true, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	settled := func() int {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		return runtime.NumGoroutine()
	}
	for range l.Epoch(context.Background(), 0) {
		break
	}
	if got := settled(); got > before {
		t.Errorf("after break: %d goroutines, want %d", got, before)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, errs := 0, 0
	for _, err := range l.Epoch(ctx, 1) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			errs++
			continue
		}
		if n++; n == 3 {
			cancel()
		}
	}
	if n != 3 || errs != 1 {
		t.Errorf("after cancel: %d batches and %d errors, want 3 and 1", n, errs)
	}
	if got := settled(); got > before {
		t.Errorf("after cancel: %d goroutines, want %d", got, before)
	}
}

func TestNewLoaderErrors(t *testing.T) {
	tests := []struct {
		name string
		d    *Dataset
		cfg  LoaderConfig
	}{
		{"nil data", nil, LoaderConfig{BatchSize: 1}},
		{"empty data", &Dataset{}, LoaderConfig{BatchSize: 1}},
		{"bad images", &Dataset{Labels: []int{1}, Images: make([]uint8, 5)}, LoaderConfig{BatchSize: 1}},
		{"zero batch", tiny(2), LoaderConfig{}},
		{"negative workers", tiny(2), LoaderConfig{BatchSize: 1, Workers: -1}},
		{"zero std", tiny(2), LoaderConfig{BatchSize: 1, Mean: [3]float32{0.5, 0.5, 0.5}}},
		{"NaN std", tiny(2), LoaderConfig{BatchSize: 1, Std: [3]float32{1, float32(math.NaN()), 1}}},
	}
	for _, tc := range tests {
		if _, err := NewLoader(tc.d, tc.cfg); err == nil {
			t.Errorf("%s: NewLoader: no error, want one", tc.name)
		}
	}
}

func BenchmarkLoader(b *testing.B) {
	d := tiny(1024)
	for _, aug := range []bool{false, true} {
		name := "plain"
		if aug {
			name = "augment"
		}
		b.Run(name, func(b *testing.B) {
			l, err := NewLoader(d, LoaderConfig{BatchSize: 128, Shuffle: aug, Augment: aug})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for i := 0; b.Loop(); i++ {
				for bt, err := range l.Epoch(context.Background(), i) {
					if err != nil {
						b.Fatal(err)
					}
					n += bt.Len()
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "img/s")
		})
	}
}

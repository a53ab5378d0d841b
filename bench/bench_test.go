package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// benchConfigs are the sub-benchmarks of BenchmarkTrainStep and
// BenchmarkInfer: a tiny model (always) and the targets at batch 64
// (skipped with -short).
var benchConfigs = []struct {
	model string
	batch int
	width float64
	short bool // also run with -short
}{
	{"vgg11_bn", 2, 1.0 / 16, true},
	{"vgg11_bn", 64, 1, false},
	{"vgg16_bn", 64, 1, false},
}

// BenchmarkTrainStep times one training step (forward, backward, SGD) per
// iteration, with the code `zoo bench --mode train` runs.
//
//	go test ./bench -run '^$' -bench TrainStep -benchtime 5x
func BenchmarkTrainStep(b *testing.B) { benchmark(b, Train) }

// BenchmarkInfer times one inference pass per iteration, with the code
// `zoo bench --mode infer` runs.
func BenchmarkInfer(b *testing.B) { benchmark(b, Infer) }

func benchmark(b *testing.B, mode Mode) {
	for _, bc := range benchConfigs {
		name := fmt.Sprintf("%s/batch=%d/width=%g", bc.model, bc.batch, bc.width)
		b.Run(name, func(b *testing.B) {
			if testing.Short() && !bc.short {
				b.Skip("full-size model: run without -short")
			}
			r, err := NewRunner(Config{Model: bc.model, Mode: mode, Batch: bc.batch, Width: bc.width})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			if err := r.Step(); err != nil { // warm-up: the machine's first run allocates
				b.Fatal(err)
			}
			for b.Loop() {
				if err := r.Step(); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(bc.batch)/sec, "img/s")
			b.ReportMetric(r.FLOPsPerStep()/sec/1e9, "GFLOP/s")
		})
	}
}

func TestRunTiny(t *testing.T) {
	for _, mode := range Modes() {
		t.Run(string(mode), func(t *testing.T) {
			c := Config{Model: "vgg11_bn", Mode: mode, Batch: 2, Width: 1.0 / 16, Iters: 2, Warmup: 1}
			r, err := Run(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if r.Impl != "gozoo" || r.Model != "vgg11_bn" || r.Mode != mode || r.Batch != 2 {
				t.Errorf("result identifies %s %s %s batch %d, want gozoo vgg11_bn %s batch 2", r.Impl, r.Model, r.Mode, r.Batch, mode)
			}
			if len(r.Times) != 2 {
				t.Errorf("got %d times, want 2 (Iters)", len(r.Times))
			}
			if !(r.ImgPerSec.Min > 0 && r.ImgPerSec.Min <= r.ImgPerSec.Median && r.ImgPerSec.Median <= r.ImgPerSec.Max) {
				t.Errorf("img/s %+v: want 0 < min <= median <= max", r.ImgPerSec)
			}
			if r.GFLOPs <= 0 || r.MsPerStep <= 0 {
				t.Errorf("GFLOP/s %g, ms/step %g: want both positive", r.GFLOPs, r.MsPerStep)
			}
			if r.PeakRSS < 1<<20 || r.HeapInuse == 0 || r.GoSys < r.HeapInuse {
				t.Errorf("peak RSS %d, heap in use %d, Go sys %d: want RSS > 1 MiB and 0 < heap <= sys", r.PeakRSS, r.HeapInuse, r.GoSys)
			}
			if r.Threads < 1 || r.Kernels == "" {
				t.Errorf("threads %d, kernels %q: want >= 1 and a name", r.Threads, r.Kernels)
			}
			if mode == Train && !(r.Loss > 0) {
				t.Errorf("training loss %g: want a positive finite loss", r.Loss)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("result does not marshal: %v", err)
			}
		})
	}
}

// TestTrainStepLearns checks that the step really updates the weights: on a
// fixed batch, the loss falls.
func TestTrainStepLearns(t *testing.T) {
	r, err := NewRunner(Config{Model: "vgg11_bn", Mode: Train, Batch: 4, Width: 1.0 / 16, Iters: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var first float64
	for i := range 10 {
		if err := r.Step(); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = r.Loss()
		}
	}
	if last := r.Loss(); !(last < first) {
		t.Errorf("loss after 10 steps on one batch = %g, want below the first step's %g", last, first)
	}
}

func TestFLOPsPerImage(t *testing.T) {
	c := Config{Model: "vgg16_bn", Mode: Train, Batch: 64, Iters: 1}
	a, err := c.Arch()
	if err != nil {
		t.Fatal(err)
	}
	// 0.313 G MACs forward per image at 32×32 (docs/perf-leads.md).
	for _, tt := range []struct {
		mode Mode
		want float64
	}{{Train, 6 * 0.3133e9}, {Infer, 2 * 0.3133e9}} {
		if got := FLOPsPerImage(a, tt.mode); math.Abs(got-tt.want)/tt.want > 0.01 {
			t.Errorf("FLOPsPerImage(vgg16_bn, %s) = %.4g, want %.4g ± 1%%", tt.mode, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		times            []float64
		median, min, max float64 // img/s
		ms               float64 // median ms/step
	}{
		{[]float64{0.5}, 128, 128, 128, 500},
		{[]float64{1, 0.25, 0.5}, 128, 64, 256, 500},
		{[]float64{1, 0.25, 0.5, 0.5}, 128, 64, 256, 500},
		{[]float64{0.25, 1}, 64 / 0.625, 64, 256, 625},
	}
	for _, tt := range tests {
		r := Result{Config: Config{Batch: 64}, Times: tt.times}
		if err := r.Summarize(1e9); err != nil {
			t.Fatal(err)
		}
		want := Stats{Median: tt.median, Min: tt.min, Max: tt.max}
		if r.ImgPerSec != want || r.MsPerStep != tt.ms {
			t.Errorf("times %v: img/s %+v, ms/step %g; want %+v, %g", tt.times, r.ImgPerSec, r.MsPerStep, want, tt.ms)
		}
		if got, want := r.GFLOPs, tt.median; got != want { // 1 GFLOP per image
			t.Errorf("times %v: GFLOP/s %g, want %g", tt.times, got, want)
		}
	}
	for _, times := range [][]float64{nil, {0.1, 0}} {
		r := Result{Config: Config{Batch: 1}, Times: times}
		if err := r.Summarize(1); err == nil {
			t.Errorf("Summarize with times %v: no error", times)
		}
	}
}

func TestBadConfig(t *testing.T) {
	ok := Config{Model: "vgg11", Mode: Train, Batch: 2, Iters: 1}
	tests := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Batch = 0 }, "batch size 0"},
		{func(c *Config) { c.Iters = 0 }, "0 timed iterations"},
		{func(c *Config) { c.Warmup = -1 }, "warm-up"},
		{func(c *Config) { c.Width = -1 }, "width multiplier"},
		{func(c *Config) { c.Width = math.NaN() }, "width multiplier"},
		{func(c *Config) { c.Mode = "eval" }, `unknown mode "eval"`},
		{func(c *Config) { c.Model = "resnet50" }, "valid names: vgg11"},
	}
	for _, tt := range tests {
		c := ok
		tt.edit(&c)
		_, err := Run(context.Background(), c)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%+v) error = %v, want one containing %q", c, err, tt.want)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tzoo\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n"
	if got, err := parseVmHWM([]byte(status)); err != nil || got != 2048<<10 {
		t.Errorf("parseVmHWM = %d, %v; want %d", got, err, 2048<<10)
	}
	if _, err := parseVmHWM([]byte("Name:\tzoo\n")); err == nil {
		t.Error("parseVmHWM without a VmHWM line: no error")
	}
}

func TestRunTorchMissingPython(t *testing.T) {
	c := Config{Model: "vgg11", Mode: Infer, Batch: 1, Width: 1.0 / 16, Iters: 1}
	_, err := RunTorch(context.Background(), "/nonexistent/python3", c, 1)
	if !errors.Is(err, ErrNoTorch) || !strings.Contains(err.Error(), "/nonexistent/python3") {
		t.Errorf("RunTorch with a missing python: error %v, want ErrNoTorch naming the path", err)
	}
	if _, err := CheckTorch(context.Background(), "/nonexistent/python3"); !errors.Is(err, ErrNoTorch) {
		t.Errorf("CheckTorch with a missing python: error %v, want ErrNoTorch", err)
	}
}

// TestRunTorch runs the PyTorch side for real when Debian's python has torch.
func TestRunTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts python and torch: run without -short")
	}
	if _, err := CheckTorch(context.Background(), DefaultPython); err != nil {
		t.Skip(err)
	}
	c := Config{Model: "vgg11_bn", Mode: Train, Batch: 2, Width: 1.0 / 16, Iters: 2, Warmup: 1}
	r, err := RunTorch(context.Background(), DefaultPython, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Impl != "pytorch" || r.Model != c.Model || r.Mode != c.Mode || r.Batch != 2 || r.Width != c.Width || r.Threads != 1 {
		t.Errorf("result %+v does not describe pytorch %+v with 1 thread", r, c)
	}
	if len(r.Times) != 2 || r.PeakRSS < 1<<20 || !strings.HasPrefix(r.Kernels, "torch ") || r.ImgPerSec.Median <= 0 {
		t.Errorf("times %v, peak RSS %d, kernels %q, img/s %+v: want 2 times, RSS > 1 MiB, torch kernels, positive speed", r.Times, r.PeakRSS, r.Kernels, r.ImgPerSec)
	}
}

func TestCombine(t *testing.T) {
	a := &Result{Config: Config{Model: "vgg11", Mode: Train, Batch: 4, Iters: 2}, Impl: "gozoo", Times: []float64{1, 2}, PeakRSS: 10, AllocPerStep: 100, FLOPsPerImage: 1e9}
	b := &Result{Config: Config{Model: "vgg11", Mode: Train, Batch: 4, Iters: 1}, Impl: "gozoo", Times: []float64{4}, PeakRSS: 30, AllocPerStep: 400, FLOPsPerImage: 1e9}
	got, err := Combine(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Times) != 3 || got.Iters != 3 || got.PeakRSS != 30 || got.AllocPerStep != 200 || got.ImgPerSec.Median != 2 || got.ImgPerSec.Min != 1 {
		t.Errorf("Combine = times %v, iters %d, RSS %d, alloc/step %g, img/s %+v; want 3 times, 3 iters, RSS 30, alloc 200, median 2 min 1",
			got.Times, got.Iters, got.PeakRSS, got.AllocPerStep, got.ImgPerSec)
	}
	if len(a.Times) != 2 {
		t.Errorf("Combine changed its first argument's times to %v", a.Times)
	}
	c := *b
	c.Impl = "pytorch"
	if _, err := Combine(a, &c); err == nil {
		t.Error("Combine(gozoo, pytorch): no error")
	}
	if _, err := Combine(); err == nil {
		t.Error("Combine(): no error")
	}
}

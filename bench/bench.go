// Package bench measures gozoo's models: the timed training step (forward,
// backward and an SGD update) and inference, with throughput, achieved
// GFLOP/s and memory.
//
// The same code serves `go test -bench` (BenchmarkTrainStep and
// BenchmarkInfer call Runner.Step) and the `zoo bench` command (which calls
// Run, one model and mode per process so that peak RSS belongs to one
// measurement). RunTorch runs the same models in PyTorch with an embedded
// script (torch_bench.py) and returns its timings in the same Result form.
package bench

import (
	"context"
	"fmt"
	"github.com/gozoo/gozoo/layers"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/gozoo/gozoo/train"
	"github.com/gozoo/gozoo/zoo"
	"github.com/gozoo/gozoo/zoo/vgg"
)

// Mode is what one iteration does.
type Mode string

const (
	// Train is one training step: forward, loss, backward and an SGD update
	// (momentum 0.9, weight decay 5e-4), with batch-norm in training mode.
	Train Mode = "train"
	// Infer is one forward pass of the evaluation graph (running batch-norm
	// statistics, no loss, no gradients).
	Infer Mode = "infer"
)

// Modes returns the modes in the order the command runs them.
func Modes() []Mode { return []Mode{Train, Infer} }

// ParseMode returns the mode named s ("train" or "infer").
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes() {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("bench: unknown mode %q: use %q or %q", s, Train, Infer)
}

// Solver settings of the training step, shared with torch_bench.py.
const (
	LR          = 0.01
	Momentum    = 0.9
	WeightDecay = 5e-4
)

// Config is one measurement: a registered model (zoo.Lookup name) at
// 32×32 with the CIFAR head (10 classes), a mode, a batch size and a width
// multiplier, timed over Iters iterations after Warmup untimed ones.
type Config struct {
	Model  string  `json:"model"`
	Mode   Mode    `json:"mode"`
	Batch  int     `json:"batch"`
	Width  float64 `json:"width"` // width multiplier; 0 means 1
	Warmup int     `json:"warmup"`
	Iters  int     `json:"iters"`
	Seed   uint64  `json:"seed"` // weights and the synthetic batch
}

// check validates the model settings of c (not Iters and Warmup, which
// NewRunner ignores) and fills in the default width.
func (c Config) check() (Config, error) {
	if c.Width == 0 {
		c.Width = 1
	}
	switch {
	case c.Batch <= 0:
		return c, fmt.Errorf("bench: batch size %d: must be at least 1", c.Batch)
	case !(c.Width > 0):
		return c, fmt.Errorf("bench: width multiplier %g: must be positive", c.Width)
	}
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return c, err
	}
	return c, nil
}

// checkIters validates Iters and Warmup, which Run and RunTorch use.
func (c Config) checkIters() error {
	switch {
	case c.Iters <= 0:
		return fmt.Errorf("bench: %d timed iterations: must be at least 1", c.Iters)
	case c.Warmup < 0:
		return fmt.Errorf("bench: %d warm-up iterations: must be 0 or more", c.Warmup)
	}
	return nil
}

// Arch returns the architecture c measures.
func (c Config) Arch() (*vgg.Arch, error) {
	c, err := c.check()
	if err != nil {
		return nil, err
	}
	e, err := zoo.Lookup(c.Model, false)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return e.Arch(vgg.Options{Batch: c.Batch, WidthMult: c.Width, Seed: c.Seed})
}

// FLOPsPerImage is the floating-point work of one image in one iteration:
// 2 FLOPs per multiply-accumulate of the forward pass, times 3 for a
// training step (forward, input gradient, weight gradient).
func FLOPsPerImage(a *vgg.Arch, m Mode) float64 {
	f := 2 * float64(a.MACs())
	if m == Train {
		f *= 3
	}
	return f
}

// Runner is one model ready to run iterations of one mode: its graph, its
// solver when training, and a fixed synthetic batch. It ignores
// Config.Iters and Config.Warmup: the caller loops.
type Runner struct {
	Config Config
	Arch   *vgg.Arch

	model  *vgg.Model
	graph  *vgg.Graph
	opt    *train.SGD
	params []train.Param
	images []float32 // (N, 3, 32, 32)
	labels []int     // (N)
}

// NewRunner builds the model and graph of c.
func NewRunner(c Config) (*Runner, error) {
	c, err := c.check()
	if err != nil {
		return nil, err
	}
	a, err := c.Arch()
	if err != nil {
		return nil, err
	}
	m, err := vgg.FromArch(a)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &Runner{Config: c, Arch: a, model: m}
	r.graph, err = m.NewGraph(vgg.GraphOptions{Train: c.Mode == Train, Loss: c.Mode == Train})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if c.Mode == Train {
		if r.opt, err = train.NewSGD(train.SGDConfig{Momentum: Momentum, WeightDecay: WeightDecay}); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		grads := r.graph.Grads()
		for i, p := range m.Params() {
			if grads[i].Name != p.Name {
				return nil, fmt.Errorf("bench: gradient %d is %s, want %s", i, grads[i].Name, p.Name)
			}
			r.params = append(r.params, train.Param{Name: p.Name, Value: p.Value, Grad: grads[i].Value})
		}
	}
	o := a.Opts
	rng := rand.New(rand.NewPCG(c.Seed, 0xbe7c))
	r.images = make([]float32, c.Batch*o.InChannels*o.Height*o.Width)
	for i := range r.images {
		r.images[i] = float32(rng.NormFloat64())
	}
	r.labels = make([]int, c.Batch)
	for i := range r.labels {
		r.labels[i] = rng.IntN(o.Classes)
	}
	return r, nil
}

// Step runs one iteration: a training step or an inference pass.
func (r *Runner) Step() error {
	if err := r.graph.Run(r.images, r.labels); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if r.opt == nil {
		return nil
	}
	if err := r.opt.Step(r.params, LR); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// Loss is the loss of the last training step (NaN in inference).
func (r *Runner) Loss() float64 { return r.graph.LossValue() }

// Close releases the graph's machine.
func (r *Runner) Close() error { return r.graph.Close() }

// FLOPsPerStep is the floating-point work of one iteration of the batch.
func (r *Runner) FLOPsPerStep() float64 {
	return FLOPsPerImage(r.Arch, r.Config.Mode) * float64(r.Config.Batch)
}

// Result is one measurement, of gozoo (Impl "gozoo") or of PyTorch (Impl
// "pytorch"), as `zoo bench --json` prints it. Times holds the seconds of
// each timed iteration; Summarize fills in the fields derived from them.
type Result struct {
	Config
	Impl    string    `json:"impl"`
	Threads int       `json:"threads"` // GOMAXPROCS, or torch.get_num_threads()
	Kernels string    `json:"kernels"` // the compute kernels in use
	Times   []float64 `json:"times_s"`
	// PeakRSS is the process's peak resident set size in bytes (VmHWM on
	// Linux, ru_maxrss elsewhere); 0 when unknown.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// Go runtime memory after the last iteration (gozoo only).
	HeapInuse uint64 `json:"go_heap_inuse_bytes,omitempty"`
	GoSys     uint64 `json:"go_sys_bytes,omitempty"`
	// Per timed iteration (gozoo only): bytes allocated and collections.
	AllocPerStep float64 `json:"alloc_bytes_per_step,omitempty"`
	GCPerStep    float64 `json:"gc_per_step,omitempty"`
	Loss         float64 `json:"loss,omitempty"` // the last training loss, if finite

	// Derived by Summarize.
	FLOPsPerImage float64 `json:"flop_per_image"`
	ImgPerSec     Stats   `json:"img_per_s"`
	MsPerStep     float64 `json:"ms_per_step"` // median
	GFLOPs        float64 `json:"gflop_per_s"` // at the median time
}

// Stats summarises a throughput over the timed iterations.
type Stats struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize derives img/s, ms/step and GFLOP/s from r.Times, r.Batch and
// flopsPerImage.
func (r *Result) Summarize(flopsPerImage float64) error {
	if len(r.Times) == 0 {
		return fmt.Errorf("bench: %s %s %s: no timed iterations", r.Impl, r.Model, r.Mode)
	}
	t := slices.Clone(r.Times)
	slices.Sort(t)
	if t[0] <= 0 {
		return fmt.Errorf("bench: %s %s %s: iteration time %g s: must be positive", r.Impl, r.Model, r.Mode, t[0])
	}
	med := t[len(t)/2]
	if len(t)%2 == 0 {
		med = (t[len(t)/2-1] + med) / 2
	}
	b := float64(r.Batch)
	r.FLOPsPerImage = flopsPerImage
	r.ImgPerSec = Stats{Median: b / med, Min: b / t[len(t)-1], Max: b / t[0]}
	r.MsPerStep = med * 1e3
	r.GFLOPs = flopsPerImage * b / med / 1e9
	return nil
}

// Run measures c in this process: Warmup untimed iterations, then Iters
// timed ones, then the memory figures. Peak RSS covers the whole process
// so far; run one Config per process to attribute it to one model.
func Run(ctx context.Context, c Config) (*Result, error) {
	if err := c.checkIters(); err != nil {
		return nil, err
	}
	r, err := NewRunner(c)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	c = r.Config
	for range c.Warmup {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := r.Step(); err != nil {
			return nil, err
		}
	}
	res := &Result{Config: c, Impl: "gozoo", Threads: runtime.GOMAXPROCS(0), Kernels: kernels()}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range c.Iters {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := r.Step(); err != nil {
			return nil, err
		}
		res.Times = append(res.Times, time.Since(start).Seconds())
	}
	runtime.ReadMemStats(&m1)
	res.HeapInuse, res.GoSys = m1.HeapInuse, m1.Sys
	res.AllocPerStep = float64(m1.TotalAlloc-m0.TotalAlloc) / float64(c.Iters)
	res.GCPerStep = float64(m1.NumGC-m0.NumGC) / float64(c.Iters)
	if l := r.Loss(); c.Mode == Train && !math.IsNaN(l) && !math.IsInf(l, 0) {
		res.Loss = l // JSON has no NaN; a diverged loss is left out
	}
	res.PeakRSS, _ = PeakRSS()
	if err := res.Summarize(FLOPsPerImage(r.Arch, c.Mode)); err != nil {
		return nil, err
	}
	return res, nil
}

// kernels names the compute kernels gozoo's layers use.
func kernels() string { return layers.Kernels() }

// Combine pools repeated measurements of one configuration and
// implementation (the rounds of `zoo bench --rounds`): their timed
// iterations are summarised together; memory figures are the largest seen,
// and per-step figures the mean.
func Combine(rs ...*Result) (*Result, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("bench: nothing to combine")
	}
	out := *rs[0]
	out.Times = slices.Clone(out.Times)
	out.AllocPerStep *= float64(len(out.Times))
	out.GCPerStep *= float64(len(out.Times))
	for _, r := range rs[1:] {
		if r.Impl != out.Impl || r.Model != out.Model || r.Mode != out.Mode || r.Batch != out.Batch || r.Width != out.Width {
			return nil, fmt.Errorf("bench: cannot combine %s %s %s batch %d width %g with %s %s %s batch %d width %g",
				out.Impl, out.Model, out.Mode, out.Batch, out.Width, r.Impl, r.Model, r.Mode, r.Batch, r.Width)
		}
		out.Times = append(out.Times, r.Times...)
		out.Iters += r.Iters
		out.PeakRSS = max(out.PeakRSS, r.PeakRSS)
		out.HeapInuse, out.GoSys = max(out.HeapInuse, r.HeapInuse), max(out.GoSys, r.GoSys)
		out.AllocPerStep += r.AllocPerStep * float64(len(r.Times))
		out.GCPerStep += r.GCPerStep * float64(len(r.Times))
		out.Loss = r.Loss
	}
	out.AllocPerStep /= float64(len(out.Times))
	out.GCPerStep /= float64(len(out.Times))
	if err := out.Summarize(out.FLOPsPerImage); err != nil {
		return nil, err
	}
	return &out, nil
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gozoo/gozoo/bench"
	"github.com/gozoo/gozoo/zoo"
	"github.com/spf13/cobra"
)

// benchWorkerEnv is set in the environment of every measuring subprocess. The
// zoo binary needs only the hidden --worker flag; test binaries, which are
// not zoo, look for the variable in TestMain and run Main instead of tests.
const benchWorkerEnv = "GOZOO_BENCH_WORKER"

var defaultBenchModels = []string{"vgg11_bn", "vgg16_bn"}

type benchFlags struct {
	mode    string
	batches []int
	iters   int
	rounds  int
	warmup  int
	width   float64
	threads int
	json    bool
	vsTorch bool
	python  string
	quiet   bool
	worker  string // hidden: measure this JSON bench.Config and print the result
}

func newBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench [MODEL|PATTERN…] [--mode train|infer|both] [--batch N,…] [--iters N] [--warmup N] [--rounds N] [--width F] [--threads N] [--json] [--vs-torch [--python PATH]]",
		Short: "Time training steps and inference (img/s, ms/step, GFLOP/s, peak RSS), optionally against PyTorch",
		Long: `Bench times models at 32×32 with the CIFAR head (10 classes) on a fixed
synthetic batch: a training step is forward, cross-entropy, backward and an
SGD update (momentum 0.9, weight decay 5e-4); inference is one forward pass
of the evaluation graph. After --warmup untimed iterations it times --iters
iterations and prints img/s (median, min–max), the median ms/step, the
achieved GFLOP/s (2 FLOPs per multiply-accumulate; a training step counts 3
forward passes), peak RSS, the Go heap, allocation per step, the kernels in
use and GOMAXPROCS.

Each model, mode and batch size runs in a fresh process of this binary, so
peak RSS belongs to that one measurement; --rounds N repeats it N times and
pools the timed iterations (the median resists a noisy machine).
--vs-torch alternates each process with the same measurement in PyTorch
(bench/torch_bench.py, embedded in the binary, run by --python with
--threads intra-op threads) and prints the ratios gozoo/PyTorch of median
img/s and of peak RSS.

The defaults are vgg11_bn and vgg16_bn at batch 64, both modes. The same
code runs under "go test ./bench -bench ."`,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openDevice(cmd)
			if err != nil {
				return err
			}
			if b != nil {
				return runDeviceBench(cmd.Context(), stdout, stderr, args, f, b)
			}
			if f.worker != "" {
				return benchWorker(cmd.Context(), stdout, f.worker)
			}
			return runBench(cmd.Context(), stdout, stderr, args, f)
		},
	}
	fl := cmd.Flags()
	addDeviceFlag(fl)
	fl.StringVar(&f.mode, "mode", "both", "what to time: train, infer or both")
	fl.IntSliceVar(&f.batches, "batch", []int{64}, "batch sizes, comma-separated")
	fl.IntVar(&f.iters, "iters", 10, "timed iterations per measurement")
	fl.IntVar(&f.warmup, "warmup", 2, "untimed iterations before timing")
	fl.IntVar(&f.rounds, "rounds", 1, "measuring processes per model, mode and batch (alternating with PyTorch's under --vs-torch); their iterations are pooled")
	fl.Float64Var(&f.width, "width", 1, "width multiplier applied to every channel count")
	fl.IntVar(&f.threads, "threads", 0, "GOMAXPROCS of the measuring processes and PyTorch's thread count (default: this process's GOMAXPROCS)")
	fl.BoolVar(&f.json, "json", false, "print the results as JSON")
	fl.BoolVar(&f.vsTorch, "vs-torch", false, "also time the same models in PyTorch, alternating runs, and print the ratios")
	fl.StringVar(&f.python, "python", bench.DefaultPython, "with --vs-torch: a Python interpreter that has torch")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress lines on stderr")
	fl.StringVar(&f.worker, "worker", "", "internal: measure one JSON configuration in this process")
	_ = fl.MarkHidden("worker")
	return cmd
}

// benchPlan is the validated command line.
type benchPlan struct {
	models  []string
	modes   []bench.Mode
	threads int
}

func (f benchFlags) plan(args []string) (benchPlan, error) {
	var p benchPlan
	if len(args) == 0 {
		args = defaultBenchModels
	}
	for _, a := range args {
		if strings.ContainsAny(a, "*?[") {
			es, err := zoo.Match(a)
			if err != nil {
				return p, usageError{err}
			}
			if len(es) == 0 {
				return p, usageError{fmt.Errorf("no model matches %q; the models are %s", a, strings.Join(zoo.Names(), ", "))}
			}
			for _, e := range es {
				p.models = append(p.models, e.Name)
			}
			continue
		}
		e, err := zoo.Lookup(a, false)
		if err != nil {
			return p, usageError{err}
		}
		p.models = append(p.models, e.Name)
	}
	switch f.mode {
	case "both":
		p.modes = bench.Modes()
	default:
		m, err := bench.ParseMode(f.mode)
		if err != nil {
			return p, usageError{fmt.Errorf("--mode %q: use train, infer or both", f.mode)}
		}
		p.modes = []bench.Mode{m}
	}
	if len(f.batches) == 0 {
		return p, usageError{errors.New("--batch: give at least one batch size")}
	}
	for _, b := range f.batches {
		if b < 1 {
			return p, usageError{fmt.Errorf("--batch %d: batch sizes must be at least 1", b)}
		}
	}
	switch {
	case f.iters < 1:
		return p, usageError{fmt.Errorf("--iters %d: time at least 1 iteration", f.iters)}
	case f.warmup < 0:
		return p, usageError{fmt.Errorf("--warmup %d: must be 0 or more", f.warmup)}
	case f.rounds < 1:
		return p, usageError{fmt.Errorf("--rounds %d: run at least 1 round", f.rounds)}
	case !(f.width > 0) || math.IsInf(f.width, 0):
		return p, usageError{fmt.Errorf("--width %g: the width multiplier must be positive", f.width)}
	case f.threads < 0:
		return p, usageError{fmt.Errorf("--threads %d: must be positive (0: this process's GOMAXPROCS)", f.threads)}
	}
	p.threads = f.threads
	if p.threads == 0 {
		p.threads = runtime.GOMAXPROCS(0)
	}
	return p, nil
}

// benchRatio compares gozoo with PyTorch on one measurement.
type benchRatio struct {
	Model   string     `json:"model"`
	Mode    bench.Mode `json:"mode"`
	Batch   int        `json:"batch"`
	ImgPerS float64    `json:"img_per_s"`      // gozoo / PyTorch median img/s: > 1 is faster
	PeakRSS float64    `json:"peak_rss"`       // gozoo / PyTorch peak RSS: > 1 is more memory
	Torch   string     `json:"torch_kernels"`  // PyTorch's kernels
	Gozoo   string     `json:"gozoo_kernels"`  // ours
	Threads int        `json:"threads"`        // both sides
	Note    string     `json:"note,omitempty"` // e.g. a thread-count mismatch
}

// benchReport is what --json prints.
type benchReport struct {
	Date string `json:"date"`
	Go   string `json:"go"`
	OS   string `json:"os"`
	CPUs int    `json:"cpus"`
	// Load is the 1-minute load average before and after (Linux), a
	// warning sign on a shared machine: above the CPU count, runs compete.
	Load    [2]float64      `json:"load_avg"`
	Results []*bench.Result `json:"results"`
	Ratios  []benchRatio    `json:"ratios,omitempty"`
	// TorchError says why there is no PyTorch comparison, with --vs-torch.
	TorchError string `json:"torch_error,omitempty"`
}

func runBench(ctx context.Context, stdout, stderr io.Writer, args []string, f benchFlags) error {
	p, err := f.plan(args)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this program to run the measurements: %w", err)
	}
	progress := func(format string, a ...any) {
		if !f.quiet {
			fmt.Fprintf(stderr, "zoo bench: "+format+"\n", a...)
		}
	}
	rep := benchReport{Date: time.Now().UTC().Format(time.RFC3339), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU()}
	rep.Load[0] = loadAvg()
	torch := f.vsTorch
	if torch {
		v, err := bench.CheckTorch(ctx, f.python)
		if err != nil {
			torch = false
			rep.TorchError = fmt.Sprintf("%v; pass --python PATH to a Python that has torch", err)
			fmt.Fprintf(stderr, "zoo bench: no PyTorch comparison, gozoo only: %s\n", rep.TorchError)
		} else {
			progress("PyTorch %s from %s", v, f.python)
		}
	}
	for _, model := range p.models {
		for _, mode := range p.modes {
			for _, batch := range f.batches {
				c := bench.Config{Model: model, Mode: mode, Batch: batch, Width: f.width, Warmup: f.warmup, Iters: f.iters}
				var ours, theirs []*bench.Result
				for round := 1; round <= f.rounds; round++ {
					o, err := benchChild(ctx, exe, c, p.threads, stderr)
					if err != nil {
						return err
					}
					ours = append(ours, o)
					progress("%s %s batch %d, round %d/%d: gozoo %.1f img/s", model, mode, batch, round, f.rounds, o.ImgPerSec.Median)
					if !torch {
						continue
					}
					th, err := bench.RunTorch(ctx, f.python, c, p.threads)
					if err != nil {
						if ctx.Err() != nil {
							return ctx.Err()
						}
						fmt.Fprintf(stderr, "zoo bench: PyTorch %s %s batch %d: %v\n", model, mode, batch, err)
						continue
					}
					theirs = append(theirs, th)
					progress("%s %s batch %d, round %d/%d: PyTorch %.1f img/s", model, mode, batch, round, f.rounds, th.ImgPerSec.Median)
				}
				o, err := bench.Combine(ours...)
				if err != nil {
					return err
				}
				rep.Results = append(rep.Results, o)
				if len(theirs) > 0 {
					th, err := bench.Combine(theirs...)
					if err != nil {
						return err
					}
					rep.Results = append(rep.Results, th)
					rep.Ratios = append(rep.Ratios, ratio(o, th))
				}
			}
		}
	}
	rep.Load[1] = loadAvg()
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printBench(stdout, rep, f)
}

func ratio(ours, theirs *bench.Result) benchRatio {
	r := benchRatio{Model: ours.Model, Mode: ours.Mode, Batch: ours.Batch, Gozoo: ours.Kernels, Torch: theirs.Kernels, Threads: ours.Threads,
		ImgPerS: ours.ImgPerSec.Median / theirs.ImgPerSec.Median}
	if theirs.PeakRSS > 0 && ours.PeakRSS > 0 {
		r.PeakRSS = float64(ours.PeakRSS) / float64(theirs.PeakRSS)
	}
	if ours.Threads != theirs.Threads {
		r.Note = fmt.Sprintf("threads differ: gozoo %d, PyTorch %d", ours.Threads, theirs.Threads)
	}
	return r
}

// benchChild measures c in a fresh process of this binary with GOMAXPROCS
// threads, so that its peak RSS is its own.
func benchChild(ctx context.Context, exe string, c bench.Config, threads int, stderr io.Writer) (*bench.Result, error) {
	cfg, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, "bench", "--worker", string(cfg))
	cmd.Env = append(os.Environ(), benchWorkerEnv+"=1", "GOMAXPROCS="+strconv.Itoa(threads))
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("bench: %s %s batch %d: measuring process: %w", c.Model, c.Mode, c.Batch, err)
	}
	var r bench.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("bench: %s %s batch %d: measuring process printed no result: %w", c.Model, c.Mode, c.Batch, err)
	}
	return &r, nil
}

// benchWorker is the measuring process: one configuration, JSON out.
func benchWorker(ctx context.Context, stdout io.Writer, cfg string) error {
	var c bench.Config
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		return usageError{fmt.Errorf("--worker: bad configuration %q: %w", cfg, err)}
	}
	r, err := bench.Run(ctx, c)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(r)
}

func printBench(out io.Writer, rep benchReport, f benchFlags) error {
	fmt.Fprintf(out, "zoo bench: 32×32 input, width %g, %d round(s) of %d timed iterations after %d warm-up; %s, %s, %d CPUs; %s",
		f.width, f.rounds, f.iters, f.warmup, rep.Go, rep.OS, rep.CPUs, rep.Date)
	if rep.Load != [2]float64{} {
		fmt.Fprintf(out, "; load average %.2f before, %.2f after", rep.Load[0], rep.Load[1])
	}
	fmt.Fprint(out, "\n\n")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "model\tmode\tbatch\timpl\timg/s median (min–max)\tms/step\tGFLOP/s\tpeak RSS\tGo heap (sys)\talloc/step\tkernels\tGOMAXPROCS")
	for _, r := range rep.Results {
		heap, alloc, rss := "–", "–", "?"
		if r.PeakRSS > 0 {
			rss = mib(float64(r.PeakRSS))
		}
		if r.Impl == "gozoo" {
			heap = fmt.Sprintf("%s (%s)", mib(float64(r.HeapInuse)), mib(float64(r.GoSys)))
			alloc = mib(r.AllocPerStep)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%.1f (%.1f–%.1f)\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%d\n",
			r.Model, r.Mode, r.Batch, r.Impl, r.ImgPerSec.Median, r.ImgPerSec.Min, r.ImgPerSec.Max,
			r.MsPerStep, r.GFLOPs, rss, heap, alloc, r.Kernels, r.Threads)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if rep.TorchError != "" {
		fmt.Fprintf(out, "\nno PyTorch comparison: %s\n", rep.TorchError)
	}
	if len(rep.Ratios) == 0 {
		return nil
	}
	fmt.Fprintf(out, "\ngozoo / PyTorch (img/s above 1: gozoo faster; peak RSS below 1: gozoo smaller)\n")
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "model\tmode\tbatch\timg/s ratio\tpeak RSS ratio\tthreads\t")
	for _, r := range rep.Ratios {
		fmt.Fprintf(w, "%s\t%s\t%d\t%.2f×\t%.2f×\t%d\t%s\n", r.Model, r.Mode, r.Batch, r.ImgPerS, r.PeakRSS, r.Threads, r.Note)
	}
	return w.Flush()
}

// loadAvg is the 1-minute load average from /proc/loadavg, 0 where there
// is none.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// mib formats bytes as MiB, with a decimal below 10 MiB.
func mib(b float64) string {
	if m := b / (1 << 20); m < 10 {
		return fmt.Sprintf("%.1f MiB", m)
	}
	return fmt.Sprintf("%.0f MiB", b/(1<<20))
}

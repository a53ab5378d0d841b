package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gozoo/gozoo/datasets/cifar10"
	"github.com/gozoo/gozoo/internal/cuda/nn"
	"github.com/gozoo/gozoo/train"
	"github.com/gozoo/gozoo/train/tensorboard"
	"github.com/gozoo/gozoo/zoo"
	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitError carries a specific exit status (130 after an interrupt).
type exitError struct {
	error
	code int
}

func (e exitError) Unwrap() error { return e.error }

func newTrainCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		bn, quiet          bool
		noTensorBoard      bool
		configPath, resume string
		noAugment          bool
	)
	var fl trainFlags
	cmd := &cobra.Command{
		Use:   "train MODEL [--bn] [flags]",
		Short: "Train a model on CIFAR-10/100, with checkpoints you can resume",
		Long: `Train a model on CIFAR-10 or CIFAR-100.

The recipe starts from the defaults for the model (SGD, momentum 0.9, weight
decay 5e-4, batch 64, 30 epochs of cosine annealing, lr 0.1 with batch norm
and 0.01 without), then a --config JSON file, then the flags given.
Checkpoints go to --out after every epoch; Ctrl-C saves one and stops;
--resume DIR continues exactly where a run stopped, with the recipe saved in
its checkpoint (only --epochs, --data, --download and --workers may change).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if resume == "" && len(args) != 1 {
				return usageError{fmt.Errorf("train: name a model (zoo models lists them), or pass --resume DIR")}
			}
			if len(args) > 1 {
				return usageError{fmt.Errorf("train: one model at a time, got %v", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dev, err := openDevice(cmd)
			if err != nil {
				return err
			}
			var cfg train.Config
			var loaded *train.Loaded
			if resume != "" {
				var err error
				if loaded, err = train.LoadCheckpoint(resume); err != nil {
					return err
				}
				if err := json.Unmarshal(loaded.Checkpoint.Config, &cfg); err != nil {
					return fmt.Errorf("train: checkpoint %s: config: %w", loaded.Dir, err)
				}
				// A resumed run keeps its recipe; only these may change.
				for _, name := range []string{"epochs", "data", "download", "workers"} {
					if cmd.Flags().Changed(name) {
						fl.overrides()[name](&cfg)
					}
				}
				cfg.SaveDir = filepath.Dir(loaded.Dir)
			} else {
				e, err := zoo.Lookup(args[0], bn)
				if err != nil {
					return usageError{err}
				}
				cfg = train.DefaultConfig(e.Name, strings.HasSuffix(e.Name, "_bn"))
				if configPath != "" {
					if cfg, err = train.ReadConfig(configPath, cfg); err != nil {
						return err
					}
					// The file may name the model; the argument wins.
					cfg.Model, cfg.BatchNorm = e.Name, strings.HasSuffix(e.Name, "_bn")
				}
				set := cmd.Flags().Changed
				for name, apply := range fl.overrides() {
					if set(name) {
						apply(&cfg)
					}
				}
				if set("dataset") && !set("classes") && fl.dataset == "cifar100" {
					cfg.NumClasses = 100
				}
				if noAugment {
					cfg.Augment = false
				}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if resume == "" {
				dir, err := freshRunDir(cfg.SaveDir, cfg.SaveDir == train.DefaultConfig(cfg.Model, cfg.BatchNorm).SaveDir)
				if err != nil {
					return err
				}
				cfg.SaveDir = dir
			}
			return runTraining(cmd.Context(), cfg, loaded, runOptions{quiet: quiet, tensorBoard: !noTensorBoard, device: dev}, stdout, stderr)
		},
	}
	f := cmd.Flags()
	addDeviceFlag(f)
	fl.addTo(f)
	f.BoolVar(&bn, "bn", false, "with batch normalisation (vgg16 --bn is vgg16_bn)")
	f.StringVar(&configPath, "config", "", "JSON file of settings (PyTorch recipe names: learning_rate, batch_size, …); flags override it")
	f.StringVar(&resume, "resume", "", "continue the run whose checkpoints are in DIR (or from one checkpoint folder)")
	f.BoolVar(&noAugment, "no-augment", false, "no random crop and flip")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	f.BoolVar(&noTensorBoard, "no-tensorboard", false, "no TensorBoard event files (by default in OUT/tensorboard)")
	return cmd
}

// trainFlags holds the zoo train flags that set a train.Config field.
type trainFlags struct {
	data, dataset, optimizer, schedule, out, head        string
	epochs, batch, warmup, classes, accum, keep, workers int
	lr, width, momentum, wd, smoothing                   float64
	seed                                                 uint64
	freeze                                               []string
	download, skipChecksum                               bool
}

// addTo defines the flags on f, with the defaults of train.DefaultConfig.
func (fl *trainFlags) addTo(f *pflag.FlagSet) {
	f.StringVar(&fl.data, "data", "", `CIFAR folder or tarball, "sample" for the embedded sample (default: the cache, $ZOO_DATA)`)
	f.BoolVar(&fl.download, "download", false, "download the official data set into the cache when it is missing")
	f.BoolVar(&fl.skipChecksum, "skip-checksum", false, "accept data whose files differ from the official release (custom data)")
	f.StringVar(&fl.dataset, "dataset", "cifar10", "cifar10 or cifar100")
	f.IntVar(&fl.epochs, "epochs", 30, "epochs")
	f.IntVar(&fl.batch, "batch-size", 64, "images per batch")
	f.Float64Var(&fl.lr, "lr", 0, "learning rate (default 0.1 with batch norm, 0.01 without)")
	f.StringVar(&fl.optimizer, "optimizer", "sgd", "sgd, adam or adamw")
	f.StringVar(&fl.schedule, "schedule", "cosine", "learning-rate schedule: "+strings.Join(train.ScheduleNames(), ", "))
	f.IntVar(&fl.warmup, "warmup", 0, "epochs of linear warmup before the schedule")
	f.StringVar(&fl.out, "out", "", "folder for checkpoints and logs (default runs/MODEL)")
	f.Uint64Var(&fl.seed, "seed", 1, "seed of the weights, the shuffling, the augmentation and dropout")
	f.Float64Var(&fl.width, "width", 1, "width multiplier of every channel count")
	f.Float64Var(&fl.momentum, "momentum", 0.9, "SGD momentum")
	f.Float64Var(&fl.wd, "weight-decay", 5e-4, "weight decay")
	f.Float64Var(&fl.smoothing, "label-smoothing", 0, "label smoothing of the cross-entropy")
	f.IntVar(&fl.accum, "grad-accum", 1, "batches whose gradients are summed before each optimizer step")
	f.IntVar(&fl.keep, "keep", 3, "checkpoints kept besides the best")
	f.IntVar(&fl.workers, "workers", 2, "goroutines preparing batches")
	f.IntVar(&fl.classes, "classes", 10, "number of classes")
	f.StringVar(&fl.head, "head", "cifar", "classifier head: cifar or imagenet")
	f.StringSliceVar(&fl.freeze, "freeze", nil, "parameters (names or prefixes such as features.) that do not train")
}

// overrides maps each flag of fl to the assignment it makes to a
// configuration when it is given.
func (fl *trainFlags) overrides() map[string]func(*train.Config) {
	return map[string]func(*train.Config){
		"data":            func(c *train.Config) { c.Data = fl.data },
		"download":        func(c *train.Config) { c.Download = fl.download },
		"skip-checksum":   func(c *train.Config) { c.SkipChecksum = fl.skipChecksum },
		"dataset":         func(c *train.Config) { c.Dataset = fl.dataset },
		"epochs":          func(c *train.Config) { c.Epochs = fl.epochs },
		"batch-size":      func(c *train.Config) { c.BatchSize = fl.batch },
		"lr":              func(c *train.Config) { c.LearningRate = fl.lr },
		"optimizer":       func(c *train.Config) { c.Optimizer = fl.optimizer },
		"schedule":        func(c *train.Config) { c.Schedule = fl.schedule },
		"warmup":          func(c *train.Config) { c.WarmupEpochs = fl.warmup },
		"out":             func(c *train.Config) { c.SaveDir = fl.out },
		"seed":            func(c *train.Config) { c.Seed = fl.seed },
		"width":           func(c *train.Config) { c.Width = fl.width },
		"momentum":        func(c *train.Config) { c.Momentum = fl.momentum },
		"weight-decay":    func(c *train.Config) { c.WeightDecay = fl.wd },
		"label-smoothing": func(c *train.Config) { c.LabelSmoothing = fl.smoothing },
		"grad-accum":      func(c *train.Config) { c.GradAccum = fl.accum },
		"keep":            func(c *train.Config) { c.KeepLast = fl.keep },
		"workers":         func(c *train.Config) { c.Workers = fl.workers },
		"classes":         func(c *train.Config) { c.NumClasses = fl.classes },
		"head":            func(c *train.Config) { c.Head = fl.head },
		"freeze":          func(c *train.Config) { c.Freeze = fl.freeze },
	}
}

// freshRunDir returns the folder a new run writes to. A run never writes
// into another run's folder: when dir already holds one, the default folder
// becomes dir-2, dir-3, …, and a folder the user chose is an error.
func freshRunDir(dir string, isDefault bool) (string, error) {
	holdsRun := func(d string) bool {
		for _, f := range []string{"latest", "metrics.csv"} {
			if _, err := os.Stat(filepath.Join(d, f)); err == nil {
				return true
			}
		}
		return false
	}
	if !holdsRun(dir) {
		return dir, nil
	}
	if !isDefault {
		return "", fmt.Errorf("train: %s already holds a run: continue it with --resume %s, or choose another --out", dir, dir)
	}
	for i := 2; ; i++ {
		if d := fmt.Sprintf("%s-%d", dir, i); !holdsRun(d) {
			return d, nil
		}
	}
}

// loaderData adapts a cifar10.Loader to train.Data.
type loaderData struct{ l *cifar10.Loader }

func (d loaderData) NumBatches() int { return d.l.NumBatches() }

func (d loaderData) Epoch(ctx context.Context, epoch int) iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		for b, err := range d.l.Epoch(ctx, epoch) {
			if !yield(train.Batch{Images: b.Images, Labels: b.Labels}, err) {
				return
			}
		}
	}
}

// loadData loads both splits the configuration names.
func loadData(cfg train.Config, stderr io.Writer, quiet bool) (trainSet, testSet *cifar10.Dataset, err error) {
	opts := cifar10.Options{Dataset: cfg.Dataset, Download: cfg.Download, SkipChecksum: cfg.SkipChecksum}
	if !quiet {
		opts.Progress = stderr
	}
	if trainSet, err = cifar10.Load(cfg.Data, cifar10.Train, opts); err != nil {
		return nil, nil, err
	}
	if testSet, err = cifar10.Load(cfg.Data, cifar10.Test, opts); err != nil {
		return nil, nil, err
	}
	if len(trainSet.Classes) != cfg.NumClasses {
		return nil, nil, fmt.Errorf("train: the data has %d classes and the model %d: pass --classes %d", len(trainSet.Classes), cfg.NumClasses, len(trainSet.Classes))
	}
	return trainSet, testSet, nil
}

// buildModel builds the configured model.
func buildModel(cfg train.Config) (*vgg.Model, error) {
	return vgg.New(cfg.Model, vgg.Options{BatchNorm: cfg.BatchNorm, WidthMult: cfg.Width, Classes: cfg.NumClasses,
		Head: vgg.Head(cfg.Head), Dropout: dropoutOpt(cfg.DropoutRate), Seed: cfg.Seed})
}

func netOptions(cfg train.Config) vgg.NetOptions {
	return vgg.NetOptions{LabelSmoothing: cfg.LabelSmoothing, Freeze: cfg.Freeze}
}

func dropoutOpt(p float64) float64 {
	if p == 0 {
		return vgg.NoDropout
	}
	return p
}

// newTrainer assembles the loop from a configuration.
func newTrainer(cfg train.Config, trainSet, testSet *cifar10.Dataset) (*train.Trainer, *vgg.Net, error) {
	m, err := buildModel(cfg)
	if err != nil {
		return nil, nil, err
	}
	net, err := m.NewNet(netOptions(cfg))
	if err != nil {
		return nil, nil, err
	}
	trainL, err := cifar10.NewLoader(trainSet, cifar10.LoaderConfig{BatchSize: cfg.BatchSize, Shuffle: true, Augment: cfg.Augment, Seed: cfg.Seed, Mean: cfg.Mean, Std: cfg.Std, Workers: cfg.Workers})
	if err != nil {
		return nil, nil, err
	}
	testL, err := cifar10.NewLoader(testSet, cifar10.LoaderConfig{BatchSize: max(cfg.BatchSize, 100), Mean: cfg.Mean, Std: cfg.Std, Workers: cfg.Workers})
	if err != nil {
		return nil, nil, err
	}
	opt, err := cfg.NewOptimizer()
	if err != nil {
		return nil, nil, err
	}
	stepsPerEpoch := (trainL.NumBatches() + cfg.GradAccum - 1) / cfg.GradAccum
	sched, perStep, err := cfg.NewSchedule(stepsPerEpoch)
	if err != nil {
		return nil, nil, err
	}
	return &train.Trainer{Net: net, Opt: opt, Sched: sched, PerStep: perStep, Train: loaderData{trainL}, Test: loaderData{testL},
		Epochs: cfg.Epochs, Accumulate: cfg.GradAccum}, net, nil
}

// runOptions are the settings of a run that are not part of its
// configuration.
type runOptions struct {
	quiet       bool        // no progress bar
	tensorBoard bool        // event files in SaveDir/tensorboard
	device      *nn.Backend // --device cuda: the GPU; nil for the CPU
}

func runTraining(ctx context.Context, cfg train.Config, loaded *train.Loaded, opts runOptions, stdout, stderr io.Writer) error {
	trainSet, testSet, err := loadData(cfg, stderr, opts.quiet)
	if err != nil {
		return err
	}
	cfg.ClassNames = trainSet.Classes
	t, net, err := newTrainer(cfg, trainSet, testSet)
	if err != nil {
		return err
	}
	defer net.Close()
	if opts.device != nil {
		if err := trainOnDevice(t, net, cfg, opts.device); err != nil {
			return err
		}
	}
	if loaded != nil {
		if err := t.Restore(loaded); err != nil {
			return err
		}
	}
	js, _ := json.MarshalIndent(cfg, "", "  ")
	fmt.Fprintf(stderr, "config:\n%s\n", js)
	if loaded != nil {
		fmt.Fprintf(stdout, "resuming %s at epoch %d, batch %d (step %d)\n", loaded.Dir, t.Progress.Epoch+1, t.Progress.BatchInEpoch, t.Progress.Step)
	}
	fmt.Fprintf(stdout, "training %s (%d parameters) on %s: %d training and %d test images, %d epochs\n",
		net.Model.Name, net.Model.Arch.Params(), trainSet.Name, trainSet.Len(), testSet.Len(), cfg.Epochs)
	ck := &train.Checkpointer{Dir: cfg.SaveDir, Keep: cfg.KeepLast, Config: cfg}
	if loaded != nil {
		ck.LastTest = loaded.Checkpoint.Test
	}
	mon := train.NewMonitor()
	t.Hooks = []any{&train.MetricsLog{Dir: cfg.SaveDir, StepEvery: 50, Monitor: mon}, &train.Curves{Dir: cfg.SaveDir}, &epochPrinter{w: stdout}, ck}
	if opts.tensorBoard {
		tb, err := tensorboard.Create(filepath.Join(cfg.SaveDir, "tensorboard"))
		if err != nil {
			return err
		}
		defer tb.Close()
		t.Hooks = append(t.Hooks, &tensorboard.Hook{W: tb, Mean: cfg.Mean, Std: cfg.Std, Monitor: mon})
		fmt.Fprintf(stderr, "TensorBoard: tensorboard --logdir %s\n", filepath.Dir(tb.Path()))
	}
	if !opts.quiet {
		t.Hooks = append([]any{&progressHook{w: stderr}}, t.Hooks...)
	}
	err = t.Run(ctx)
	if errors.Is(err, train.ErrInterrupted) {
		dir, serr := ck.Save(t, false)
		if serr != nil {
			return fmt.Errorf("interrupted, and the checkpoint failed: %w", serr)
		}
		return exitError{fmt.Errorf("interrupted at epoch %d, batch %d; checkpoint saved in %s; continue with: zoo train --resume %s", t.Progress.Epoch+1, t.Progress.BatchInEpoch, dir, cfg.SaveDir), 130}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "done: best test top-1 %.2f%% at epoch %d; checkpoints in %s\n", 100*t.Progress.Best, t.Progress.BestEpoch, cfg.SaveDir)
	return nil
}

// epochPrinter prints one line per epoch on stdout.
type epochPrinter struct{ w io.Writer }

func (p *epochPrinter) AfterEpoch(t *train.Trainer, e train.EpochInfo) error {
	line := fmt.Sprintf("epoch %d/%d  lr %.4g  train loss %.4f top-1 %.2f%%", e.Epoch+1, t.Epochs, e.LR, e.TrainLoss, 100*e.TrainTop1)
	if e.Test != nil {
		line += fmt.Sprintf("  test loss %.4f top-1 %.2f%% top-5 %.2f%%", e.Test.Loss, 100*e.Test.Top1, 100*e.Test.Top5)
	}
	line += fmt.Sprintf("  %.0f img/s  %s", e.ImagesPerSec, e.Duration.Round(time.Second))
	if e.Best {
		line += "  *"
	}
	_, err := fmt.Fprintln(p.w, line)
	return err
}

// progressHook draws a progress bar per epoch on stderr.
type progressHook struct {
	w   io.Writer
	bar *progressbar.ProgressBar
	ep  int
}

func (p *progressHook) AfterStep(t *train.Trainer, s train.StepInfo) error {
	if p.bar == nil || p.ep != s.Epoch {
		p.ep = s.Epoch
		p.bar = progressbar.NewOptions(s.NumBatches, progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", s.Epoch+1, t.Epochs)),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }))
	}
	r := s.Run
	p.bar.Describe(fmt.Sprintf("epoch %d/%d loss %.3f acc %.1f%%", s.Epoch+1, t.Epochs, r.LossSum/float64(max(r.Images, 1)), 100*float64(r.Top1)/float64(max(r.Images, 1))))
	return p.bar.Set(s.Batch)
}

package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gozoo/gozoo/datasets/cifar10"
	"github.com/gozoo/gozoo/train"
	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/gozoo/gozoo/zoo/vgg/onnx"
	"github.com/spf13/cobra"
)

// imageNetMean and imageNetStd are the normalization of torchvision's
// ImageNet weights.
var (
	imageNetMean = []float64{0.485, 0.456, 0.406}
	imageNetStd  = []float64{0.229, 0.224, 0.225}
)

func newExportCmd(stdout io.Writer) *cobra.Command {
	var (
		f                           archFlags
		format, model, weights, out string
		checkpoint                  string
		best                        bool
		seed                        uint64
		mean, std                   []float64
	)
	cmd := &cobra.Command{
		Use:   "export --format onnx (--model NAME [--weights FILE] | --checkpoint DIR) -o FILE",
		Short: "Write a model as ONNX (dynamic batch, input \"input\", output \"logits\"), for onnxruntime and other runtimes",
		Long: `Write a model as an ONNX file (IR version 8, opset 17) in evaluation mode.

The input "input" is float32 (batch, C, H, W), any batch size; the output is
"logits" (batch, classes), or "features" with --head none. Weights are
initializers with torchvision's state_dict names. The input normalization
is recorded in the metadata as gozoo.mean and gozoo.std: by default CIFAR-10's
with the cifar head and ImageNet's with the imagenet head; --mean and --std
override it.

With --checkpoint DIR, the model, its weights and its normalization come
from a checkpoint written by zoo train. With --model NAME (and the
architecture flags) the weights are --weights FILE, a safetensors state dict
with torchvision's names, or fresh weights seeded by --seed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			set := cmd.Flags().Changed
			switch {
			case format != "onnx":
				return usageError{fmt.Errorf("--format %q: the only format is onnx", format)}
			case out == "":
				return usageError{fmt.Errorf("no output file: pass -o FILE, e.g. -o model.onnx")}
			case checkpoint != "":
				for _, name := range []string{"model", "weights", "seed", "bn", "head", "classes", "input", "width", "pool"} {
					if set(name) {
						return usageError{fmt.Errorf("--checkpoint holds the model, its architecture and weights: give it without --%s", name)}
					}
				}
			case set("best"):
				return usageError{fmt.Errorf("--best picks a checkpoint of a run: give it with --checkpoint DIR")}
			case model == "":
				return usageError{fmt.Errorf("no model: pass --model NAME (with --weights FILE or --seed N) or --checkpoint DIR")}
			case weights != "" && set("seed"):
				return usageError{fmt.Errorf("--seed chooses fresh weights and --weights loads them: give one")}
			}
			var (
				m   *vgg.Model
				eo  onnx.ExportOptions
				err error
			)
			if checkpoint != "" {
				m, eo, err = checkpointModel(checkpoint, best)
			} else {
				m, eo, err = flagsModel(&f, model, weights, seed)
			}
			if err != nil {
				return err
			}
			if set("mean") || set("std") {
				eo.Mean, eo.Std = mean, std
			}
			n, err := writeAtomic(out, func(w io.Writer) error { return onnx.Export(w, m, eo) })
			if err != nil {
				return err
			}
			outName := onnx.LogitsName
			if m.Opts.Head == vgg.HeadNone {
				outName = onnx.FeaturesName
			}
			o := m.Opts
			fmt.Fprintf(stdout, "wrote %s (%d bytes): %s, ONNX IR %d opset %d, input %q (batch, %d, %d, %d), output %q (batch, %s)\n",
				out, n, m.Name, onnx.IRVersion, onnx.Opset, onnx.InputName, o.InChannels, o.Height, o.Width, outName, strings.Trim(shape(m.OutputShape()), "()"))
			if eo.Mean != nil {
				fmt.Fprintf(stdout, "normalization recorded: mean %v, std %v\n", eo.Mean, eo.Std)
			} else {
				fmt.Fprintln(stdout, "no normalization recorded (pass --mean and --std)")
			}
			return nil
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&format, "format", "onnx", "output format: onnx")
	fl.StringVarP(&out, "output", "o", "", "the file to write, e.g. model.onnx")
	fl.StringVar(&model, "model", "", "model name, vgg11 … vgg19_bn")
	fl.StringVar(&weights, "weights", "", "safetensors weights with torchvision's names (as zoo train or torchvision save them)")
	fl.StringVar(&checkpoint, "checkpoint", "", "a run folder written by zoo train (its latest checkpoint) or one of its ckpt-* folders")
	fl.BoolVar(&best, "best", false, "with --checkpoint: the run's best checkpoint instead of its latest")
	fl.Uint64Var(&seed, "seed", 0, "seed of fresh weights, without --weights")
	fl.Float64SliceVar(&mean, "mean", nil, "per-channel input mean to record, e.g. 0.485,0.456,0.406")
	fl.Float64SliceVar(&std, "std", nil, "per-channel input std to record, e.g. 0.229,0.224,0.225")
	return cmd
}

// flagsModel builds the model the flags describe, with the weights of the
// safetensors file weights or, without one, fresh weights from seed.
func flagsModel(f *archFlags, model, weights string, seed uint64) (*vgg.Model, onnx.ExportOptions, error) {
	name, opts, err := f.options(model)
	if err != nil {
		return nil, onnx.ExportOptions{}, err
	}
	opts.Seed = seed
	m, err := vgg.New(name, opts)
	if err != nil {
		return nil, onnx.ExportOptions{}, err
	}
	if weights != "" {
		if err := m.LoadWeights(weights, vgg.LoadOptions{}); err != nil {
			return nil, onnx.ExportOptions{}, err
		}
	}
	var eo onnx.ExportOptions
	eo.Mean, eo.Std = defaultNormalization(m.Opts)
	return m, eo, nil
}

// checkpointModel rebuilds a checkpoint's model from its configuration and
// weights; the normalization is the one it was trained with.
func checkpointModel(path string, best bool) (*vgg.Model, onnx.ExportOptions, error) {
	var eo onnx.ExportOptions
	dir, err := train.ResolveCheckpoint(path, best)
	if err != nil {
		return nil, eo, err
	}
	l, err := train.LoadCheckpoint(dir)
	if err != nil {
		return nil, eo, err
	}
	var cfg train.Config
	if err := json.Unmarshal(l.Checkpoint.Config, &cfg); err != nil {
		return nil, eo, fmt.Errorf("export: checkpoint %s: config: %w", l.Dir, err)
	}
	m, err := buildModel(cfg)
	if err != nil {
		return nil, eo, err
	}
	if err := m.LoadState(l.Weights, vgg.LoadOptions{}); err != nil {
		return nil, eo, fmt.Errorf("export: checkpoint %s: %w", l.Dir, err)
	}
	mean, std := cfg.Mean, cfg.Std
	if mean == [3]float32{} && std == [3]float32{} { // the loader's default
		mean, std = cifar10.DefaultMean, cifar10.DefaultStd
	}
	for c := range 3 {
		eo.Mean = append(eo.Mean, shortest(mean[c]))
		eo.Std = append(eo.Std, shortest(std[c]))
	}
	return m, eo, nil
}

// defaultNormalization is the normalization a model of these options is
// usually trained with: CIFAR-10's for the cifar head, ImageNet's for the
// imagenet head, none otherwise.
func defaultNormalization(o vgg.Options) (mean, std []float64) {
	if o.InChannels != 3 {
		return nil, nil
	}
	switch o.Head {
	case vgg.HeadCIFAR:
		for c := range 3 {
			mean = append(mean, shortest(cifar10.DefaultMean[c]))
			std = append(std, shortest(cifar10.DefaultStd[c]))
		}
		return mean, std
	case vgg.HeadImageNet:
		return imageNetMean, imageNetStd
	}
	return nil, nil
}

// shortest is the float64 written as v's shortest float32 decimal: 0.4914,
// not 0.49140000343322754.
func shortest(v float32) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
	return f
}

// writeAtomic writes path through write into a temporary file in the same
// folder, then renames it over path, so path is either the old file or the
// complete new one. It returns the number of bytes written.
func writeAtomic(path string, write func(io.Writer) error) (n int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	cw := &countingWriter{w: tmp}
	if err := write(cw); err != nil {
		return 0, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return cw.n, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

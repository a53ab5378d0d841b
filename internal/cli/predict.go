package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"text/tabwriter"

	"github.com/gozoo/gozoo/datasets/cifar10"
	"github.com/gozoo/gozoo/internal/cuda/nn"
	"github.com/gozoo/gozoo/predict"
	"github.com/gozoo/gozoo/train"
	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/spf13/cobra"
)

// modelSource is where predict, features and serve take their model from: a
// checkpoint written by zoo train, or --model with --weights.
type modelSource struct {
	checkpoint      string
	best            bool
	model, weights  string
	arch            archFlags
	maxBatch        int
	batchFlag       string // the flag setting maxBatch; "" means batch-size
	defaultMaxBatch int
}

func (s *modelSource) register(cmd *cobra.Command) {
	s.arch.register(cmd)
	f := cmd.Flags()
	f.StringVar(&s.checkpoint, "checkpoint", "", "a run folder written by zoo train (its latest checkpoint) or one of its ckpt-* folders")
	f.BoolVar(&s.best, "best", false, "with --checkpoint: the run's best checkpoint instead of its latest")
	f.StringVar(&s.model, "model", "", "model name, vgg11 … vgg19_bn (with --weights)")
	f.StringVar(&s.weights, "weights", "", "safetensors weights with torchvision's names (with --model and the architecture flags)")
	if s.batchFlag == "" {
		s.batchFlag = "batch-size"
	}
	f.IntVar(&s.maxBatch, s.batchFlag, s.defaultMaxBatch, "most images per forward pass")
}

// predictor loads the model and returns it ready to run, with a one-line
// description of where it came from.
func (s *modelSource) predictor(cmd *cobra.Command) (*predict.Predictor, string, error) {
	set := cmd.Flags().Changed
	switch {
	case s.checkpoint != "":
		for _, name := range []string{"model", "weights", "bn", "head", "classes", "input", "width", "pool"} {
			if set(name) {
				return nil, "", usageError{fmt.Errorf("--checkpoint holds the model, its architecture and weights: give it without --%s", name)}
			}
		}
	case set("best"):
		return nil, "", usageError{fmt.Errorf("--best picks a checkpoint of a run: give it with --checkpoint DIR")}
	case s.model == "" || s.weights == "":
		return nil, "", usageError{fmt.Errorf("no model: pass --checkpoint DIR (a run of zoo train) or --model NAME with --weights FILE")}
	}
	if s.maxBatch < 1 {
		return nil, "", usageError{fmt.Errorf("--%s %d: want at least 1", s.batchFlag, s.maxBatch)}
	}
	var dev *nn.Backend
	if cmd.Flags().Lookup("device") != nil {
		var err error
		if dev, err = openDevice(cmd); err != nil {
			return nil, "", err
		}
	}
	var (
		m    *vgg.Model
		o    = predict.Options{MaxBatch: s.maxBatch}
		desc string
	)
	if s.checkpoint != "" {
		var (
			cfg train.Config
			dir string
			err error
		)
		if m, cfg, dir, err = loadCheckpointModel(s.checkpoint, s.best); err != nil {
			return nil, "", err
		}
		o.Mean, o.Std = cfg.Mean, cfg.Std
		o.Classes = checkpointClasses(cfg, m.Opts.Classes)
		desc = fmt.Sprintf("%s from %s", m.Name, dir)
	} else {
		name, opts, err := s.arch.options(s.model)
		if err != nil {
			return nil, "", err
		}
		if m, err = vgg.New(name, opts); err != nil {
			return nil, "", err
		}
		if err := m.LoadWeights(s.weights, vgg.LoadOptions{}); err != nil {
			return nil, "", err
		}
		mean, std := defaultNormalization(m.Opts)
		for c := range min(3, len(mean)) {
			o.Mean[c], o.Std[c] = float32(mean[c]), float32(std[c])
		}
		if m.Opts.Head == vgg.HeadCIFAR && m.Opts.Classes == 10 {
			o.Classes = cifar10Classes()
		}
		desc = fmt.Sprintf("%s from %s", m.Name, s.weights)
	}
	if dev != nil {
		d, err := vgg.NewDevice(m, dev, vgg.NetOptions{})
		if err != nil {
			return nil, "", err
		}
		o.Logits = d.Logits
		desc += " on " + dev.D.Name()
	}
	p, err := predict.New(m, o)
	return p, desc, err
}

// checkpointClasses names a checkpoint's classes: the names the run saved
// in its configuration, else CIFAR-10's, else CIFAR-100's read from the run's
// data, or nil ("class N") when they cannot be found.
func checkpointClasses(cfg train.Config, n int) []string {
	if len(cfg.ClassNames) == n {
		return cfg.ClassNames
	}
	if (cfg.Dataset == "" || cfg.Dataset == "cifar10") && n == 10 {
		return cifar10Classes()
	}
	d, err := cifar10.Load(cfg.Data, cifar10.Test, cifar10.Options{Dataset: cfg.Dataset, SkipChecksum: cfg.SkipChecksum})
	if err != nil || len(d.Classes) != n {
		return nil
	}
	return d.Classes
}

// cifar10Classes returns CIFAR-10's class names, from the embedded sample.
func cifar10Classes() []string {
	d, err := cifar10.Sample(cifar10.Test)
	if err != nil {
		return nil
	}
	return d.Classes
}

// readImages decodes each file; a file that fails gets its error instead.
func readImages(paths []string) ([]image.Image, []error) {
	imgs := make([]image.Image, len(paths))
	errs := make([]error, len(paths))
	for i, path := range paths {
		b, err := os.ReadFile(path)
		if err == nil {
			imgs[i], err = predict.Decode(b, 0)
		}
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", path, err)
		}
	}
	return imgs, errs
}

// imageResult is one image's answer in zoo predict --json.
type imageResult struct {
	File  string          `json:"file"`
	Top   []predict.Class `json:"top,omitempty"`
	Error string          `json:"error,omitempty"`
}

func newPredictCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		src    = modelSource{defaultMaxBatch: 32}
		top    int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "predict (--checkpoint DIR | --model NAME --weights FILE) IMAGE...",
		Short: "Classify PNG and JPEG images: the top-k classes with names and probabilities",
		Long: `Classify PNG and JPEG images with a trained model. Each image is resized
so that it covers the model's input (shorter side to 32 for CIFAR models, with
PIL's antialiased bilinear filter, as torchvision's Resize), center-cropped,
normalized with the mean and std the model was trained with (CIFAR-10's with
--weights) and run in batches.

An image that cannot be read or decoded is reported on stderr; the others are
still classified, and the exit status is 1.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("no images: pass one or more PNG or JPEG files")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if top < 1 {
				return usageError{fmt.Errorf("--top %d: want at least 1", top)}
			}
			p, _, err := src.predictor(cmd)
			if err != nil {
				return err
			}
			defer p.Close()
			imgs, errs := readImages(args)
			var good []image.Image
			for i, img := range imgs {
				if errs[i] == nil {
					good = append(good, img)
				}
			}
			var preds []predict.Prediction
			if len(good) > 0 {
				if preds, err = p.Predict(good, top); err != nil {
					return err
				}
			}
			results := make([]imageResult, len(args))
			failed := 0
			for i, path := range args {
				results[i].File = path
				if errs[i] != nil {
					results[i].Error = errs[i].Error()
					fmt.Fprintln(stderr, "zoo:", errs[i])
					failed++
					continue
				}
				results[i].Top, preds = preds[0].Top, preds[1:]
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(results); err != nil {
					return err
				}
			} else {
				w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
				for _, r := range results {
					if r.Error != "" {
						continue
					}
					fmt.Fprintln(w, r.File)
					for rank, c := range r.Top {
						fmt.Fprintf(w, "  %d\t%s\t(class %d)\t%6.2f%%\n", rank+1, c.Label, c.Index, 100*c.Probability)
					}
				}
				w.Flush()
			}
			if failed > 0 {
				return errors.New(plural(failed, "image") + " could not be read (see above)")
			}
			return nil
		},
	}
	src.register(cmd)
	addDeviceFlag(cmd.Flags())
	cmd.Flags().IntVarP(&top, "top", "k", 5, "classes to print per image")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: one object per image with its file, top classes or error")
	return cmd
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

package cli

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/gozoo/gozoo/datasets/cifar10"
	"github.com/gozoo/gozoo/safetensors"
	"github.com/gozoo/gozoo/train"
	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/spf13/cobra"
)

// Metadata keys of a weights file written by zoo convert --checkpoint: the
// input normalization the model was trained with, as JSON arrays.
const (
	metaMean = "gozoo.mean"
	metaStd  = "gozoo.std"
)

func newConvertCmd(stdout io.Writer) *cobra.Command {
	var (
		f                          archFlags
		checkpoint, weights, model string
		out                        string
		best                       bool
		only, freeze               []string
	)
	cmd := &cobra.Command{
		Use:   "convert (--checkpoint DIR [--best] -o FILE | --weights FILE --model NAME [--bn] [--head cifar|imagenet] [--classes N] [--width F] [--only PREFIX] [--freeze PREFIX] -o DIR)",
		Short: "Convert between a zoo train checkpoint and a plain safetensors state dict (torchvision's names)",
		Long: `Convert between gozoo checkpoints and PyTorch-style weights files.

zoo convert --checkpoint DIR -o weights.safetensors writes the model's state
dict (float32, num_batches_tracked int64, torchvision's names), which PyTorch
loads with model.load_state_dict(safetensors.torch.load_file(...)). DIR is a
run folder written by zoo train (its latest checkpoint; --best for its best
one) or one of its ckpt-* folders. The normalization the model was trained
with is recorded in the file's metadata as gozoo.mean and gozoo.std.

zoo convert --weights FILE --model NAME [architecture flags] -o DIR makes a
run folder that zoo eval, zoo export and zoo train --resume
accept: the weights (checked all or nothing: every missing, unexpected or
mismatched tensor is reported), the default recipe of zoo train for the
model, a fresh optimizer and zero progress. The normalization is the file's
gozoo.mean and gozoo.std when present, otherwise CIFAR-10's with the cifar
head and ImageNet's with the imagenet head.

For transfer learning, --only features. loads just the convolutional
features (the head keeps fresh weights, so --classes may differ from the
file's) and --freeze features. records in the run's configuration that zoo
train --resume DIR trains only the rest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			set := cmd.Flags().Changed
			switch {
			case out == "":
				return usageError{fmt.Errorf("convert: no output: pass -o FILE with --checkpoint, -o DIR with --weights")}
			case (checkpoint == "") == (weights == ""):
				return usageError{fmt.Errorf("convert: pass either --checkpoint DIR (to write a weights file) or --weights FILE (to write a checkpoint)")}
			case checkpoint != "":
				for _, name := range []string{"model", "bn", "head", "classes", "input", "width", "pool", "only", "freeze"} {
					if set(name) {
						return usageError{fmt.Errorf("convert: --checkpoint holds the model and its architecture: give it without --%s", name)}
					}
				}
				return checkpointToWeights(stdout, checkpoint, best, out)
			case set("best"):
				return usageError{fmt.Errorf("convert: --best picks a checkpoint of a run: give it with --checkpoint DIR")}
			case model == "":
				return usageError{fmt.Errorf("convert: name the model the weights are for: --model NAME (zoo summary --weights %s shows what the file holds)", weights)}
			case set("input") || set("pool"):
				return usageError{fmt.Errorf("convert: a checkpoint records no --input or --pool: the weights do not depend on the input size")}
			case f.head == string(vgg.HeadNone):
				return usageError{fmt.Errorf("convert: a checkpoint needs a classifier: --head cifar or imagenet")}
			}
			return weightsToCheckpoint(stdout, &f, model, weights, out, only, freeze)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&out, "output", "o", "", "the weights file (with --checkpoint) or run folder (with --weights) to write")
	fl.StringVar(&checkpoint, "checkpoint", "", "a run folder written by zoo train (its latest checkpoint) or one of its ckpt-* folders")
	fl.BoolVar(&best, "best", false, "with --checkpoint: the run's best checkpoint instead of its latest")
	fl.StringVar(&weights, "weights", "", "safetensors state dict with torchvision's names (F32, F16, BF16 or F64)")
	fl.StringVar(&model, "model", "", "model name, vgg11 … vgg19_bn")
	fl.StringSliceVar(&only, "only", nil, "with --weights: load only the tensors with these name prefixes (features. keeps a fresh head, for transfer learning)")
	fl.StringSliceVar(&freeze, "freeze", nil, "with --weights: parameters (names or prefixes such as features.) that zoo train --resume does not train")
	return cmd
}

// checkpointToWeights writes a checkpoint's state dict to out, atomically.
func checkpointToWeights(stdout io.Writer, checkpoint string, best bool, out string) error {
	m, cfg, dir, err := loadCheckpointModel(checkpoint, best)
	if err != nil {
		return err
	}
	meta := m.Metadata()
	mean, _ := json.Marshal(shortestAll(cfg.Mean))
	std, _ := json.Marshal(shortestAll(cfg.Std))
	meta[metaMean], meta[metaStd] = string(mean), string(std)
	sd := m.StateDict()
	n, err := writeAtomic(out, func(w io.Writer) error { return safetensors.Encode(w, sd, meta) })
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes): %s from %s, %d tensors with torchvision's names, %d parameters\n",
		out, n, m.Name, dir, len(sd), m.Arch.Params())
	fmt.Fprintf(stdout, "normalization recorded: mean %s, std %s\n", mean, std)
	return nil
}

// weightsToCheckpoint makes a run folder holding one checkpoint of the
// weights in file, for the model the flags describe.
func weightsToCheckpoint(stdout io.Writer, f *archFlags, model, file, out string, only, freeze []string) error {
	if _, err := os.Stat(filepath.Join(out, "latest")); err == nil {
		return fmt.Errorf("convert: %s already holds a run: choose a new folder", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("convert: %w", err)
	}
	name, opts, err := f.options(model)
	if err != nil {
		return err
	}
	src, err := safetensors.ReadFile(file)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	cfg := train.DefaultConfig(name, strings.HasSuffix(name, "_bn"))
	cfg.Width, cfg.NumClasses, cfg.Head, cfg.SaveDir, cfg.Freeze = opts.WidthMult, opts.Classes, string(opts.Head), out, freeze
	if cfg.NumClasses == 0 {
		cfg.NumClasses = 10
	}
	if cfg.NumClasses == 100 {
		cfg.Dataset = "cifar100"
	}
	if cfg.Mean, cfg.Std, err = normalizationOf(src.Metadata, opts); err != nil {
		return fmt.Errorf("convert: %s: %w", file, err)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	m, err := buildModel(cfg)
	if err != nil {
		return err
	}
	loaded := len(m.StateNames())
	if len(only) > 0 {
		loaded = 0
		for _, name := range m.StateNames() {
			if slices.ContainsFunc(only, func(p string) bool { return strings.HasPrefix(name, p) }) {
				loaded++
			}
		}
		if loaded == 0 {
			return usageError{fmt.Errorf("convert: --only %s matches no tensor of %s (its tensors are named features.N… and classifier.N…)", strings.Join(only, ","), m.Name)}
		}
	}
	if err := m.LoadState(src.Tensors, vgg.LoadOptions{Prefixes: only}); err != nil {
		return fmt.Errorf("%w (file %s)", err, file)
	}
	net, err := m.NewNet(netOptions(cfg))
	if err != nil {
		return err
	}
	defer net.Close()
	opt, err := cfg.NewOptimizer()
	if err != nil {
		return err
	}
	sched, perStep, err := cfg.NewSchedule(1)
	if err != nil {
		return err
	}
	t := &train.Trainer{Net: net, Opt: opt, Sched: sched, PerStep: perStep, Epochs: cfg.Epochs}
	ck := &train.Checkpointer{Dir: out, Keep: cfg.KeepLast, Config: cfg}
	dir, err := ck.Save(t, true)
	if err != nil {
		return err
	}
	from := fmt.Sprintf("%d tensors from %s", loaded, file)
	if loaded < len(m.StateNames()) {
		from = fmt.Sprintf("%d of its %d tensors from %s (the others fresh, seed %d)", loaded, len(m.StateNames()), file, cfg.Seed)
	}
	fmt.Fprintf(stdout, "wrote %s: %s (%s head, %d classes, width %g), %s, %d parameters\n",
		dir, m.Name, cfg.Head, cfg.NumClasses, cfg.Width, from, m.Arch.Params())
	if len(freeze) > 0 {
		fmt.Fprintf(stdout, "frozen for training: %s\n", strings.Join(freeze, ", "))
	}
	fmt.Fprintf(stdout, "normalization: mean %v, std %v; recipe: zoo train's defaults (%s lr %g, %d epochs of %s)\n",
		cfg.Mean, cfg.Std, cfg.Optimizer, cfg.LearningRate, cfg.Epochs, cfg.Schedule)
	fmt.Fprintf(stdout, "use it with: zoo eval --checkpoint %s, zoo export --format onnx --checkpoint %s -o model.onnx\n", out, out)
	return nil
}

// normalizationOf returns the normalization recorded in a weights file's
// metadata by zoo convert, or the usual one for the head.
func normalizationOf(meta map[string]string, o vgg.Options) (mean, std [3]float32, err error) {
	if meta[metaMean] != "" || meta[metaStd] != "" {
		if err := json.Unmarshal([]byte(meta[metaMean]), &mean); err != nil {
			return mean, std, fmt.Errorf("metadata %s %q: %w", metaMean, meta[metaMean], err)
		}
		if err := json.Unmarshal([]byte(meta[metaStd]), &std); err != nil {
			return mean, std, fmt.Errorf("metadata %s %q: %w", metaStd, meta[metaStd], err)
		}
		return mean, std, nil
	}
	mean, std = cifar10.DefaultMean, cifar10.DefaultStd
	if o.Head == vgg.HeadImageNet {
		for c := range 3 {
			mean[c], std[c] = float32(imageNetMean[c]), float32(imageNetStd[c])
		}
	}
	return mean, std, nil
}

// shortestAll is shortest on every channel.
func shortestAll(v [3]float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = shortest(x)
	}
	return out
}

// summarizeWeights prints what a safetensors file holds: its metadata and
// each tensor's name, dtype and shape, with the parameter count; with a
// model named (argument or --model), whether the file fits it, as loading
// would check it. A file that does not fit is an error listing every
// missing, unexpected and mismatched tensor.
func summarizeWeights(out io.Writer, f *archFlags, file, model string, args []string) error {
	if len(args) == 1 {
		if model != "" && model != args[0] {
			return usageError{fmt.Errorf("summary: model %q as the argument and %q as --model: give one", args[0], model)}
		}
		model = args[0]
	}
	src, err := safetensors.ReadFile(file)
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	names := src.Names()
	slices.SortFunc(names, stateOrder)
	fmt.Fprintf(out, "%s: %d tensors\n", file, len(names))
	if len(src.Metadata) > 0 {
		fmt.Fprintln(out, "\nmetadata")
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, k := range slices.Sorted(maps.Keys(src.Metadata)) {
			fmt.Fprintf(w, "  %s\t%s\n", k, src.Metadata[k])
		}
		w.Flush()
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "tensor\tdtype\tshape\telements")
	var params, buffers, bytes int
	dtypes := map[safetensors.DType]int{}
	for _, name := range names {
		t := src.Tensors[name]
		n := t.NumElements()
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, t.DType, shape(t.Shape), commas(n))
		if isBuffer(name) {
			buffers += n
		} else {
			params += n
		}
		bytes += len(t.Data)
		dtypes[t.DType]++
	}
	w.Flush()
	var kinds []string
	for _, d := range slices.Sorted(maps.Keys(dtypes)) {
		kinds = append(kinds, fmt.Sprintf("%s %d", d, dtypes[d]))
	}
	fmt.Fprintf(out, "\ntotal parameters: %s (%d), and %s buffer values (running statistics, num_batches_tracked)\n", commas(params), params, commas(buffers))
	fmt.Fprintf(out, "tensor data: %.1f MiB; tensors by dtype: %s\n", float64(bytes)/(1<<20), strings.Join(kinds, ", "))
	if model == "" {
		return nil
	}
	name, opts, err := f.options(model)
	if err != nil {
		return err
	}
	m, err := vgg.New(name, opts)
	if err != nil {
		return err
	}
	o := m.Opts
	desc := fmt.Sprintf("%s (head %s, %d classes, width %g)", m.Name, o.Head, o.Classes, o.WidthMult)
	if err := m.LoadState(src.Tensors, vgg.LoadOptions{}); err != nil {
		return fmt.Errorf("summary: %s, checked against %s: %w", file, desc, err)
	}
	fmt.Fprintf(out, "fits %s: all %d tensors, names, shapes and dtypes checked\n", desc, len(m.StateNames()))
	return nil
}

// stateOrder orders state-dict names as PyTorch lists them: numeric parts
// by value (features.4 before features.11), the rest alphabetically.
func stateOrder(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(pa), len(pb)) {
		x, errX := strconv.Atoi(pa[i])
		y, errY := strconv.Atoi(pb[i])
		if errX == nil && errY == nil {
			if c := cmp.Compare(x, y); c != 0 {
				return c
			}
			continue
		}
		if c := strings.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(pa), len(pb))
}

// isBuffer reports whether a state-dict name is a batch-norm buffer rather
// than a trainable parameter.
func isBuffer(name string) bool {
	for _, s := range []string{".running_mean", ".running_var", ".num_batches_tracked"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

package cli

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/gozoo/gozoo/zoo"
	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/spf13/cobra"
)

func newModelsCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "models [PATTERN]",
		Short: "List the models, with parameters and GMACs (cifar head at 32×32, imagenet head at 224×224)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pattern := "*"
			if len(args) == 1 {
				pattern = args[0]
			}
			entries, err := zoo.Match(pattern)
			if err != nil {
				return usageError{err}
			}
			if len(entries) == 0 {
				return fmt.Errorf("no model matches %q; the models are %s", pattern, strings.Join(zoo.Names(), ", "))
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(w, "model\tparams (cifar, 32×32)\tGMACs\tparams (imagenet, 224×224)\tGMACs\t")
			for _, e := range entries {
				c, err := e.Arch(vgg.Options{})
				if err != nil {
					return err
				}
				i, err := e.Arch(vgg.Options{Head: vgg.HeadImageNet, Classes: 1000, Height: 224, Width: 224})
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s\t%s\t%.3f\t%s\t%.2f\t\n", e.Name, commas(c.Params()), gmacs(c.MACs()), commas(i.Params()), gmacs(i.MACs()))
			}
			return w.Flush()
		},
	}
}

func gmacs(n int64) float64 { return float64(n) / 1e9 }

// commas writes n with thousands separators: 138,357,544.
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// parseInput parses "CxHxW" (or "HxW" with 3 channels).
func parseInput(s string) (c, h, w int, err error) {
	parts := strings.Split(strings.ToLower(s), "x")
	if len(parts) == 2 {
		parts = append([]string{"3"}, parts...)
	}
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("--input %q: want CxHxW, e.g. 3x32x32", s)
	}
	var v [3]int
	for i, p := range parts {
		if v[i], err = strconv.Atoi(p); err != nil || v[i] <= 0 {
			return 0, 0, 0, fmt.Errorf("--input %q: %q is not a positive integer; want CxHxW, e.g. 3x32x32", s, p)
		}
	}
	return v[0], v[1], v[2], nil
}

// archFlags are the flags that choose a model's architecture, shared by
// summary, graph and (later) train.
type archFlags struct {
	bn      bool
	head    string
	classes int
	input   string
	width   float64
	pool    string
}

func (f *archFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.bn, "bn", false, "with BatchNorm2d after every convolution (vgg16 --bn is vgg16_bn)")
	fl.StringVar(&f.head, "head", "cifar", "classifier head: cifar, imagenet or none")
	fl.IntVar(&f.classes, "classes", 0, "number of classes (default 10 with the cifar head, 1000 with imagenet)")
	fl.StringVar(&f.input, "input", "", "input size CxHxW (default 3x32x32 with the cifar head, 3x224x224 with imagenet)")
	fl.Float64Var(&f.width, "width", 1, "width multiplier applied to every channel count")
	fl.StringVar(&f.pool, "pool", "", "with --head none: global avg or max pooling of the features")
}

// options resolves the model name and its options.
func (f *archFlags) options(name string) (string, vgg.Options, error) {
	e, err := zoo.Lookup(name, f.bn)
	if err != nil {
		return "", vgg.Options{}, usageError{err}
	}
	o := vgg.Options{Head: vgg.Head(f.head), Classes: f.classes, WidthMult: f.width, Pool: f.pool}
	if f.width <= 0 || math.IsNaN(f.width) {
		return "", o, usageError{fmt.Errorf("--width %g: the width multiplier must be positive", f.width)}
	}
	if f.classes < 0 {
		return "", o, usageError{fmt.Errorf("--classes %d: must be positive", f.classes)}
	}
	input := f.input
	if o.Head == vgg.HeadImageNet {
		if o.Classes == 0 {
			o.Classes = 1000
		}
		if input == "" {
			input = "3x224x224"
		}
	}
	if input != "" {
		if o.InChannels, o.Height, o.Width, err = parseInput(input); err != nil {
			return "", o, usageError{err}
		}
	}
	return e.Name, o, nil
}

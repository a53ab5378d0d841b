package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/spf13/cobra"
)

func newSummaryCmd(stdout io.Writer) *cobra.Command {
	var (
		f              archFlags
		weights, model string
	)
	cmd := &cobra.Command{
		Use:   "summary (MODEL | --weights FILE [MODEL]) [--bn] [--head cifar|imagenet|none] [--classes N] [--input CxHxW] [--width F]",
		Short: "Print a model's layers: output shape, parameters and MACs, then the totals; or what a weights file holds",
		Args: func(cmd *cobra.Command, args []string) error {
			if weights != "" {
				return cobra.MaximumNArgs(1)(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if weights != "" {
				return summarizeWeights(stdout, &f, weights, model, args)
			}
			if model != "" {
				return usageError{fmt.Errorf("summary: --model goes with --weights FILE; without it, name the model as the argument")}
			}
			name, opts, err := f.options(args[0])
			if err != nil {
				return err
			}
			a, err := vgg.NewArch(name, opts)
			if err != nil {
				return err
			}
			printSummary(stdout, a)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&weights, "weights", "", "a safetensors file: list its tensors and metadata (and, with a model, whether they fit it)")
	cmd.Flags().StringVar(&model, "model", "", "with --weights: the model to check the file against (or name it as the argument)")
	return cmd
}

func printSummary(out io.Writer, a *vgg.Arch) {
	o := a.Opts
	fmt.Fprintf(out, "%s  head=%s  classes=%d  input=%dx%dx%d  width=%g\n\n", a.Name, o.Head, o.Classes, o.InChannels, o.Height, o.Width, o.WidthMult)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "layer\ttype\toutput shape\tparams\tMACs")
	fmt.Fprintf(w, "input\t\t%s\t\t\n", shape([]int{o.InChannels, o.Height, o.Width}))
	for _, l := range a.Layers {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", l.Name, l, shape(l.Shape), commas(l.Params), commas(int(l.MACs)))
	}
	w.Flush()
	fmt.Fprintf(out, "\ntotal parameters: %s (%d)\n", commas(a.Params()), a.Params())
	fmt.Fprintf(out, "total MACs per image: %s (%.3f G)\n", commas(int(a.MACs())), gmacs(a.MACs()))
	fmt.Fprintf(out, "parameter memory (float32): %.1f MiB\n", float64(a.Params())*4/(1<<20))
}

func shape(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

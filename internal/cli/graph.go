package cli

import (
	"fmt"
	"io"

	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/spf13/cobra"
)

func newGraphCmd(stdout io.Writer) *cobra.Command {
	var (
		f      archFlags
		format string
		train  bool
	)
	cmd := &cobra.Command{
		Use:   "graph MODEL [--bn] --format dot",
		Short: "Print the model's Gorgonia expression graph (Graphviz DOT on stdout)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "dot" {
				return usageError{fmt.Errorf("--format %q: the only format is dot", format)}
			}
			name, opts, err := f.options(args[0])
			if err != nil {
				return err
			}
			m, err := vgg.New(name, opts)
			if err != nil {
				return err
			}
			g, err := m.NewGraph(vgg.GraphOptions{Train: train, Loss: train && opts.Head != vgg.HeadNone})
			if err != nil {
				return err
			}
			defer g.Close()
			return g.WriteDot(stdout)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot")
	cmd.Flags().BoolVar(&train, "train", false, "the training graph: with the loss and its gradients")
	return cmd
}

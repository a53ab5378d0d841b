package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/gozoo/gozoo/datasets/cifar10"
	"github.com/gozoo/gozoo/train"
	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/spf13/cobra"
)

func newEvalCmd(stdout io.Writer) *cobra.Command {
	var (
		checkpoint, data string
		best, asJSON     bool
		confusion, skip  bool
		batch            int
	)
	cmd := &cobra.Command{
		Use:   "eval --checkpoint DIR [--data PATH]",
		Short: "Evaluate a checkpoint on the test split: loss, top-1, top-5, per-class accuracy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if checkpoint == "" {
				return usageError{fmt.Errorf("eval: pass --checkpoint DIR (a run folder written by zoo train, or one of its ckpt-* folders)")}
			}
			dev, err := openDevice(cmd)
			if err != nil {
				return err
			}
			m, cfg, dir, err := loadCheckpointModel(checkpoint, best)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("data") {
				cfg.Data = data
			}
			cfg.SkipChecksum = cfg.SkipChecksum || skip
			net, err := m.NewNet(netOptions(cfg))
			if err != nil {
				return err
			}
			defer net.Close()
			test, err := cifar10.Load(cfg.Data, cifar10.Test, cifar10.Options{Dataset: cfg.Dataset, SkipChecksum: cfg.SkipChecksum})
			if err != nil {
				return err
			}
			loader, err := cifar10.NewLoader(test, cifar10.LoaderConfig{BatchSize: batch, Mean: cfg.Mean, Std: cfg.Std, Workers: cfg.Workers})
			if err != nil {
				return err
			}
			var evalNet train.Net = net
			if dev != nil {
				if evalNet, err = vgg.NewDevice(m, dev, netOptions(cfg)); err != nil {
					return err
				}
			}
			ev, err := train.Evaluate(cmd.Context(), evalNet, loaderData{loader})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Checkpoint string   `json:"checkpoint"`
					Classes    []string `json:"classes"`
					*train.Eval
				}{dir, test.Classes, ev})
			}
			fmt.Fprintf(stdout, "%s on %s test (%d images)\nloss %.4f  top-1 %.2f%%  top-5 %.2f%%\n\n", dir, test.Name, ev.Images, ev.Loss, 100*ev.Top1, 100*ev.Top5)
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "class\tname\taccuracy")
			for c, acc := range ev.PerClass {
				fmt.Fprintf(w, "%d\t%s\t%.2f%%\n", c, test.Classes[c], 100*acc)
			}
			w.Flush()
			if confusion {
				fmt.Fprintln(stdout, "\nconfusion matrix (rows: true class, columns: predicted)")
				w := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', tabwriter.AlignRight)
				for _, row := range ev.Confusion {
					for _, v := range row {
						fmt.Fprintf(w, "%d\t", v)
					}
					fmt.Fprintln(w)
				}
				w.Flush()
			}
			return nil
		},
	}
	f := cmd.Flags()
	addDeviceFlag(f)
	f.StringVar(&checkpoint, "checkpoint", "", "a run folder written by zoo train (its latest checkpoint) or a ckpt-* folder")
	f.BoolVar(&best, "best", false, "the run's best checkpoint instead of its latest")
	f.StringVar(&data, "data", "", "data to evaluate on (default: the checkpoint's)")
	f.BoolVar(&skip, "skip-checksum", false, "accept data that differs from the official release")
	f.BoolVar(&confusion, "confusion", false, "also print the confusion matrix")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.IntVar(&batch, "batch-size", 100, "images per batch")
	return cmd
}

func newDataCmd(stdout io.Writer) *cobra.Command {
	data := &cobra.Command{Use: "data", Short: "Inspect data sets"}
	var skip bool
	info := &cobra.Command{
		Use:   "info PATH",
		Short: "Images per split and class, per-channel mean and std, and the checksum verdict of a CIFAR-10/100 folder or tarball",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := cifar10.Inspect(args[0], cifar10.Options{SkipChecksum: skip})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %s, %d classes\nchecksum: %s\n", args[0], in.Dataset, len(in.Classes), in.Checksum)
			for _, s := range in.Splits {
				fmt.Fprintf(stdout, "\n%s: %d images\n  mean (R, G, B) %.4f %.4f %.4f\n  std  (R, G, B) %.4f %.4f %.4f\n", s.Split, s.Images,
					s.Mean[0], s.Mean[1], s.Mean[2], s.Std[0], s.Std[1], s.Std[2])
				w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
				for c, n := range s.PerClass {
					fmt.Fprintf(w, "  %d\t%s\t%d\n", c, in.Classes[c], n)
				}
				w.Flush()
			}
			return nil
		},
	}
	info.Flags().BoolVar(&skip, "skip-checksum", false, "do not compare with the official release's checksums")
	data.AddCommand(info)
	return data
}

// loadCheckpointModel rebuilds the model a checkpoint was trained as and
// loads its weights: path is a run folder (its latest checkpoint, or with
// best its best one) or a ckpt-* folder. It returns the model, the run's
// configuration (normalisation, data set, classes) and the checkpoint folder.
func loadCheckpointModel(path string, best bool) (*vgg.Model, train.Config, string, error) {
	var cfg train.Config
	dir, err := train.ResolveCheckpoint(path, best)
	if err != nil {
		return nil, cfg, "", err
	}
	l, err := train.LoadCheckpoint(dir)
	if err != nil {
		return nil, cfg, "", err
	}
	if err := json.Unmarshal(l.Checkpoint.Config, &cfg); err != nil {
		return nil, cfg, "", fmt.Errorf("checkpoint %s: config: %w", l.Dir, err)
	}
	m, err := buildModel(cfg)
	if err != nil {
		return nil, cfg, "", err
	}
	if err := m.LoadState(l.Weights, vgg.LoadOptions{}); err != nil {
		return nil, cfg, "", err
	}
	return m, cfg, l.Dir, nil
}

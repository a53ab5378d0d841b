package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gozoo/gozoo/bench"
	"github.com/gozoo/gozoo/internal/cuda"
	"github.com/gozoo/gozoo/internal/cuda/nn"
	"github.com/gozoo/gozoo/train"
	"github.com/gozoo/gozoo/zoo/vgg"
)

// addDeviceFlag adds --device to a command's flags.
func addDeviceFlag(fl *pflag.FlagSet) {
	fl.String("device", "cpu", "where to run: cpu, or cuda for an NVIDIA GPU (see docs/cuda.md)")
}

// openDevice reads the command's --device before any work: cpu gives a nil
// backend; cuda opens the GPU and loads the kernels, failing fast (with the
// driver search's error) on a machine without one. The backend lives until
// the process exits. GEMMs run in full float32 unless ZOO_CUDA_TF32=1.
func openDevice(cmd *cobra.Command) (*nn.Backend, error) {
	dev, err := cmd.Flags().GetString("device")
	if err != nil {
		return nil, err
	}
	switch dev {
	case "cpu":
		return nil, nil
	case "cuda":
		// ZOO_CUDA_TF32=1: TF32 tensor-core GEMMs, as PyTorch's allow_tf32.
		b, err := nn.Open(cuda.Options{TF32: os.Getenv("ZOO_CUDA_TF32") == "1"})
		if err != nil {
			return nil, fmt.Errorf("--device cuda: %w", err)
		}
		return b, nil
	default:
		return nil, usageError{fmt.Errorf("--device %q: want cpu or cuda", dev)}
	}
}

// trainOnDevice moves a trainer built for the CPU onto the GPU: the net
// becomes a vgg.Device and the solver its SGD. Only SGD without gradient
// accumulation runs there.
func trainOnDevice(t *train.Trainer, net *vgg.Net, cfg train.Config, b *nn.Backend) error {
	sgd, ok := t.Opt.(*train.SGD)
	if !ok {
		return usageError{fmt.Errorf("--device cuda trains with --optimizer sgd only (%s is not wired on the GPU); use sgd, or --device cpu", cfg.Optimizer)}
	}
	if cfg.GradAccum > 1 {
		return usageError{fmt.Errorf("--device cuda does not accumulate gradients (--grad-accum %d); use a larger --batch-size, or --device cpu", cfg.GradAccum)}
	}
	dev, err := vgg.NewDevice(net.Model, b, netOptions(cfg))
	if err != nil {
		return err
	}
	opt, err := dev.NewSGD(sgd.Config())
	if err != nil {
		return err
	}
	t.Net, t.Opt = dev, opt
	return nil
}

// runDeviceBench times the models on the GPU in this process: a training
// step (forward, loss, backward, SGD with momentum 0.9 and weight decay
// 5e-4) and an inference pass, at 32×32 with the CIFAR head on a fixed
// random batch, and prints median img/s and ms/step.
func runDeviceBench(ctx context.Context, stdout, stderr io.Writer, args []string, f benchFlags, b *nn.Backend) error {
	p, err := f.plan(args)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\tmode\tbatch\tdevice\timg/s\tms/step\n")
	for _, name := range p.models {
		for _, mode := range p.modes {
			for _, n := range f.batches {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if !f.quiet {
					fmt.Fprintf(stderr, "bench %s %s batch %d on %s\n", name, mode, n, b.D.Name())
				}
				ms, err := deviceStepTime(name, mode, n, f, b)
				if err != nil {
					return fmt.Errorf("bench %s %s batch %d on the GPU: %w", name, mode, n, err)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.1f\t%.2f\n", name, mode, n, b.D.Name(), float64(n)/(ms/1000), ms)
			}
		}
	}
	return tw.Flush()
}

// deviceStepTime returns the median milliseconds of one step.
func deviceStepTime(name string, mode bench.Mode, n int, f benchFlags, b *nn.Backend) (float64, error) {
	m, err := vgg.New(name, vgg.Options{WidthMult: f.width, Seed: 1})
	if err != nil {
		return 0, err
	}
	dev, err := vgg.NewDevice(m, b, vgg.NetOptions{})
	if err != nil {
		return 0, err
	}
	opt, err := dev.NewSGD(train.SGDConfig{Momentum: 0.9, WeightDecay: 5e-4})
	if err != nil {
		return 0, err
	}
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*3*32*32)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	y := make([]int, n)
	for i := range y {
		y[i] = r.IntN(10)
	}
	step := func() error {
		if mode == bench.Infer {
			_, err := dev.Logits(x) // the download waits for the device
			return err
		}
		if _, err := dev.Forward(x, y, true); err != nil {
			return err
		}
		if err := opt.Step(nil, 0.01); err != nil {
			return err
		}
		return b.D.Synchronize()
	}
	for range f.warmup {
		if err := step(); err != nil {
			return 0, err
		}
	}
	times := make([]float64, f.iters)
	for i := range times {
		t0 := time.Now()
		if err := step(); err != nil {
			return 0, err
		}
		times[i] = float64(time.Since(t0).Microseconds()) / 1000
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

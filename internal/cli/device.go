package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gozoo/gozoo/internal/cuda"
)

// addDeviceFlag adds --device to a command's flags.
func addDeviceFlag(fl *pflag.FlagSet) {
	fl.String("device", "cpu", "where to run: cpu, or cuda for an NVIDIA GPU (see docs/cuda.md)")
}

// errGPUNotWired is returned for --device cuda where a GPU was found: the
// GPU layers exist (internal/cuda/nn) but no command runs on them yet.
var errGPUNotWired = errors.New("this command does not run on the GPU yet: the GPU layers are not wired into the training graph (docs/cuda.md); use --device cpu")

// checkDevice validates the command's --device before any work: cpu passes;
// cuda opens the GPU (failing fast, with the driver search's error, on a
// machine without one) and then reports that the command cannot use it yet.
func checkDevice(cmd *cobra.Command) error {
	dev, err := cmd.Flags().GetString("device")
	if err != nil {
		return err
	}
	switch dev {
	case "cpu":
		return nil
	case "cuda":
		d, err := cuda.Open(cuda.Options{})
		if err != nil {
			return fmt.Errorf("--device cuda: %w", err)
		}
		name := d.Name()
		d.Close()
		return fmt.Errorf("--device cuda: found %s, but %w", name, errGPUNotWired)
	default:
		return fmt.Errorf("--device %q: want cpu or cuda", dev)
	}
}

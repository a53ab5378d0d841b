// Package cli implements the zoo command. Every command is built by a
// constructor that receives its output streams, so tests run the real
// command line in-process; the command is one more client of the library.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the zoo command line with args and returns the exit status:
// 0, 1 on an error (printed to stderr), 2 on a usage error, 130 when
// SIGINT or SIGTERM stopped a command that saves its work first (zoo train).
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return mainContext(ctx, args, stdout, stderr)
}

// mainContext is Main under a context whose cancellation stands for a signal.
func mainContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "zoo:", strings.TrimPrefix(err.Error(), "zoo: "))
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		var e exitError
		if errors.As(err, &e) {
			return e.code
		}
		return 1
	}
	return 0
}

// usageError marks errors in how the command was called.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// NewRoot returns the root command with every subcommand attached.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "zoo",
		Short:         "gozoo: VGG networks as Gorgonia graphs — build, inspect, train, benchmark",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newModelsCmd(stdout),
		newSummaryCmd(stdout),
		newGraphCmd(stdout),
		newExportCmd(stdout),
		newConvertCmd(stdout),
		newTrainCmd(stdout, stderr),
		newEvalCmd(stdout),
		newDataCmd(stdout),
		newBenchCmd(stdout, stderr),
		newPredictCmd(stdout, stderr),
		newFeaturesCmd(stdout, stderr),
		newServeCmd(stdout, stderr),
	)
	return root
}

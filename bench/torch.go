package bench

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// TorchScript is torch_bench.py, the PyTorch side of the comparison. RunTorch
// feeds it to Python on standard input, so the zoo binary needs no checkout.
//
//go:embed torch_bench.py
var TorchScript string

// DefaultPython is Debian's Python, which has PyTorch 1.13 on the project's
// machines (a pyenv python3 earlier on PATH may lack it).
const DefaultPython = "/usr/bin/python3"

// ErrNoTorch is wrapped by the errors of CheckTorch and RunTorch when the
// Python interpreter cannot be started or cannot import torch.
var ErrNoTorch = errors.New("python with torch not found")

// CheckTorch runs python and returns torch's version, or an error wrapping
// ErrNoTorch that says what is missing.
func CheckTorch(ctx context.Context, python string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, "-c", "import torch; print(torch.__version__)")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", torchError(python, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// torchError explains why python could not run the comparison.
func torchError(python string, err error, stderr string) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if msg := lastLine(stderr); msg != "" {
			return fmt.Errorf("bench: %w: %s cannot import torch (%s)", ErrNoTorch, python, msg)
		}
		return fmt.Errorf("bench: %w: %s cannot import torch (%v)", ErrNoTorch, python, err)
	}
	return fmt.Errorf("bench: %w: cannot run %s: %v", ErrNoTorch, python, err)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// RunTorch measures c in PyTorch, in a new python process running
// TorchScript with threads intra-op threads (0: torch's default), and
// returns the Result with Impl "pytorch", summarised.
func RunTorch(ctx context.Context, python string, c Config, threads int) (*Result, error) {
	if err := c.checkIters(); err != nil {
		return nil, err
	}
	c, err := c.check()
	if err != nil {
		return nil, err
	}
	a, err := c.Arch()
	if err != nil {
		return nil, err
	}
	args := []string{"-",
		"--model", c.Model, "--mode", string(c.Mode),
		"--batch", strconv.Itoa(c.Batch), "--width", strconv.FormatFloat(c.Width, 'g', -1, 64),
		"--threads", strconv.Itoa(threads),
		"--iters", strconv.Itoa(c.Iters), "--warmup", strconv.Itoa(c.Warmup),
		"--seed", strconv.FormatUint(c.Seed, 10),
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Stdin = strings.NewReader(TorchScript)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 3 { // not started, or no torch
			return nil, torchError(python, err, stderr.String())
		}
		return nil, fmt.Errorf("bench: torch_bench.py %s %s: %v: %s", c.Model, c.Mode, err, lastLine(stderr.String()))
	}
	var r Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("bench: torch_bench.py %s %s printed no result: %w (stdout %.200q)", c.Model, c.Mode, err, stdout.String())
	}
	if err := r.Summarize(FLOPsPerImage(a, c.Mode)); err != nil {
		return nil, err
	}
	return &r, nil
}

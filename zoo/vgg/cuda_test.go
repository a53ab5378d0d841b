package vgg

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/train"
)

// TestDeviceOpenCUDA: without a driver OpenCUDA says so with an error that
// wraps ErrNoCUDA; with a GPU (scripts/gpu-check.sh runs the TestDevice
// tests with ZOO_CUDA_REQUIRED=1) a training step's loss matches the CPU
// graph's and the weights move.
func TestDeviceOpenCUDA(t *testing.T) {
	m := tiny(t, "vgg11_bn", Options{Seed: 1})
	c, err := OpenCUDA(m, NetOptions{}, CUDAOptions{})
	if err != nil {
		if os.Getenv("ZOO_CUDA_REQUIRED") == "1" {
			t.Fatalf("ZOO_CUDA_REQUIRED=1 but: %v", err)
		}
		if !errors.Is(err, ErrNoCUDA) {
			t.Skipf("a driver but no usable GPU: %v", err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "vgg: cuda: no NVIDIA driver found") {
			t.Errorf("error %q, want one starting \"vgg: cuda: no NVIDIA driver found\"", msg)
		}
		return
	}
	defer c.Close()
	cpu, err := m.NewNet(NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	x, y := images(5, 4), []int{1, 2, 3, 4}
	want, err := cpu.Forward(x, y, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Forward(x, y, true)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(got.Loss - want.Loss); d > 1e-4*math.Abs(want.Loss) {
		t.Errorf("loss on the GPU %g, on the CPU %g", got.Loss, want.Loss)
	}
	opt, err := c.NewSGD(train.SGDConfig{Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	before := f32(m.Params()[0].Value)
	if err := opt.Step(nil, 0.1); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
	after := f32(m.Params()[0].Value)
	moved := false
	for i := range before {
		moved = moved || before[i] != after[i]
	}
	if !moved {
		t.Error("features.0.weight did not change after a step and Sync")
	}
}

package vgg

import (
	"fmt"

	"github.com/gozoo/gozoo/internal/cuda"
	"github.com/gozoo/gozoo/internal/cuda/nn"
)

// ErrNoCUDA is wrapped by OpenCUDA's error on a machine without an NVIDIA
// driver (libcuda.so.1 not loadable): test for it with errors.Is and fall
// back to the CPU (NewNet).
var ErrNoCUDA = cuda.ErrNoDriver

// CUDAOptions configures OpenCUDA.
type CUDAOptions struct {
	// Ordinal is the GPU to use (0: the first).
	Ordinal int
	// TF32 lets cuBLAS use TF32 tensor cores for the GEMMs, as PyTorch's
	// allow_tf32; off, they run in full float32.
	TF32 bool
}

// CUDA is a Model on an NVIDIA GPU: a Device on the GPU backend
// (internal/cuda/nn, loaded at run time without cgo), which it owns. It is
// a train.Net; train it with its NewSGD, read logits with Logits, bring the
// host Model up to date with Sync, and Close it when done.
type CUDA struct {
	*Device[nn.Tensor]
	backend *nn.Backend
}

// OpenCUDA opens GPU c.Ordinal, loads the kernels and uploads m's weights and
// statistics (m must be float32; o is as for NewNet). Without an NVIDIA
// driver its error wraps ErrNoCUDA.
func OpenCUDA(m *Model, o NetOptions, c CUDAOptions) (*CUDA, error) {
	b, err := nn.Open(cuda.Options{Ordinal: c.Ordinal, TF32: c.TF32})
	if err != nil {
		return nil, fmt.Errorf("vgg: %w", err)
	}
	d, err := NewDevice(m, b, o)
	if err != nil {
		b.Close()
		return nil, err
	}
	return &CUDA{Device: d, backend: b}, nil
}

// Close frees the model's GPU memory and closes the GPU. Sync first to keep
// what was trained: the host Model is not updated by Close.
func (c *CUDA) Close() error { return c.backend.Close() }

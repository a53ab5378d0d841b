// Package layers holds the building blocks of gozoo's networks as Gorgonia
// operations: Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d,
// Dropout, Flatten, Linear and softmax cross-entropy.
//
// Gorgonia v0.9.18 stays the graph, autodiff and TapeMachine engine, but
// several of its own layers are wrong or slow (see docs/architecture.md), so
// every layer here is an op of ours: a Go type implementing gorgonia.Op and
// gorgonia.SDOp, whose gradient is another op of ours. Each one computes what
// the PyTorch layer of the same name computes, in float32 or float64, and is
// tested against PyTorch fixtures and finite differences.
//
// Tensors are NCHW. Shapes are fixed when a graph is built; the functions
// here check them and return an error (never panic) when they do not fit.
//
// float32 matrix products run on internal/sgemm, and float32 3×3 stride-1
// convolutions on Winograd (see Conv2d and Kernels). Ops keep their output
// tensors from run to run, and some (ReLU, its gradient, BatchNorm's input
// gradient) write over an input that is dead after them: a value read out
// of a graph must be copied (gorgonia.Read) before the next run, which
// overwrites it. A tensor the caller binds to a node is never overwritten.
package layers

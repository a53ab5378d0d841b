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
package layers

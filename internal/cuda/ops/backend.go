// Package ops puts device tensors into Gorgonia graphs: Value wraps a
// backend's tensor as a Gorgonia value, and the layer functions (Conv2d,
// BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear,
// Dropout, CrossEntropy) add ops whose Do runs on the device and whose
// SymDiff adds device backward ops, so that Gorgonia stays the graph, the
// autodiff (G.Grad) and the TapeMachine while the data stays on the device
// between ops.
//
// A Gorgonia op of its own (Add, Reshape, Sum, the Add that G.Grad inserts
// where a value has two consumers, ...) would read a device value as host
// memory: Check refuses such a graph before it runs.
//
// What the TapeMachine does with values (gorgonia v0.9.18, measured): it
// passes them between ops in registers untouched, binds each to its node
// (read them with Node.Value after RunAll), and seeds G.Grad with a host
// float32 constant 1 (accepted by CrossEntropy's backward op). G.Read clones
// and later copies its node's value with Gorgonia's own functions: it works
// on device values on the first run only, so do not use it on them.
//
// The ops are written against Backend, the method set of the GPU backend
// (internal/cuda/nn); internal/cuda/emu implements it on the host for
// tests without a GPU.
package ops

// Backend is a device: its tensors (T) and the layers' forward and backward
// computations on them, with package layers' contracts (float32, NCHW).
// Every tensor it returns comes from a pool: those made since the last
// Recycle go back to it then, unless kept.
type Backend[T any] interface {
	Upload(data []float32, shape ...int) (T, error)
	Download(t T) ([]float32, error)
	ShapeOf(t T) []int
	Reshape(t T, shape ...int) (T, error)
	// Keep exempts tensors from Recycle (weights, statistics, solver state).
	Keep(ts ...T)
	// Free returns tensors to the pool now.
	Free(ts ...T)
	// Recycle returns every tensor made since the last Recycle, except the
	// kept ones, to the pool.
	Recycle()
	// Allocs counts the device allocations made so far.
	Allocs() int

	Conv2d(x, w, bias T, stride, pad int) (T, error)
	Conv2dBackward(x, w, dy T, stride, pad int) (dx, dw, db T, err error)
	Linear(x, w, bias T) (T, error)
	LinearBackward(x, w, dy T) (dx, dw, db T, err error)
	ReLU(x T) (T, error)
	ReLUGrad(y, dy T) (T, error)
	MaxPool2d(x T, k, s, p int) (y, argmax T, err error)
	MaxPool2dGrad(dy, argmax T, h, w, k, s, p int) (T, error)
	AdaptiveAvgPool2d(x T, oh, ow int) (T, error)
	AdaptiveAvgPool2dGrad(dy T, h, w int) (T, error)
	BatchNorm2d(x, gamma, beta, runMean, runVar T, eps, momentum float64, train bool) (y, mean, invStd T, err error)
	BatchNorm2dBackward(x, gamma, dy, mean, invStd T, train bool) (dx, dgamma, dbeta T, err error)
	UploadMask(keep []bool) (T, error)
	Dropout(in, keep T, p float64) (T, error)
	CrossEntropy(z T, labels []float32, smoothing float64) (loss, uploaded T, err error)
	CrossEntropyGrad(z, labels T, smoothing, g float64) (T, error)
	SGDStep(w, g, buf T, lr, weightDecay, momentum, dampening float64, nesterov, fresh bool) error
}

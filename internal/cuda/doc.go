// Package cuda is gozoo's NVIDIA GPU plumbing without cgo: it loads the
// driver (libcuda.so.1), cuBLAS (libcublas.so.*) and NVRTC (libnvrtc.so.*)
// at run time with github.com/ebitengine/purego, so the default binary
// builds with CGO_ENABLED=0 and starts on a machine without a GPU, where
// Open returns an error saying that no driver was found.
//
// A CUDA context is current per OS thread, so a Device owns one goroutine
// locked to its OS thread (an executor): every driver and cuBLAS call runs
// there, on the device's primary context, which cuBLAS shares. Kernel
// argument memory is pinned (runtime.Pinner) for the duration of a launch.
// Every failure is a Go error naming the call and CUDA's error string.
//
// Libraries are searched in ZOO_CUDA_LIBS (a colon-separated list of
// directories), LD_LIBRARY_PATH, the system's library directories and the
// nvidia/*/lib directories of a PyTorch installation (pip wheels ship cuBLAS
// and NVRTC there); see SearchDirs.
package cuda

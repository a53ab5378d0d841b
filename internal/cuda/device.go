package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Options configures Open.
type Options struct {
	// Ordinal is the device index (0 is the first GPU).
	Ordinal int
	// TF32 lets cuBLAS use TF32 tensor cores for float32 GEMMs (as
	// PyTorch's allow_tf32); false asks for full float32 (pedantic) math.
	TF32 bool
	// Getenv reads the environment for the library search; nil is os.Getenv.
	Getenv func(string) string
}

// Device is one GPU with its primary context and a cuBLAS handle. All its
// calls run on one goroutine locked to an OS thread, where the context is
// current; a Device is safe for use by several goroutines (their calls are
// serialised).
type Device struct {
	drv   *driver
	blas  *cublas
	ord   int32
	name  string
	ctx   uintptr
	hblas uintptr

	work chan func()
	once sync.Once
	done chan struct{}
}

// Open loads the driver and cuBLAS, initialises CUDA and returns device
// opt.Ordinal. Without an NVIDIA driver its error wraps ErrNoDriver and says
// what was tried.
func Open(opt Options) (*Device, error) {
	getenv := opt.Getenv
	if getenv == nil {
		getenv = osGetenv
	}
	drv, err := loadDriver(getenv)
	if err != nil {
		return nil, err
	}
	d := &Device{drv: drv, ord: int32(opt.Ordinal), work: make(chan func()), done: make(chan struct{})}
	go d.loop()
	err = d.do(func() error {
		if err := drv.check("cuInit", drv.cuInit(0)); err != nil {
			return fmt.Errorf("%w; no usable NVIDIA GPU (is the driver loaded and the device visible?)", err)
		}
		var n int32
		if err := drv.check("cuDeviceGetCount", drv.cuDeviceGetCount(&n)); err != nil {
			return err
		}
		if int32(opt.Ordinal) >= n || opt.Ordinal < 0 {
			return fmt.Errorf("cuda: device %d requested, %d found; check CUDA_VISIBLE_DEVICES", opt.Ordinal, n)
		}
		var dev int32
		if err := drv.check("cuDeviceGet", drv.cuDeviceGet(&dev, int32(opt.Ordinal))); err != nil {
			return err
		}
		d.ord = dev
		name := make([]byte, 256)
		if err := drv.check("cuDeviceGetName", drv.cuDeviceGetName(&name[0], int32(len(name)), dev)); err != nil {
			return err
		}
		d.name = cString(&name[0])
		if err := drv.check("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain(&d.ctx, dev)); err != nil {
			return err
		}
		return drv.check("cuCtxSetCurrent", drv.cuCtxSetCurrent(d.ctx))
	})
	if err != nil {
		d.stop()
		return nil, err
	}
	blas, err := loadCUBLAS(getenv)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.blas = blas
	err = d.do(func() error {
		if err := blas.check("cublasCreate_v2", blas.cublasCreate(&d.hblas)); err != nil {
			return err
		}
		if err := blas.check("cublasSetStream_v2", blas.cublasSetStream(d.hblas, 0)); err != nil {
			return err
		}
		mode := int32(cublasPedanticMath)
		if opt.TF32 {
			mode = cublasTF32TensorMath
		}
		return blas.check("cublasSetMathMode", blas.cublasSetMath(d.hblas, mode))
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// loop is the executor: it owns the OS thread on which the context is
// current and runs the device's calls one at a time.
func (d *Device) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for {
		select {
		case f := <-d.work:
			f()
		case <-d.done:
			return
		}
	}
}

// errClosed is returned by calls on a closed Device.
var errClosed = errors.New("cuda: device is closed")

// do runs f on the executor's thread and returns its error.
func (d *Device) do(f func() error) error {
	res := make(chan error, 1)
	select {
	case d.work <- func() { res <- f() }:
		return <-res
	case <-d.done:
		return errClosed
	}
}

func (d *Device) stop() { d.once.Do(func() { close(d.done) }) }

// Close destroys the cuBLAS handle, releases the primary context and stops
// the executor. Buffers must not be used afterwards.
func (d *Device) Close() error {
	err := d.do(func() error {
		var errs []error
		if d.hblas != 0 {
			errs = append(errs, d.blas.check("cublasDestroy_v2", d.blas.cublasDestroy(d.hblas)))
			d.hblas = 0
		}
		if d.ctx != 0 {
			errs = append(errs, d.drv.check("cuDevicePrimaryCtxRelease_v2", d.drv.cuDevicePrimaryCtxRelease(d.ord)))
			d.ctx = 0
		}
		return errors.Join(errs...)
	})
	d.stop()
	if errors.Is(err, errClosed) {
		return nil
	}
	return err
}

// Name is the GPU's name, e.g. "NVIDIA H100 80GB HBM3".
func (d *Device) Name() string { return d.name }

// Libraries are the files the driver and cuBLAS were loaded from.
func (d *Device) Libraries() (driver, cublas string) { return d.drv.path, d.blas.path }

// Synchronize waits until every queued operation of the device has finished
// and returns the first asynchronous error.
func (d *Device) Synchronize() error {
	return d.do(func() error { return d.drv.check("cuCtxSynchronize", d.drv.cuCtxSynchronize()) })
}

// Buffer is device memory; its zero value is an empty buffer.
type Buffer struct {
	ptr   uint64
	bytes int
}

// Bytes is the buffer's size in bytes.
func (b Buffer) Bytes() int { return b.bytes }

// Ptr is the device address (CUdeviceptr).
func (b Buffer) Ptr() uint64 { return b.ptr }

// Alloc allocates bytes of device memory, zeroed.
func (d *Device) Alloc(bytes int) (Buffer, error) {
	if bytes < 0 {
		return Buffer{}, fmt.Errorf("cuda: Alloc of %d bytes", bytes)
	}
	if bytes == 0 {
		return Buffer{}, nil
	}
	var p uint64
	err := d.do(func() error {
		if err := d.drv.check("cuMemAlloc_v2", d.drv.cuMemAlloc(&p, uint64(bytes))); err != nil {
			return fmt.Errorf("%w (%d bytes)", err, bytes)
		}
		return d.drv.check("cuMemsetD8_v2", d.drv.cuMemsetD8(p, 0, uint64(bytes)))
	})
	if err != nil {
		return Buffer{}, err
	}
	return Buffer{ptr: p, bytes: bytes}, nil
}

// Free releases b; freeing an empty buffer does nothing.
func (d *Device) Free(b Buffer) error {
	if b.ptr == 0 {
		return nil
	}
	return d.do(func() error { return d.drv.check("cuMemFree_v2", d.drv.cuMemFree(b.ptr)) })
}

// Zero sets b's bytes to 0.
func (d *Device) Zero(b Buffer) error {
	if b.ptr == 0 {
		return nil
	}
	return d.do(func() error { return d.drv.check("cuMemsetD8_v2", d.drv.cuMemsetD8(b.ptr, 0, uint64(b.bytes))) })
}

// Elem is an element type that moves between host and device.
type Elem interface {
	~float32 | ~int32 | ~uint8 | ~float64
}

// CopyIn copies src to the start of dst (synchronous).
func CopyIn[T Elem](d *Device, dst Buffer, src []T) error {
	n := len(src) * int(unsafe.Sizeof(*new(T)))
	if n > dst.bytes {
		return fmt.Errorf("cuda: CopyIn of %d bytes into a %d-byte buffer", n, dst.bytes)
	}
	if n == 0 {
		return nil
	}
	return d.do(func() error {
		var pin runtime.Pinner
		defer pin.Unpin()
		pin.Pin(&src[0])
		return d.drv.check("cuMemcpyHtoD_v2", d.drv.cuMemcpyHtoD(dst.ptr, unsafe.Pointer(&src[0]), uint64(n)))
	})
}

// CopyOut copies the start of src into dst (synchronous: it waits for the
// work queued before it).
func CopyOut[T Elem](d *Device, dst []T, src Buffer) error {
	n := len(dst) * int(unsafe.Sizeof(*new(T)))
	if n > src.bytes {
		return fmt.Errorf("cuda: CopyOut of %d bytes from a %d-byte buffer", n, src.bytes)
	}
	if n == 0 {
		return nil
	}
	return d.do(func() error {
		var pin runtime.Pinner
		defer pin.Unpin()
		pin.Pin(&dst[0])
		return d.drv.check("cuMemcpyDtoH_v2", d.drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src.ptr, uint64(n)))
	})
}

// Module is loaded PTX.
type Module struct {
	d *Device
	h uintptr
}

// LoadModule JIT-compiles and loads ptx (the driver compiles it for the GPU
// at hand).
func (d *Device) LoadModule(ptx []byte) (*Module, error) {
	img := append(append([]byte(nil), ptx...), 0)
	m := &Module{d: d}
	err := d.do(func() error {
		var pin runtime.Pinner
		defer pin.Unpin()
		pin.Pin(&img[0])
		return d.drv.check("cuModuleLoadData", d.drv.cuModuleLoadData(&m.h, unsafe.Pointer(&img[0])))
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Function is a kernel of a Module.
type Function struct {
	d    *Device
	h    uintptr
	name string
}

// Function looks up the kernel named name (an extern "C" name).
func (m *Module) Function(name string) (*Function, error) {
	f := &Function{d: m.d, name: name}
	err := m.d.do(func() error {
		if err := m.d.drv.check("cuModuleGetFunction", m.d.drv.cuModuleGetFunction(&f.h, m.h, name)); err != nil {
			return fmt.Errorf("%w: kernel %s", err, name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z int }

// Launch queues f on the default stream with grid and block sizes and the
// kernel arguments args: Buffer (a device pointer), int (passed as int32),
// int32, uint32, int64 (C long), uint64, float32, float64 (C double). Errors of the kernel itself surface at
// the next synchronising call.
func (f *Function) Launch(grid, block Dim3, shared int, args ...any) error {
	params, err := packArgs(args)
	if err != nil {
		return fmt.Errorf("cuda: launch %s: %w", f.name, err)
	}
	return f.d.do(func() error {
		var pin runtime.Pinner
		defer pin.Unpin()
		ptrs := make([]unsafe.Pointer, len(params)+1)
		for i, p := range params {
			pin.Pin(p)
			ptrs[i] = p
		}
		pin.Pin(&ptrs[0])
		r := f.d.drv.cuLaunchKernel(f.h, dim(grid.X), dim(grid.Y), dim(grid.Z), dim(block.X), dim(block.Y), dim(block.Z),
			uint32(shared), 0, unsafe.Pointer(&ptrs[0]), nil)
		if err := f.d.drv.check("cuLaunchKernel", r); err != nil {
			return fmt.Errorf("%w: kernel %s grid %v block %v", err, f.name, grid, block)
		}
		return nil
	})
}

// dim turns a Dim3 component into a launch dimension (0 means 1).
func dim(v int) uint32 { return uint32(max(v, 1)) }

// packArgs boxes each kernel argument in its own heap cell of the C type.
func packArgs(args []any) ([]unsafe.Pointer, error) {
	out := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case Buffer:
			p := v.ptr
			out[i] = unsafe.Pointer(&p)
		case int:
			if int(int32(v)) != v {
				return nil, fmt.Errorf("argument %d: %d overflows int32", i, v)
			}
			p := int32(v)
			out[i] = unsafe.Pointer(&p)
		case int32:
			out[i] = unsafe.Pointer(&v)
		case uint32:
			out[i] = unsafe.Pointer(&v)
		case uint64:
			out[i] = unsafe.Pointer(&v)
		case int64:
			out[i] = unsafe.Pointer(&v)
		case float64:
			out[i] = unsafe.Pointer(&v)
		case float32:
			out[i] = unsafe.Pointer(&v)
		default:
			return nil, fmt.Errorf("argument %d has unsupported type %T", i, a)
		}
	}
	return out, nil
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C with cuBLAS, column-major
// as BLAS: op(A) is (m, k), op(B) is (k, n), C is (m, n) with leading
// dimension ldc. For row-major Y = X·W with X (m, k) and W (k, n), call
// Sgemm(false, false, n, m, k, 1, W, n, X, k, 0, Y, n).
func (d *Device) Sgemm(transA, transB bool, m, n, k int, alpha float32, a Buffer, lda int, b Buffer, ldb int, beta float32, c Buffer, ldc int) error {
	op := func(t bool) int32 {
		if t {
			return cublasOpT
		}
		return cublasOpN
	}
	return d.do(func() error {
		al, be := alpha, beta
		var pin runtime.Pinner
		defer pin.Unpin()
		pin.Pin(&al)
		pin.Pin(&be)
		s := d.blas.cublasSgemm(d.hblas, op(transA), op(transB), int32(m), int32(n), int32(k),
			unsafe.Pointer(&al), a.ptr, int32(lda), b.ptr, int32(ldb), unsafe.Pointer(&be), c.ptr, int32(ldc))
		if err := d.blas.check("cublasSgemm_v2", s); err != nil {
			return fmt.Errorf("%w: m=%d n=%d k=%d", err, m, n, k)
		}
		return nil
	})
}

package cuda

import (
	"fmt"
	"unsafe"
)

// cuResult is CUresult; 0 is CUDA_SUCCESS.
type cuResult int32

// driver holds the bound functions of libcuda.so.1 (the versioned _v2
// symbols where the API has them).
type driver struct {
	path string

	cuInit                    func(flags uint32) cuResult
	cuDriverGetVersion        func(v *int32) cuResult
	cuDeviceGetCount          func(n *int32) cuResult
	cuDeviceGet               func(dev *int32, ordinal int32) cuResult
	cuDeviceGetName           func(name *byte, n int32, dev int32) cuResult
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) cuResult
	cuDevicePrimaryCtxRelease func(dev int32) cuResult
	cuCtxSetCurrent           func(ctx uintptr) cuResult
	cuCtxSynchronize          func() cuResult
	cuMemAlloc                func(p *uint64, bytes uint64) cuResult
	cuMemFree                 func(p uint64) cuResult
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, bytes uint64) cuResult
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, bytes uint64) cuResult
	cuMemsetD8                func(dst uint64, v uint8, n uint64) cuResult
	cuModuleLoadData          func(m *uintptr, image unsafe.Pointer) cuResult
	cuModuleUnload            func(m uintptr) cuResult
	cuModuleGetFunction       func(f *uintptr, m uintptr, name string) cuResult
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params unsafe.Pointer, extra unsafe.Pointer) cuResult
	cuStreamSynchronize       func(stream uintptr) cuResult
	cuGetErrorString          func(r cuResult, s **byte) cuResult
	cuGetErrorName            func(r cuResult, s **byte) cuResult
}

func (d *driver) bindings() []binding {
	return []binding{
		{"cuInit", &d.cuInit},
		{"cuDriverGetVersion", &d.cuDriverGetVersion},
		{"cuDeviceGetCount", &d.cuDeviceGetCount},
		{"cuDeviceGet", &d.cuDeviceGet},
		{"cuDeviceGetName", &d.cuDeviceGetName},
		{"cuDevicePrimaryCtxRetain", &d.cuDevicePrimaryCtxRetain},
		{"cuDevicePrimaryCtxRelease_v2", &d.cuDevicePrimaryCtxRelease},
		{"cuCtxSetCurrent", &d.cuCtxSetCurrent},
		{"cuCtxSynchronize", &d.cuCtxSynchronize},
		{"cuMemAlloc_v2", &d.cuMemAlloc},
		{"cuMemFree_v2", &d.cuMemFree},
		{"cuMemcpyHtoD_v2", &d.cuMemcpyHtoD},
		{"cuMemcpyDtoH_v2", &d.cuMemcpyDtoH},
		{"cuMemsetD8_v2", &d.cuMemsetD8},
		{"cuModuleLoadData", &d.cuModuleLoadData},
		{"cuModuleUnload", &d.cuModuleUnload},
		{"cuModuleGetFunction", &d.cuModuleGetFunction},
		{"cuLaunchKernel", &d.cuLaunchKernel},
		{"cuStreamSynchronize", &d.cuStreamSynchronize},
		{"cuGetErrorString", &d.cuGetErrorString},
		{"cuGetErrorName", &d.cuGetErrorName},
	}
}

// loadDriver loads and binds libcuda.so.1; its error wraps ErrNoDriver.
func loadDriver(getenv func(string) string) (*driver, error) {
	h, path, err := loadLibrary(libCUDA, "libcuda.so.1", getenv)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w: %v; install the NVIDIA driver, or name its directory in %s", ErrNoDriver, err, EnvLibs)
	}
	d := &driver{path: path}
	if err := bind(h, path, d.bindings()); err != nil {
		return nil, err
	}
	return d, nil
}

// Error is a failed CUDA driver, cuBLAS or NVRTC call.
type Error struct {
	Call string // the C function, e.g. "cuMemAlloc_v2"
	Code int    // its status code
	Name string // the code's name, e.g. "CUDA_ERROR_OUT_OF_MEMORY"
	Msg  string // the library's description of the code
}

func (e *Error) Error() string {
	if e.Msg == "" || e.Msg == e.Name {
		return fmt.Sprintf("cuda: %s: %s (%d)", e.Call, e.Name, e.Code)
	}
	return fmt.Sprintf("cuda: %s: %s (%d): %s", e.Call, e.Name, e.Code, e.Msg)
}

// check turns a CUresult into nil or an *Error naming call.
func (d *driver) check(call string, r cuResult) error {
	if r == 0 {
		return nil
	}
	e := &Error{Call: call, Code: int(r), Name: "CUDA_ERROR_UNKNOWN"}
	var s *byte
	if d.cuGetErrorName(r, &s) == 0 {
		e.Name = cString(s)
	}
	if d.cuGetErrorString(r, &s) == 0 {
		e.Msg = cString(s)
	}
	return e
}

// cString copies the NUL-terminated C string at p (nil gives "").
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

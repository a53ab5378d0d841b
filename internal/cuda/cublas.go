package cuda

import (
	"fmt"
	"unsafe"
)

// cublas holds the bound functions of libcublas.so.*.
type cublas struct {
	path string

	cublasCreate     func(h *uintptr) int32
	cublasDestroy    func(h uintptr) int32
	cublasSetStream  func(h uintptr, stream uintptr) int32
	cublasSetMath    func(h uintptr, mode int32) int32
	cublasSgemm      func(h uintptr, ta, tb int32, m, n, k int32, alpha unsafe.Pointer, a uint64, lda int32, b uint64, ldb int32, beta unsafe.Pointer, c uint64, ldc int32) int32
	cublasStatusName func(s int32) string
}

func (c *cublas) bindings() []binding {
	return []binding{
		{"cublasCreate_v2", &c.cublasCreate},
		{"cublasDestroy_v2", &c.cublasDestroy},
		{"cublasSetStream_v2", &c.cublasSetStream},
		{"cublasSetMathMode", &c.cublasSetMath},
		{"cublasSgemm_v2", &c.cublasSgemm},
		{"cublasGetStatusName", &c.cublasStatusName},
	}
}

// loadCUBLAS loads and binds libcublas.so.*, found as SearchDirs says.
func loadCUBLAS(getenv func(string) string) (*cublas, error) {
	h, path, err := loadLibrary(libCUBLAS, "", getenv)
	if err != nil {
		return nil, fmt.Errorf("cuda: cuBLAS (libcublas.so.*) not loadable: %v; install PyTorch with CUDA or the CUDA toolkit, or name the directory in %s", err, EnvLibs)
	}
	c := &cublas{path: path}
	if err := bind(h, path, c.bindings()); err != nil {
		return nil, err
	}
	return c, nil
}

// check turns a cublasStatus_t into nil or an *Error naming call.
func (c *cublas) check(call string, s int32) error {
	if s == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(s), Name: c.cublasStatusName(s)}
}

// cuBLAS constants (cublas_api.h).
const (
	cublasOpN            = 0
	cublasOpT            = 1
	cublasPedanticMath   = 2
	cublasTF32TensorMath = 3
)

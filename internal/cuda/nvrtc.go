package cuda

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// NVRTC compiles CUDA C to PTX. It needs libnvrtc.so.* but no GPU or driver.
type NVRTC struct {
	path string

	nvrtcVersion         func(major, minor *int32) int32
	nvrtcGetErrorString  func(r int32) string
	nvrtcCreateProgram   func(p *uintptr, src, name string, nHeaders int32, headers, includeNames unsafe.Pointer) int32
	nvrtcCompileProgram  func(p uintptr, nOpts int32, opts unsafe.Pointer) int32
	nvrtcGetPTXSize      func(p uintptr, n *uint64) int32
	nvrtcGetPTX          func(p uintptr, ptx *byte) int32
	nvrtcGetProgramLogSz func(p uintptr, n *uint64) int32
	nvrtcGetProgramLog   func(p uintptr, log *byte) int32
	nvrtcDestroyProgram  func(p *uintptr) int32
}

// LoadNVRTC loads libnvrtc.so.* (highest version first in each searched
// directory; see SearchDirs). getenv is os.Getenv when nil.
func LoadNVRTC(getenv func(string) string) (*NVRTC, error) {
	if getenv == nil {
		getenv = osGetenv
	}
	h, path, err := loadLibrary(libNVRTC, "", getenv)
	if err != nil {
		return nil, fmt.Errorf("cuda: NVRTC (libnvrtc.so.*) not loadable: %v; on Debian add the non-free component to apt's sources and install libnvrtc11.2, or name its directory in %s", err, EnvLibs)
	}
	n := &NVRTC{path: path}
	if err := bind(h, path, []binding{
		{"nvrtcVersion", &n.nvrtcVersion},
		{"nvrtcGetErrorString", &n.nvrtcGetErrorString},
		{"nvrtcCreateProgram", &n.nvrtcCreateProgram},
		{"nvrtcCompileProgram", &n.nvrtcCompileProgram},
		{"nvrtcGetPTXSize", &n.nvrtcGetPTXSize},
		{"nvrtcGetPTX", &n.nvrtcGetPTX},
		{"nvrtcGetProgramLogSize", &n.nvrtcGetProgramLogSz},
		{"nvrtcGetProgramLog", &n.nvrtcGetProgramLog},
		{"nvrtcDestroyProgram", &n.nvrtcDestroyProgram},
	}); err != nil {
		return nil, err
	}
	return n, nil
}

// Path is the file the library was loaded from.
func (n *NVRTC) Path() string { return n.path }

// Version is NVRTC's version, e.g. "11.8".
func (n *NVRTC) Version() (string, error) {
	var major, minor int32
	if err := n.check("nvrtcVersion", n.nvrtcVersion(&major, &minor)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d.%d", major, minor), nil
}

func (n *NVRTC) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(r), Name: n.nvrtcGetErrorString(r)}
}

// Compile compiles the CUDA C source src (named name in messages) with the
// nvrtc options opts (e.g. "--gpu-architecture=compute_75") and returns the
// PTX, without its trailing NUL. A compilation error includes NVRTC's log.
func (n *NVRTC) Compile(name, src string, opts ...string) ([]byte, error) {
	var prog uintptr
	if err := n.check("nvrtcCreateProgram", n.nvrtcCreateProgram(&prog, src, name, 0, nil, nil)); err != nil {
		return nil, err
	}
	defer n.nvrtcDestroyProgram(&prog)

	// opts as an array of C strings, pinned for the call.
	cs := make([][]byte, len(opts))
	ptrs := make([]*byte, len(opts)+1)
	var pin runtime.Pinner
	defer pin.Unpin()
	for i, o := range opts {
		cs[i] = append([]byte(o), 0)
		ptrs[i] = &cs[i][0]
		pin.Pin(ptrs[i])
	}
	pin.Pin(&ptrs[0])
	cerr := n.check("nvrtcCompileProgram", n.nvrtcCompileProgram(prog, int32(len(opts)), unsafe.Pointer(&ptrs[0])))
	if cerr != nil {
		var sz uint64
		if n.nvrtcGetProgramLogSz(prog, &sz) == 0 && sz > 1 {
			log := make([]byte, sz)
			if n.nvrtcGetProgramLog(prog, &log[0]) == 0 {
				return nil, fmt.Errorf("%w: %s: %s", cerr, name, strings.TrimRight(string(log), "\x00\n"))
			}
		}
		return nil, fmt.Errorf("%w: %s", cerr, name)
	}
	var sz uint64
	if err := n.check("nvrtcGetPTXSize", n.nvrtcGetPTXSize(prog, &sz)); err != nil {
		return nil, err
	}
	ptx := make([]byte, sz)
	if sz > 0 {
		if err := n.check("nvrtcGetPTX", n.nvrtcGetPTX(prog, &ptx[0])); err != nil {
			return nil, err
		}
	}
	for len(ptx) > 0 && ptx[len(ptx)-1] == 0 {
		ptx = ptx[:len(ptx)-1]
	}
	return ptx, nil
}

package cuda

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ebitengine/purego"
)

// ErrNoDriver is wrapped by Open's error when libcuda.so.1 cannot be loaded.
var ErrNoDriver = errors.New("no NVIDIA driver found (libcuda.so.1 not loadable)")

// loadLibrary dlopens the first loadable of: the matches of prefix in the
// ZOO_CUDA_LIBS directories, the bare soname (found by the system's dynamic
// loader, LD_LIBRARY_PATH included) when soname is not empty, then the
// matches in every other search directory. It returns the handle and the
// path loaded, or an error listing what was tried.
func loadLibrary(prefix, soname string, getenv func(string) string) (uintptr, string, error) {
	var tried []string
	try := func(p string) (uintptr, bool) {
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", p, err))
			return 0, false
		}
		return h, true
	}
	override := strings.Split(getenv(EnvLibs), ":")
	for _, p := range FindLibrary(prefix, override) {
		if h, ok := try(p); ok {
			return h, p, nil
		}
	}
	if soname != "" {
		if h, ok := try(soname); ok {
			return h, soname, nil
		}
	}
	for _, p := range FindLibrary(prefix, SearchDirs(getenv)) {
		if h, ok := try(p); ok {
			return h, p, nil
		}
	}
	if len(tried) == 0 {
		return 0, "", fmt.Errorf("no %s* in %s", prefix, strings.Join(SearchDirs(getenv), ":"))
	}
	return 0, "", errors.New(strings.Join(tried, "; "))
}

// binding names a C function and the Go function variable it fills.
type binding struct {
	name string
	fptr any
}

// bind resolves every symbol of bs in the library handle h (named lib in
// errors) and registers it; a missing symbol is an error, never a panic.
func bind(h uintptr, lib string, bs []binding) error {
	for _, b := range bs {
		addr, err := purego.Dlsym(h, b.name)
		if err != nil || addr == 0 {
			return fmt.Errorf("cuda: %s has no symbol %s (%v); the library is too old or not the one expected", lib, b.name, err)
		}
		purego.RegisterFunc(b.fptr, addr)
	}
	return nil
}

// osGetenv is os.Getenv, the getenv of real runs.
func osGetenv(k string) string { return os.Getenv(k) }

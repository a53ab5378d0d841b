package cuda

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// env returns a getenv reading m only.
func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// touch creates the files (relative to root) and their directories.
func touch(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not a library"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLibVersion(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
		ver  []int
	}{
		{"libcublas.so", true, []int{}},
		{"libcublas.so.12", true, []int{12}},
		{"libcublas.so.12.4.5.8", true, []int{12, 4, 5, 8}},
		{"libcublasLt.so.12", false, nil},
		{"libcublas.so.12.bak", false, nil},
		{"libcublas.so.", false, nil},
	}
	for _, tt := range tests {
		ver, ok := libVersion(libCUBLAS, tt.name)
		if ok != tt.ok || !slices.Equal(ver, tt.ver) {
			t.Errorf("libVersion(%q) = %v, %t; want %v, %t", tt.name, ver, ok, tt.ver, tt.ok)
		}
	}
}

func TestFindLibrary(t *testing.T) {
	root := t.TempDir()
	touch(t, root,
		"a/libcublas.so.11", "a/libcublas.so.12", "a/libcublas.so.12.4.5.8", "a/libcublasLt.so.12",
		"b/libcublas.so.13", "b/libnvrtc.so.13", "b/libnvrtc-builtins.so.13.0",
	)
	dirs := []string{filepath.Join(root, "missing"), filepath.Join(root, "a"), filepath.Join(root, "b")}
	tests := []struct {
		prefix string
		want   []string
	}{
		{libCUBLAS, []string{"a/libcublas.so.12.4.5.8", "a/libcublas.so.12", "a/libcublas.so.11", "b/libcublas.so.13"}},
		{libNVRTC, []string{"b/libnvrtc.so.13"}},
		{libCUDA, nil},
	}
	for _, tt := range tests {
		got := FindLibrary(tt.prefix, dirs)
		var want []string
		for _, w := range tt.want {
			want = append(want, filepath.Join(root, w))
		}
		if !slices.Equal(got, want) {
			t.Errorf("FindLibrary(%s) = %v, want %v", tt.prefix, got, want)
		}
	}
}

func TestSearchDirs(t *testing.T) {
	root := t.TempDir()
	venv := filepath.Join(root, "venv")
	site := filepath.Join(venv, "lib", "python3.11", "site-packages")
	touch(t, site, "nvidia/cublas/lib/libcublas.so.12", "nvidia/cuda_nvrtc/lib/libnvrtc.so.12", "torch/lib/libtorch.so")
	got := SearchDirs(env(map[string]string{
		EnvLibs:           "/override/one:/override/two",
		"LD_LIBRARY_PATH": "/ld/path:/override/one",
		"VIRTUAL_ENV":     venv,
	}))
	// The override comes first, LD_LIBRARY_PATH next, then the system
	// directories, then the wheel's nvidia/*/lib and torch/lib; no duplicates.
	wantPrefix := []string{"/override/one", "/override/two", "/ld/path", systemDirs[0]}
	if !slices.Equal(got[:len(wantPrefix)], wantPrefix) {
		t.Errorf("SearchDirs starts %v, want %v", got[:len(wantPrefix)], wantPrefix)
	}
	for _, w := range []string{"nvidia/cublas/lib", "nvidia/cuda_nvrtc/lib", "torch/lib"} {
		if !slices.Contains(got, filepath.Join(site, w)) {
			t.Errorf("SearchDirs = %v, want it to hold %s", got, filepath.Join(site, w))
		}
	}
	if i, j := slices.Index(got, systemDirs[len(systemDirs)-1]), slices.Index(got, filepath.Join(site, "nvidia/cublas/lib")); i > j {
		t.Errorf("the wheel's directories come before the system's: %v", got)
	}
	if n := len(got); n != len(slices.Compact(slices.Clone(got))) {
		t.Errorf("SearchDirs has duplicates: %v", got)
	}
}

// TestLoadLibraryErrors checks that a file that is not a library is tried
// and reported, and that nothing found says where it looked.
func TestLoadLibraryErrors(t *testing.T) {
	root := t.TempDir()
	touch(t, root, "libzoofake.so.1")
	_, _, err := loadLibrary("libzoofake.so", "", env(map[string]string{EnvLibs: root}))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "libzoofake.so.1")) {
		t.Errorf("loading a fake library: err = %v, want it to name the file tried", err)
	}
	_, _, err = loadLibrary("libzoonowhere.so", "", env(map[string]string{EnvLibs: root}))
	if err == nil || !strings.Contains(err.Error(), "no libzoonowhere.so* in "+root) {
		t.Errorf("loading a missing library: err = %v, want it to say where it looked", err)
	}
}

// TestOpenNoDriver runs where no NVIDIA driver is installed (CI): Open must
// fail with ErrNoDriver and say so plainly.
func TestOpenNoDriver(t *testing.T) {
	d, err := Open(Options{})
	if err == nil {
		d.Close()
		t.Skip("an NVIDIA driver and GPU are present; the no-driver path is not reachable here")
	}
	if !errors.Is(err, ErrNoDriver) {
		t.Skipf("a driver loaded but Open failed otherwise: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "no NVIDIA driver found (libcuda.so.1 not loadable)") || !strings.Contains(msg, EnvLibs) {
		t.Errorf("Open error = %q, want it to say no driver was found and mention %s", msg, EnvLibs)
	}
}

func TestPackArgs(t *testing.T) {
	if _, err := packArgs([]any{Buffer{ptr: 1}, 3, int32(4), uint32(5), int64(6), uint64(7), float32(8), float64(9)}); err != nil {
		t.Errorf("packArgs of every supported type: %v", err)
	}
	for _, bad := range []any{1 << 40, uint8(2), "x"} {
		if _, err := packArgs([]any{bad}); err == nil {
			t.Errorf("packArgs(%T %v): no error, want one", bad, bad)
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Call: "cuMemAlloc_v2", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Msg: "out of memory"}, "cuda: cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory"},
		{Error{Call: "cublasSgemm_v2", Code: 7, Name: "CUBLAS_STATUS_INVALID_VALUE"}, "cuda: cublasSgemm_v2: CUBLAS_STATUS_INVALID_VALUE (7)"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestNVRTC(t *testing.T) {
	n, err := LoadNVRTC(nil)
	if err != nil {
		t.Skipf("NVRTC not installed (%v); CI installs libnvrtc11.2", err)
	}
	ptx, err := n.Compile("axpy.cu", `extern "C" __global__ void axpy(float a, const float* x, float* y, int n) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) y[i] += a * x[i];
}`, "--gpu-architecture=compute_75")
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if s := string(ptx); !strings.Contains(s, ".entry axpy") || !strings.Contains(s, ".target sm_75") {
		t.Errorf("PTX lacks the entry or target:\n%s", s)
	}
	_, err = n.Compile("broken.cu", `extern "C" __global__ void f() { undeclared(); }`)
	if err == nil || !strings.Contains(err.Error(), "undeclared") || !strings.Contains(err.Error(), "nvrtcCompileProgram") {
		t.Errorf("Compile of broken code: err = %v, want the call and NVRTC's log", err)
	}
}

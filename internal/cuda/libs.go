package cuda

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// EnvLibs is the environment variable naming directories (colon-separated)
// searched first for libcuda, libcublas and libnvrtc.
const EnvLibs = "ZOO_CUDA_LIBS"

// Library file name prefixes: a library matches when its file name is the
// prefix itself or the prefix followed by a dotted version.
const (
	libCUDA   = "libcuda.so"
	libCUBLAS = "libcublas.so"
	libNVRTC  = "libnvrtc.so"
)

// systemDirs are the usual homes of the driver and the toolkit's libraries.
var systemDirs = []string{
	"/usr/lib/x86_64-linux-gnu",
	"/usr/lib/aarch64-linux-gnu",
	"/usr/lib64",
	"/usr/lib",
	"/usr/local/nvidia/lib64",
	"/usr/local/cuda/lib64",
	"/usr/local/cuda/targets/x86_64-linux/lib",
	"/usr/lib/wsl/lib",
}

// pythonSitePatterns are glob patterns of Python package directories where a
// pip-installed PyTorch keeps its CUDA libraries, under nvidia/*/lib (or
// torch/lib for older wheels). $HOME, $VIRTUAL_ENV and $CONDA_PREFIX are
// expanded from the environment.
var pythonSitePatterns = []string{
	"$VIRTUAL_ENV/lib/python3*/site-packages",
	"$CONDA_PREFIX/lib/python3*/site-packages",
	"$HOME/.local/lib/python3*/site-packages",
	"/usr/local/lib/python3*/dist-packages",
	"/usr/local/lib/python3*/site-packages",
	"/usr/lib/python3/dist-packages",
	"/usr/lib/python3*/site-packages",
	"/opt/conda/lib/python3*/site-packages",
}

// SearchDirs returns the directories searched for the CUDA libraries, in
// order: those in ZOO_CUDA_LIBS, LD_LIBRARY_PATH, the system's library
// directories, then every existing nvidia/*/lib and torch/lib directory of
// a Python installation. getenv reads the environment (os.Getenv in use;
// tests pass their own).
func SearchDirs(getenv func(string) string) []string {
	var dirs []string
	add := func(d string) {
		if d != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, v := range []string{EnvLibs, "LD_LIBRARY_PATH"} {
		for _, d := range strings.Split(getenv(v), ":") {
			add(d)
		}
	}
	for _, d := range systemDirs {
		add(d)
	}
	for _, p := range pythonSitePatterns {
		p = os.Expand(p, getenv)
		if !filepath.IsAbs(p) || strings.HasPrefix(p, "/lib/") {
			continue // the variable was unset
		}
		sites, _ := filepath.Glob(p)
		for _, site := range sites {
			libs, _ := filepath.Glob(filepath.Join(site, "nvidia", "*", "lib"))
			slices.Sort(libs)
			for _, d := range libs {
				add(d)
			}
			if st, err := os.Stat(filepath.Join(site, "torch", "lib")); err == nil && st.IsDir() {
				add(filepath.Join(site, "torch", "lib"))
			}
		}
	}
	return dirs
}

// FindLibrary returns the paths of the files named prefix or prefix.VERSION
// (libcublas.so.12, libcublas.so.12.4.5.8) in dirs, in the order of dirs and,
// within one directory, highest version first. Missing directories are
// skipped.
func FindLibrary(prefix string, dirs []string) []string {
	var out []string
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		type cand struct {
			path string
			ver  []int
		}
		var cs []cand
		for _, e := range ents {
			v, ok := libVersion(prefix, e.Name())
			if !ok || e.IsDir() {
				continue
			}
			cs = append(cs, cand{filepath.Join(d, e.Name()), v})
		}
		slices.SortFunc(cs, func(a, b cand) int {
			if c := slices.Compare(b.ver, a.ver); c != 0 {
				return c
			}
			return cmp.Compare(a.path, b.path)
		})
		for _, c := range cs {
			out = append(out, c.path)
		}
	}
	return out
}

// libVersion parses name as prefix[.N[.N…]]; it reports whether name
// matches and the version numbers (none for the bare prefix).
func libVersion(prefix, name string) ([]int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return nil, false
	}
	if rest == "" {
		return []int{}, true
	}
	if rest[0] != '.' {
		return nil, false
	}
	var v []int
	for _, f := range strings.Split(rest[1:], ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}

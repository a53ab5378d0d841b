package kernels

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/internal/cuda"
)

// TestPTXUpToDate regenerates every module's PTX with the NVRTC at hand and
// compares it with the committed file. It needs libnvrtc (CI installs
// Debian's libnvrtc11.2) and the same NVRTC release as the committed PTX;
// ZOO_NVRTC_REQUIRED=1 turns a skip into a failure.
func TestPTXUpToDate(t *testing.T) {
	skip := t.Skipf
	if os.Getenv("ZOO_NVRTC_REQUIRED") == "1" {
		skip = t.Fatalf
	}
	n, err := cuda.LoadNVRTC(nil)
	if err != nil {
		skip("cannot check the committed PTX: %v", err)
		return
	}
	for _, m := range Modules() {
		t.Run(m, func(t *testing.T) {
			want, err := PTX(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Compile(n, m)
			if err != nil {
				t.Fatal(err)
			}
			if rg, rw := release(got), release(want); rg != rw {
				skip("NVRTC %s at hand, the committed PTX is from %s: regenerate with that release to compare", rg, rw)
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ptx/%s.ptx is stale: src/%s.cu changed; run go generate ./internal/cuda/kernels and commit the PTX", m, m)
			}
		})
	}
}

var releaseRE = regexp.MustCompile(`Cuda compilation tools, release ([0-9.]+), V([0-9.]+)`)

// release is the compiler version named in a PTX header.
func release(ptx []byte) string {
	m := releaseRE.FindSubmatch(ptx)
	if m == nil {
		return "unknown"
	}
	return string(m[2])
}

// TestPTXEntries checks that every kernel of every source is an entry of
// its committed PTX, for the committed architecture.
func TestPTXEntries(t *testing.T) {
	mods := Modules()
	if len(mods) == 0 {
		t.Fatal("no kernel sources embedded")
	}
	for _, m := range mods {
		src, err := Source(m)
		if err != nil {
			t.Fatal(err)
		}
		ptx, err := PTX(m)
		if err != nil {
			t.Fatal(err)
		}
		entries := Entries(src)
		if len(entries) == 0 {
			t.Errorf("%s.cu defines no kernels", m)
		}
		for _, e := range entries {
			if !bytes.Contains(ptx, []byte(".entry "+e+"(")) {
				t.Errorf("ptx/%s.ptx has no entry %s", m, e)
			}
		}
		if target := ".target sm_" + strings.TrimPrefix(Arch, "compute_"); !bytes.Contains(ptx, []byte(target)) {
			t.Errorf("ptx/%s.ptx is not for %s", m, target)
		}
	}
}

func TestElementwise(t *testing.T) {
	for _, n := range []int{0, 1, Block - 1, Block, Block + 1, 1000003, MaxGrid * Block, MaxGrid*Block + 1, 1 << 31} {
		grid, block, err := Elementwise(n)
		if err != nil {
			t.Fatalf("Elementwise(%d): %v", n, err)
		}
		threads := grid.X * block.X
		switch {
		case block.X != Block || block.Y != 1 || block.Z != 1:
			t.Errorf("Elementwise(%d) block = %v, want {%d 1 1}", n, block, Block)
		case grid.X < 1 || grid.X > MaxGrid || grid.Y != 1 || grid.Z != 1:
			t.Errorf("Elementwise(%d) grid = %v, want 1 ≤ X ≤ %d", n, grid, MaxGrid)
		case n <= MaxGrid*Block && threads < n:
			t.Errorf("Elementwise(%d) has %d threads, fewer than elements", n, threads)
		case n <= MaxGrid*Block && threads-n >= Block && n > 0:
			t.Errorf("Elementwise(%d) has %d threads: a whole idle block", n, threads)
		case n > MaxGrid*Block && grid.X != MaxGrid:
			t.Errorf("Elementwise(%d) grid = %d, want the cap %d (grid-stride loop)", n, grid.X, MaxGrid)
		}
	}
	if _, _, err := Elementwise(-1); err == nil {
		t.Error("Elementwise(-1): no error")
	}
}

func TestPerChannel(t *testing.T) {
	if ReduceBlock&(ReduceBlock-1) != 0 || ReduceBlock > 1024 {
		t.Fatalf("ReduceBlock = %d: the tree reductions need a power of two ≤ 1024", ReduceBlock)
	}
	for _, c := range []int{1, 64, 512} {
		grid, block, err := PerChannel(c)
		if err != nil || grid.X != c || block.X != ReduceBlock {
			t.Errorf("PerChannel(%d) = %v, %v, %v; want {%d 1 1}, {%d 1 1}", c, grid, block, err, c, ReduceBlock)
		}
	}
	if _, _, err := PerChannel(0); err == nil {
		t.Error("PerChannel(0): no error")
	}
}

func ExampleEntries() {
	src, _ := Source("elementwise")
	fmt.Println(Entries(src))
	// Output: [relu relu_grad dropout add_bias_rows sum_rows]
}

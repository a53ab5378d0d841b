package cifar10

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	f := newFake(cifar100Spec, 4)
	dir := f.writeDir(t, t.TempDir(), cifar100Spec.dir)
	bad := f.checks()
	bad.records["test.bin"] = 5
	tests := []struct {
		name     string
		opts     Options
		checksum string // prefix of Info.Checksum
	}{
		{"verified", Options{checks: f.checks()}, "ok: size of 2 file(s)"},
		{"mismatch", Options{checks: bad}, "MISMATCH: cifar10: test.bin: 12296 bytes, want 15370"},
		{"skipped", Options{SkipChecksum: true}, "not checked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Inspect(dir, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(info.Checksum, tc.checksum) {
				t.Errorf("Checksum = %q, want it to begin %q", info.Checksum, tc.checksum)
			}
			if info.Dataset != "cifar100" || len(info.Classes) != 100 || len(info.Splits) != 2 {
				t.Fatalf("Info = %s, %d classes, %d splits; want cifar100, 100, 2", info.Dataset, len(info.Classes), len(info.Splits))
			}
			for i, split := range []Split{Train, Test} {
				s := info.Splits[i]
				images, labels, _ := f.want(split)
				if s.Split != split || s.Images != len(labels) {
					t.Errorf("split %d: %v with %d images, want %v with %d", i, s.Split, s.Images, split, len(labels))
				}
				perClass := make([]int, 100)
				for _, l := range labels {
					perClass[l]++
				}
				if !slices.Equal(s.PerClass, perClass) {
					t.Errorf("%v: PerClass = %v, want %v", split, s.PerClass, perClass)
				}
				for c := range 3 {
					var sum, sq float64
					n := 0
					for k, v := range images {
						if k%ImageSize/1024 == c {
							x := float64(v) / 255
							sum, sq, n = sum+x, sq+x*x, n+1
						}
					}
					mean := sum / float64(n)
					std := math.Sqrt(sq/float64(n) - mean*mean)
					if math.Abs(s.Mean[c]-mean) > 1e-12 || math.Abs(s.Std[c]-std) > 1e-12 {
						t.Errorf("%v channel %d: mean %g std %g, want %g %g", split, c, s.Mean[c], s.Std[c], mean, std)
					}
				}
			}
		})
	}
}

// TestInspectReal checks the loader on the real CIFAR-10 tarball of the
// development machines (../shared); it is skipped where that file is absent.
func TestInspectReal(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "data", "cifar-10-binary.tar.gz")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no real CIFAR-10 here (%v)", err)
	}
	if testing.Short() {
		t.Skip("reads 170 MB; skipped in -short mode")
	}
	info, err := Inspect(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.Checksum, "ok: md5 of 6 file(s)") {
		t.Errorf("Checksum = %q, want ok for 6 files", info.Checksum)
	}
	tests := []struct {
		perClass int
		mean     [3]float64
		std      [3]float64 // zero: not pinned
	}{
		{5000, [3]float64{0.4914, 0.4822, 0.4465}, [3]float64{0.2470, 0.2435, 0.2616}},
		{1000, [3]float64{0.4942, 0.4851, 0.4504}, [3]float64{}},
	}
	for i, tc := range tests {
		s := info.Splits[i]
		for c, n := range s.PerClass {
			if n != tc.perClass {
				t.Errorf("%v class %d: %d images, want %d", s.Split, c, n, tc.perClass)
			}
		}
		for c := range 3 {
			if math.Abs(s.Mean[c]-tc.mean[c]) > 5e-5 {
				t.Errorf("%v channel %d mean = %.5f, want %.4f", s.Split, c, s.Mean[c], tc.mean[c])
			}
			if tc.std[c] != 0 && math.Abs(s.Std[c]-tc.std[c]) > 5e-5 {
				t.Errorf("%v channel %d std = %.5f, want %.4f", s.Split, c, s.Std[c], tc.std[c])
			}
		}
	}
	train, err := Load(path, Train, Options{})
	if err != nil {
		t.Fatal(err)
	}
	img := train.Image(0)
	if got := [4]int{train.Labels[0], int(img[0]), int(img[1024]), int(img[2048])}; got != [4]int{6, 59, 62, 63} {
		t.Errorf("first label and pixel (0,0) RGB = %v, want [6 59 62 63]", got)
	}
	test, err := Load(path, Test, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := test.Labels[:10], []int{3, 8, 8, 0, 6, 6, 1, 6, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("test labels begin %v, want %v", got, want)
	}
}

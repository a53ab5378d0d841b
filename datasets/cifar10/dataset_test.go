package cifar10

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadLayouts(t *testing.T) {
	for _, sp := range []*spec{cifar10Spec, cifar100Spec} {
		f := newFake(sp, 3)
		layouts := []struct {
			name string
			path func(t *testing.T) string
		}{
			{"folder", func(t *testing.T) string { return f.writeDir(t, t.TempDir(), sp.dir) }},
			{"parent", func(t *testing.T) string {
				dir := t.TempDir()
				f.writeDir(t, dir, sp.dir)
				return dir
			}},
			{"tarball", func(t *testing.T) string { return f.writeTar(t, t.TempDir()) }},
			{"parent of tarball", func(t *testing.T) string {
				dir := t.TempDir()
				f.writeTar(t, dir)
				return dir
			}},
			{"cache", func(t *testing.T) string {
				t.Setenv("ZOO_DATA", t.TempDir())
				f.writeTar(t, os.Getenv("ZOO_DATA"))
				return ""
			}},
		}
		for _, lay := range layouts {
			for _, split := range []Split{Train, Test} {
				t.Run(sp.name+"/"+lay.name+"/"+split.String(), func(t *testing.T) {
					d, err := Load(lay.path(t), split, Options{checks: f.checks()})
					if err != nil {
						t.Fatal(err)
					}
					images, labels, coarse := f.want(split)
					if d.Name != sp.name {
						t.Errorf("Name = %q, want %q", d.Name, sp.name)
					}
					if !bytes.Equal(d.Images, images) {
						t.Errorf("Images differ from the files' pixels (len %d, want %d)", len(d.Images), len(images))
					}
					if !slices.Equal(d.Labels, labels) {
						t.Errorf("Labels = %v, want %v", d.Labels, labels)
					}
					if !slices.Equal(d.Coarse, coarse) {
						t.Errorf("Coarse = %v, want %v", d.Coarse, coarse)
					}
					if len(d.Classes) != sp.classes || d.Classes[1] != "class1" {
						t.Errorf("Classes = %v, want %d names class0…", d.Classes, sp.classes)
					}
					if len(d.CoarseClasses) != sp.coarse {
						t.Errorf("len(CoarseClasses) = %d, want %d", len(d.CoarseClasses), sp.coarse)
					}
				})
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	f10, f100 := newFake(cifar10Spec, 3), newFake(cifar100Spec, 3)
	// edit returns a folder holding f's files with name replaced by b (or
	// removed when b is nil).
	edit := func(f *fake, name string, b []byte) func(t *testing.T) string {
		return func(t *testing.T) string {
			dir := f.writeDir(t, t.TempDir(), f.sp.dir)
			path := filepath.Join(dir, name)
			if b == nil {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				return dir
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}
	}
	with := func(b []byte, i int, v byte) []byte {
		b = slices.Clone(b)
		b[i] = v
		return b
	}
	file := func(name string, b []byte) func(t *testing.T) string {
		return func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}
	}
	both := func(t *testing.T) string {
		dir := t.TempDir()
		f10.writeDir(t, dir, cifar10Spec.dir)
		f100.writeDir(t, dir, cifar100Spec.dir)
		return dir
	}
	tar10 := f10.tarGz(t)
	tests := []struct {
		name     string
		path     func(t *testing.T) string
		opts     Options
		checksum bool   // want errors.Is(err, ErrChecksum)
		want     string // in the message
	}{
		{"md5 mismatch", edit(f10, "data_batch_2.bin", with(f10.files["data_batch_2.bin"], 5, 1)), Options{checks: f10.checks()}, true, "data_batch_2.bin: md5"},
		{"official md5", func(t *testing.T) string { return f10.writeDir(t, t.TempDir(), "x") }, Options{}, true, "SkipChecksum"},
		{"cifar100 wrong size", func(t *testing.T) string { return f100.writeDir(t, t.TempDir(), "x") }, Options{}, true, "train.bin: 9222 bytes, want 153700000"},
		{"truncated file", edit(f10, "data_batch_1.bin", f10.files["data_batch_1.bin"][:100]), Options{SkipChecksum: true}, false, "data_batch_1.bin: 100 bytes is not a whole number of 3073-byte"},
		{"empty file", edit(f10, "data_batch_1.bin", []byte{}), Options{SkipChecksum: true}, false, "0 bytes is not a whole number"},
		{"label out of range", edit(f10, "data_batch_4.bin", with(f10.files["data_batch_4.bin"], 3073, 10)), Options{SkipChecksum: true}, false, "data_batch_4.bin: record 1 has label 10, want 0..9"},
		{"fine label out of range", edit(f100, "train.bin", with(f100.files["train.bin"], 1, 100)), Options{SkipChecksum: true}, false, "train.bin: record 0 has label 100, want 0..99"},
		{"coarse label out of range", edit(f100, "train.bin", with(f100.files["train.bin"], 3074, 20)), Options{SkipChecksum: true}, false, "record 1 has coarse label 20, want 0..19"},
		{"missing batch", edit(f10, "data_batch_3.bin", nil), Options{checks: f10.checks()}, false, "has no data_batch_3.bin"},
		{"missing names", edit(f10, "batches.meta.txt", nil), Options{SkipChecksum: true}, false, "has no batches.meta.txt"},
		{"wrong names", edit(f10, "batches.meta.txt", []byte("a\nb\n")), Options{SkipChecksum: true}, false, "2 class names, want 10"},
		{"no data", func(t *testing.T) string { return t.TempDir() }, Options{}, false, "no CIFAR-10 or CIFAR-100 binary data under"},
		{"no such path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, Options{}, false, "no such file"},
		{"unknown data set", func(t *testing.T) string { return "" }, Options{Dataset: "mnist"}, false, `unknown data set "mnist"`},
		{"both data sets", both, Options{SkipChecksum: true}, false, "set Options.Dataset"},
		{"truncated tarball", file("cifar-10-binary.tar.gz", tar10[:len(tar10)/2]), Options{SkipChecksum: true}, false, "truncated or corrupt"},
		{"not gzip", file("x.tar.gz", []byte("hello")), Options{}, false, "not a .tar.gz"},
		{"python version", file("x.tar.gz", (&fake{sp: cifar10Spec, files: map[string][]byte{"batches.meta.txt": []byte("a")}}).tarGz(t)), Options{}, false, "not the Python or MATLAB one"},
		{"sample is cifar10", func(t *testing.T) string { return "sample" }, Options{Dataset: "cifar100"}, false, "CIFAR-10 only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.CacheDir = t.TempDir()
			_, err := Load(tc.path(t), Train, tc.opts)
			if err == nil {
				t.Fatalf("Load: no error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: %v\nwant it to contain %q", err, tc.want)
			}
			if got := errors.Is(err, ErrChecksum); got != tc.checksum {
				t.Errorf("errors.Is(err, ErrChecksum) = %v, want %v", got, tc.checksum)
			}
		})
	}
}

func TestSkipChecksumCustomData(t *testing.T) {
	f := newFake(cifar10Spec, 2)
	dir := f.writeDir(t, t.TempDir(), cifar10Spec.dir)
	for _, name := range []string{"data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(dir, Train, Options{}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Load checked: err = %v, want ErrChecksum", err)
	}
	d, err := Load(dir, Train, Options{SkipChecksum: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 {
		t.Errorf("Len() = %d, want 2 (data_batch_1.bin only)", d.Len())
	}
}

func TestSample(t *testing.T) {
	tests := []struct {
		split      Split
		perClass   int
		labels     []int
		firstPixel [3]uint8
	}{
		{Train, 200, []int{6, 9, 9, 4, 1, 1, 2, 7, 8, 3}, [3]uint8{59, 62, 63}},
		{Test, 50, []int{3, 8, 8, 0, 6, 6, 1, 6, 3, 1}, [3]uint8{158, 112, 49}},
	}
	for _, tc := range tests {
		t.Run(tc.split.String(), func(t *testing.T) {
			start := time.Now()
			d, err := Sample(tc.split)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Sample took %v, want well under a second", took)
			}
			count := make([]int, 10)
			for _, l := range d.Labels {
				count[l]++
			}
			for c, n := range count {
				if n != tc.perClass {
					t.Errorf("class %d (%s): %d images, want %d", c, d.Classes[c], n, tc.perClass)
				}
			}
			if got := d.Labels[:10]; !slices.Equal(got, tc.labels) {
				t.Errorf("first labels = %v, want %v", got, tc.labels)
			}
			img := d.Image(0)
			if got := [3]uint8{img[0], img[1024], img[2048]}; got != tc.firstPixel {
				t.Errorf("pixel (0,0) of image 0 = %v, want %v", got, tc.firstPixel)
			}
			if d.Classes[6] != "frog" {
				t.Errorf("Classes[6] = %q, want frog", d.Classes[6])
			}
		})
	}
}

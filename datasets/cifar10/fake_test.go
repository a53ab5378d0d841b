package cifar10

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fake is a small generated data set in the official layout.
type fake struct {
	sp    *spec
	files map[string][]byte // base name → content
	n     int               // records per data file
}

// newFake builds n records per data file of sp. Record i of the file with
// index f has fine label (i+f) % classes, coarse label i % 20 and pixel
// bytes (i·7 + f·13 + k) % 256.
func newFake(sp *spec, n int) *fake {
	f := &fake{sp: sp, files: map[string][]byte{}, n: n}
	for fi, name := range append(append([]string{}, sp.train...), sp.test...) {
		var b []byte
		for i := range n {
			if sp.coarse > 0 {
				b = append(b, byte(i%sp.coarse))
			}
			b = append(b, byte((i+fi)%sp.classes))
			for k := range ImageSize {
				b = append(b, byte(i*7+fi*13+k))
			}
		}
		f.files[name] = b
	}
	f.files[sp.meta] = []byte(classNames("class", sp.classes))
	if sp.coarseMeta != "" {
		f.files[sp.coarseMeta] = []byte(classNames("super", sp.coarse))
	}
	return f
}

func classNames(prefix string, n int) string {
	var s strings.Builder
	for i := range n {
		fmt.Fprintf(&s, "%s%d\n", prefix, i)
	}
	return s.String() + "\n"
}

// checks returns checks that the fake's files pass: their md5 sums
// (CIFAR-10) or record counts (CIFAR-100), as the official ones are.
func (f *fake) checks() *checks {
	c := &checks{md5: map[string]string{}, records: map[string]int{}}
	for name, b := range f.files {
		if !strings.HasSuffix(name, ".bin") {
			continue
		}
		if f.sp == cifar100Spec {
			c.records[name] = f.n
			continue
		}
		sum := md5.Sum(b)
		c.md5[name] = hex.EncodeToString(sum[:])
	}
	return c
}

// writeDir writes the files into dir/sub and returns dir/sub.
func (f *fake) writeDir(t *testing.T, dir, sub string) string {
	t.Helper()
	path := filepath.Join(dir, sub)
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range f.files {
		if err := os.WriteFile(filepath.Join(path, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// tarGz returns the files packed as the official tarball is, under sp.dir.
func (f *fake) tarGz(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: f.sp.dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	for _, name := range append(append([]string{f.sp.meta, f.sp.coarseMeta}, f.sp.test...), f.sp.train...) {
		b, ok := f.files[name]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.sp.dir + "/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeTar writes the tarball to dir/sp.tarball and returns its path.
func (f *fake) writeTar(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, f.sp.tarball)
	if err := os.WriteFile(path, f.tarGz(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// want returns the images (N, 3, 32, 32), labels and coarse labels the
// fake's split should load as.
func (f *fake) want(split Split) (images []uint8, labels, coarse []int) {
	for _, name := range f.sp.files(split) {
		b := f.files[name]
		rs := f.sp.recordSize()
		for i := 0; i < len(b); i += rs {
			if f.sp.coarse > 0 {
				coarse = append(coarse, int(b[i]))
			}
			labels = append(labels, int(b[i+rs-ImageSize-1]))
			images = append(images, b[i+rs-ImageSize:i+rs]...)
		}
	}
	return images, labels, coarse
}

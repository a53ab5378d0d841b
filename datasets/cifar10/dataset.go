package cifar10

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Image geometry shared by CIFAR-10 and CIFAR-100.
const (
	Channels  = 3
	Height    = 32
	Width     = 32
	ImageSize = Channels * Height * Width // 3072 bytes per image
)

// ErrChecksum is wrapped by every error about a file whose md5 or size does
// not match the official release; test it with errors.Is.
var ErrChecksum = errors.New("checksum mismatch")

// Dataset is one split of CIFAR-10 or CIFAR-100 in memory.
type Dataset struct {
	Name          string   // "cifar10" or "cifar100"
	Images        []uint8  // (N, 3, 32, 32) raw bytes, row-major, R then G then B planes
	Labels        []int    // (N) class index in [0, len(Classes)) (CIFAR-100: fine label)
	Coarse        []int    // (N) CIFAR-100 coarse labels in [0, 20); nil for CIFAR-10
	Classes       []string // class names (CIFAR-100: the 100 fine names)
	CoarseClasses []string // CIFAR-100's 20 coarse names; nil for CIFAR-10
}

// Len returns the number of images N.
func (d *Dataset) Len() int { return len(d.Labels) }

// Image returns image i as (3, 32, 32) bytes, sharing d.Images.
func (d *Dataset) Image(i int) []uint8 { return d.Images[i*ImageSize : (i+1)*ImageSize] }

// Split selects the training or the test images.
type Split int

// The two splits of both data sets.
const (
	Train Split = iota
	Test
)

// String returns "train" or "test".
func (s Split) String() string {
	if s == Test {
		return "test"
	}
	return "train"
}

// Options tune Load. The zero value detects the data set, verifies checksums,
// uses the default cache folder and never downloads.
type Options struct {
	// Dataset is "cifar10" or "cifar100"; "" detects it from the files found
	// (and means "cifar10" when downloading).
	Dataset string
	// SkipChecksum turns off the md5 and exact-size checks against the
	// official release, for custom data in the official layout. It also lets
	// a CIFAR-10 training split be any of data_batch_1..5.bin that exist.
	SkipChecksum bool
	// CacheDir is where Load("") looks for data and downloads it; "" means
	// $ZOO_DATA, else os.UserCacheDir()/gozoo.
	CacheDir string
	// Download lets Load fetch the official tarball into the cache folder
	// (or into the folder passed as path) when no data is found there.
	Download bool
	// DownloadURL replaces the official URL (for tests and mirrors).
	DownloadURL string
	// Progress receives a download progress bar; nil is silent.
	Progress io.Writer

	// checks replaces the official checks (tests only).
	checks *checks
}

// checks are what a verified load compares files against.
type checks struct {
	md5     map[string]string // base name → hex md5 (data files and tarball)
	records map[string]int    // base name → record count, for files without a known md5
}

// spec describes one data set's official binary release.
type spec struct {
	name       string   // "cifar10"
	title      string   // "CIFAR-10", for messages
	dir        string   // folder inside the tarball
	tarball    string   // official tarball name
	url        string   // official download URL
	train      []string // training files, in order
	test       []string // test files
	meta       string   // class names file
	coarseMeta string   // coarse class names file ("" for CIFAR-10)
	classes    int      // number of (fine) classes
	coarse     int      // number of coarse classes (0 for CIFAR-10)
	official   checks
}

// recordSize is the size in bytes of one record: labels then pixels.
func (s *spec) recordSize() int {
	if s.coarse > 0 {
		return 2 + ImageSize
	}
	return 1 + ImageSize
}

// files returns the data files of split.
func (s *spec) files(split Split) []string {
	if split == Test {
		return s.test
	}
	return s.train
}

var cifar10Spec = &spec{
	name:    "cifar10",
	title:   "CIFAR-10",
	dir:     "cifar-10-batches-bin",
	tarball: "cifar-10-binary.tar.gz",
	url:     "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
	train:   []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
	test:    []string{"test_batch.bin"},
	meta:    "batches.meta.txt",
	classes: 10,
	official: checks{md5: map[string]string{
		"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
		"data_batch_1.bin":       "5dd7e06a14cb22eb9f671a540d1b7c25",
		"data_batch_2.bin":       "5ea93a67294ea407fff1d09f752e9692",
		"data_batch_3.bin":       "942cd6a4bcdd0dd3c604fbe906cb4421",
		"data_batch_4.bin":       "ae636b3ba5c66a11e91e8cb52e771fcb",
		"data_batch_5.bin":       "53f37980c15c3d472c316c40844f3f0d",
		"test_batch.bin":         "803d5f7f4d78ea53de84dbe85f74fb6d",
	}},
}

var cifar100Spec = &spec{
	name:       "cifar100",
	title:      "CIFAR-100",
	dir:        "cifar-100-binary",
	tarball:    "cifar-100-binary.tar.gz",
	url:        "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
	train:      []string{"train.bin"},
	test:       []string{"test.bin"},
	meta:       "fine_label_names.txt",
	coarseMeta: "coarse_label_names.txt",
	classes:    100,
	coarse:     20,
	official: checks{
		md5:     map[string]string{"cifar-100-binary.tar.gz": "03b5dce01913d631647c71ecec9e9cb8"},
		records: map[string]int{"train.bin": 50000, "test.bin": 10000},
	},
}

// specsFor returns the data sets Options.Dataset allows.
func specsFor(name string) ([]*spec, error) {
	switch name {
	case "":
		return []*spec{cifar10Spec, cifar100Spec}, nil
	case "cifar10":
		return []*spec{cifar10Spec}, nil
	case "cifar100":
		return []*spec{cifar100Spec}, nil
	}
	return nil, fmt.Errorf("cifar10: unknown data set %q; use \"cifar10\", \"cifar100\" or \"\" to detect", name)
}

// mode is how a load verifies its files.
type mode int

const (
	verifyOfficial mode = iota // md5s and sizes of the official release
	verifyNone                 // structure only (SkipChecksum)
	verifySample               // the embedded sample, whose tarball md5 was checked
)

// Load reads one split.
//
// path is an extracted folder (cifar-10-batches-bin, cifar-100-binary, or
// the folder above either), a tarball (.tar.gz or .tgz, read as a stream),
// "sample" for the embedded offline sample (use "./sample" for a folder of
// that name), or "" for the cache folder (see Options.CacheDir), where the
// official tarball is downloaded if no data is there and opts.Download is set.
func Load(path string, split Split, opts Options) (*Dataset, error) {
	got, _, err := load(path, []Split{split}, opts)
	if err != nil {
		return nil, err
	}
	return got[0], nil
}

// load reads splits from path in one pass and says how they were verified.
func load(path string, splits []Split, opts Options) ([]*Dataset, string, error) {
	specs, err := specsFor(opts.Dataset)
	if err != nil {
		return nil, "", err
	}
	if path == "sample" {
		return loadSample(splits, specs)
	}
	m := verifyOfficial
	if opts.SkipChecksum {
		m = verifyNone
	}
	if path == "" {
		dir, err := cacheDir(opts)
		if err != nil {
			return nil, "", err
		}
		return loadDir(dir, splits, specs, m, opts)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("cifar10: %w; pass an extracted folder, a tarball, \"sample\", or \"\" for the cache folder", err)
	}
	if fi.IsDir() {
		return loadDir(path, splits, specs, m, opts)
	}
	return loadTarFile(path, splits, specs, m, opts)
}

// loadDir finds data in dir (the data folder itself, its subfolder, or a
// tarball in it), downloading into dir when none is there and opts.Download is set.
func loadDir(dir string, splits []Split, specs []*spec, m mode, opts Options) ([]*Dataset, string, error) {
	type found struct {
		sp     *spec
		folder string // data folder, or "" when tar is set
		tar    string
	}
	var hits []found
	for _, sp := range specs {
		switch {
		case hasAny(dir, sp):
			hits = append(hits, found{sp: sp, folder: dir})
		case hasAny(filepath.Join(dir, sp.dir), sp):
			hits = append(hits, found{sp: sp, folder: filepath.Join(dir, sp.dir)})
		case isFile(filepath.Join(dir, sp.tarball)):
			hits = append(hits, found{sp: sp, tar: filepath.Join(dir, sp.tarball)})
		}
	}
	switch {
	case len(hits) > 1:
		return nil, "", fmt.Errorf("cifar10: both CIFAR-10 and CIFAR-100 data under %s; set Options.Dataset (--dataset) to choose", dir)
	case len(hits) == 1 && hits[0].folder != "":
		return loadFolder(hits[0].folder, splits, hits[0].sp, m, opts)
	case len(hits) == 1:
		return loadTarFile(hits[0].tar, splits, []*spec{hits[0].sp}, m, opts)
	case opts.Download:
		tarPath, err := download(dir, specs[0], opts)
		if err != nil {
			return nil, "", err
		}
		return loadTarFile(tarPath, splits, specs[:1], m, opts)
	}
	return nil, "", fmt.Errorf("cifar10: no %s binary data under %s; put %s (from %s) or its extracted %s folder there, or allow a download (Options.Download, --download)",
		titles(specs), dir, specs[0].tarball, specs[0].url, specs[0].dir)
}

func titles(specs []*spec) string {
	if len(specs) == 1 {
		return specs[0].title
	}
	return "CIFAR-10 or CIFAR-100"
}

// hasAny reports whether dir holds any data file of sp.
func hasAny(dir string, sp *spec) bool {
	for _, f := range append(sp.files(Train), sp.files(Test)...) {
		if isFile(filepath.Join(dir, f)) {
			return true
		}
	}
	return false
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// loadFolder reads the files of splits from an extracted data folder.
func loadFolder(dir string, splits []Split, sp *spec, m mode, opts Options) ([]*Dataset, string, error) {
	files := map[string][]byte{}
	for _, name := range wanted(sp, splits) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // assemble names what is missing
		}
		if err != nil {
			return nil, "", fmt.Errorf("cifar10: %w", err)
		}
		files[name] = b
	}
	return assemble(dir, files, splits, sp, m, opts)
}

// wanted lists the files splits need: data files and class names.
func wanted(sp *spec, splits []Split) []string {
	names := []string{sp.meta}
	if sp.coarseMeta != "" {
		names = append(names, sp.coarseMeta)
	}
	for _, s := range splits {
		names = append(names, sp.files(s)...)
	}
	return names
}

// loadTarFile streams a tarball from disk.
func loadTarFile(path string, splits []Split, specs []*spec, m mode, opts Options) ([]*Dataset, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("cifar10: %w", err)
	}
	defer f.Close()
	return loadTar(path, f, splits, specs, m, opts)
}

// loadTar reads the members splits need from a gzipped tar stream r (named
// path in messages), without writing anything to disk.
func loadTar(path string, r io.Reader, splits []Split, specs []*spec, m mode, opts Options) ([]*Dataset, string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, "", fmt.Errorf("cifar10: %s: %w; it is not a .tar.gz: pass the binary version's tarball or an extracted folder", path, err)
	}
	need := map[string]bool{}
	for _, sp := range specs {
		for _, name := range wanted(sp, splits) {
			need[name] = true
		}
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("cifar10: read %s: %w; the tarball is truncated or corrupt: download it again", path, err)
		}
		base := filepath.Base(h.Name)
		if h.Typeflag != tar.TypeReg || !need[base] {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, "", fmt.Errorf("cifar10: read %s from %s: %w; the tarball is truncated or corrupt: download it again", base, path, err)
		}
		files[base] = b
	}
	var sp *spec
	for _, s := range specs {
		for _, name := range append(s.files(Train), s.files(Test)...) {
			if _, ok := files[name]; ok && sp == nil {
				sp = s
			}
		}
	}
	if sp == nil {
		return nil, "", fmt.Errorf("cifar10: %s holds no %s binary data files (%s); is it the binary version (%s), not the Python or MATLAB one?",
			path, titles(specs), strings.Join(wanted(specs[0], splits)[1:], ", "), specs[0].tarball)
	}
	return assemble(path, files, splits, sp, m, opts)
}

// assemble verifies files (read from src) and builds one Dataset per split.
func assemble(src string, files map[string][]byte, splits []Split, sp *spec, m mode, opts Options) ([]*Dataset, string, error) {
	want := sp.official
	if opts.checks != nil {
		want = *opts.checks
	}
	classes, err := names(src, files, sp.meta, sp.classes)
	if err != nil {
		return nil, "", err
	}
	var coarse []string
	if sp.coarseMeta != "" {
		if coarse, err = names(src, files, sp.coarseMeta, sp.coarse); err != nil {
			return nil, "", err
		}
	}
	var out []*Dataset
	checked := 0
	for _, split := range splits {
		d := &Dataset{Name: sp.name, Classes: classes, CoarseClasses: coarse}
		for _, name := range sp.files(split) {
			b, ok := files[name]
			if !ok {
				if m != verifyOfficial && split == Train && len(sp.files(Train)) > 1 {
					continue // a custom training split may be any subset of the batches
				}
				return nil, "", fmt.Errorf("cifar10: %s has no %s; the %s data is incomplete: extract or download the whole %s again (or set Options.Dataset if this is the other data set)",
					src, name, sp.title, sp.tarball)
			}
			if m == verifyOfficial {
				if err := verify(name, b, sp, want); err != nil {
					return nil, "", err
				}
				checked++
			}
			if err := parse(d, name, b, sp); err != nil {
				return nil, "", err
			}
		}
		if d.Len() == 0 {
			return nil, "", fmt.Errorf("cifar10: %s has no %s %s images (want %s)", src, sp.title, split, strings.Join(sp.files(split), ", "))
		}
		out = append(out, d)
	}
	verdict := "not checked (SkipChecksum)"
	switch {
	case m == verifySample:
		verdict = "ok: embedded sample, md5 matches the one recorded when it was drawn"
	case m == verifyOfficial && len(want.md5) > 1:
		verdict = fmt.Sprintf("ok: md5 of %d file(s) matches the official release", checked)
	case m == verifyOfficial:
		verdict = fmt.Sprintf("ok: size of %d file(s) matches the official release (no per-file md5 is published for %s); labels in range", checked, sp.title)
	}
	return out, verdict, nil
}

// verify checks a data file against the official release.
func verify(name string, b []byte, sp *spec, want checks) error {
	if sum, ok := want.md5[name]; ok {
		got := md5.Sum(b)
		if hex.EncodeToString(got[:]) != sum {
			return fmt.Errorf("cifar10: %s: md5 %x of %d bytes, want %s: %w; the file is corrupt, or custom data (then set Options.SkipChecksum, --skip-checksum)",
				name, got, len(b), sum, ErrChecksum)
		}
		return nil
	}
	if n, ok := want.records[name]; ok && len(b) != n*sp.recordSize() {
		return fmt.Errorf("cifar10: %s: %d bytes, want %d (%d records of %d): %w; the file is truncated, or custom data (then set Options.SkipChecksum, --skip-checksum)",
			name, len(b), n*sp.recordSize(), n, sp.recordSize(), ErrChecksum)
	}
	return nil
}

// parse appends the records of data file name to d, checking their labels.
func parse(d *Dataset, name string, b []byte, sp *spec) error {
	rs := sp.recordSize()
	if len(b) == 0 || len(b)%rs != 0 {
		return fmt.Errorf("cifar10: %s: %d bytes is not a whole number of %d-byte %s records; the file is truncated or not %s binary data: extract or download it again",
			name, len(b), rs, sp.title, sp.title)
	}
	n := len(b) / rs
	d.Images = append(d.Images, make([]uint8, n*ImageSize)...)
	img := d.Images[len(d.Images)-n*ImageSize:]
	for i := range n {
		rec := b[i*rs : (i+1)*rs]
		label := int(rec[rs-ImageSize-1])
		if label >= sp.classes {
			return fmt.Errorf("cifar10: %s: record %d has label %d, want 0..%d; the file is corrupt or not %s (set Options.Dataset if it is the other data set)",
				name, i, label, sp.classes-1, sp.title)
		}
		if sp.coarse > 0 {
			c := int(rec[0])
			if c >= sp.coarse {
				return fmt.Errorf("cifar10: %s: record %d has coarse label %d, want 0..%d; the file is corrupt or not %s",
					name, i, c, sp.coarse-1, sp.title)
			}
			d.Coarse = append(d.Coarse, c)
		}
		d.Labels = append(d.Labels, label)
		copy(img[i*ImageSize:], rec[rs-ImageSize:])
	}
	return nil
}

// names reads a class names file: one name a line, blank lines ignored.
func names(src string, files map[string][]byte, name string, n int) ([]string, error) {
	b, ok := files[name]
	if !ok {
		return nil, fmt.Errorf("cifar10: %s has no %s (the class names); extract or download the whole data set again", src, name)
	}
	var out []string
	for _, line := range strings.Split(string(bytes.ReplaceAll(b, []byte("\r"), nil)), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("cifar10: %s in %s: %d class names, want %d; the file is corrupt: extract or download it again", name, src, len(out), n)
	}
	return out, nil
}

// Command mksample draws the offline sample that package cifar10 embeds: the
// first 200 images of each class of CIFAR-10's training set (data_batch_1..5
// in order) and the first 50 of each class of its test set, written in the
// official layout as cifar-10-sample.tar.gz. It verifies the source against
// the official md5 sums and prints the sample's md5 for sample.go.
//
// From the repository root:
//
//	go run ./datasets/cifar10/internal/mksample -src ../shared/data/cifar-10-binary.tar.gz -out datasets/cifar10/sample/
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gozoo/gozoo/datasets/cifar10"
)

func main() {
	src := flag.String("src", "", "official CIFAR-10 binary tarball or extracted folder")
	out := flag.String("out", "datasets/cifar10/sample/", "folder to write cifar-10-sample.tar.gz into")
	train := flag.Int("train", 200, "training images per class")
	test := flag.Int("test", 50, "test images per class")
	flag.Parse()
	if *src == "" {
		log.Fatal("mksample: pass -src, the official cifar-10-binary.tar.gz or its extracted folder")
	}
	var members []member
	for _, s := range []struct {
		split    cifar10.Split
		perClass int
		file     string
	}{{cifar10.Train, *train, "data_batch_1.bin"}, {cifar10.Test, *test, "test_batch.bin"}} {
		d, err := cifar10.Load(*src, s.split, cifar10.Options{Dataset: "cifar10"})
		if err != nil {
			log.Fatal(err)
		}
		if len(members) == 0 {
			members = append(members, member{"batches.meta.txt", []byte(strings.Join(d.Classes, "\n") + "\n")})
		}
		members = append(members, member{s.file, draw(d, s.perClass)})
	}
	b, err := pack(members)
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(*out, "cifar-10-sample.tar.gz")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s: %d bytes, md5 %x (put it in sampleMD5 in sample.go)\n", path, len(b), md5.Sum(b))
}

// member is one file of the tarball.
type member struct {
	name string
	data []byte
}

// draw returns the first perClass records of each class of d, in d's order,
// as official CIFAR-10 records (label byte, then 3072 pixel bytes).
func draw(d *cifar10.Dataset, perClass int) []byte {
	count := make([]int, len(d.Classes))
	var b []byte
	for i, l := range d.Labels {
		if count[l] == perClass {
			continue
		}
		count[l]++
		b = append(b, byte(l))
		b = append(b, d.Image(i)...)
	}
	return b
}

// pack writes members under cifar-10-batches-bin/ into a gzipped tarball
// with fixed times, so the same input gives the same bytes.
func pack(members []member) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	epoch := time.Date(2009, 4, 8, 0, 0, 0, 0, time.UTC) // the data set's tech report
	for _, m := range members {
		h := &tar.Header{Name: "cifar-10-batches-bin/" + m.name, Mode: 0o644, Size: int64(len(m.data)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(m.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

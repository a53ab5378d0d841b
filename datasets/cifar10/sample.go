package cifar10

import (
	"bytes"
	"crypto/md5"
	_ "embed"
	"encoding/hex"
	"fmt"
)

// sampleTar is the offline sample: 2,000 training images (the first 200 of
// each class in data_batch_1..5 order) and 500 test images (the first 50 of
// each class of test_batch) of the real CIFAR-10, in the official layout.
// sample/README.md says how it was drawn.
//
//go:embed sample/cifar-10-sample.tar.gz
var sampleTar []byte

// sampleMD5 is the md5 of sampleTar, printed by internal/mksample.
const sampleMD5 = "c949bfb19c559cd0404f134708f18c1e"

// Sample returns split of the embedded offline sample of CIFAR-10: 2,000
// training images (200 per class) or 500 test images (50 per class).
func Sample(split Split) (*Dataset, error) {
	return Load("sample", split, Options{})
}

// loadSample reads splits of the embedded sample after checking its md5.
func loadSample(splits []Split, specs []*spec) ([]*Dataset, string, error) {
	if specs[0] != cifar10Spec {
		return nil, "", fmt.Errorf("cifar10: the embedded sample is CIFAR-10 only; pass CIFAR-100 data or allow a download")
	}
	if sum := md5.Sum(sampleTar); hex.EncodeToString(sum[:]) != sampleMD5 {
		return nil, "", fmt.Errorf("cifar10: embedded sample: md5 %x, want %s: %w; rebuild it with internal/mksample and update sampleMD5",
			sum, sampleMD5, ErrChecksum)
	}
	return loadTar("embedded sample", bytes.NewReader(sampleTar), splits, specs[:1], verifySample, Options{})
}

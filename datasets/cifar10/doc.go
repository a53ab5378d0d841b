// Package cifar10 reads the CIFAR-10 and CIFAR-100 data sets (Krizhevsky,
// 2009) in their official binary versions and feeds them to training as
// normalized, optionally augmented float32 batches.
//
// Load reads an extracted folder (cifar-10-batches-bin, cifar-100-binary, or
// the folder above them), an official tarball streamed without unpacking it
// (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz), the embedded offline
// sample ("sample": 2,000 training and 500 test images of the real CIFAR-10,
// balanced over the classes), or the cache folder, downloading the official
// tarball there when asked to.
//
// Images are (N, 3, 32, 32) uint8, row-major: the red plane, then green, then
// blue, as in the files. A Loader turns a Dataset into batches of
// (N, 3, 32, 32) float32 images normalized per channel; the batches of an
// epoch depend only on (Seed, epoch, data), never on the number of workers,
// so a run can resume bit for bit at any epoch.
//
// Verification: CIFAR-10 files are checked against the md5 sums of the
// official release (per file, also when read from a tarball, whose own md5 is
// checked after a download). For CIFAR-100 no per-file md5 is published, so
// train.bin and test.bin are checked for their exact size (50,000 and 10,000
// records) and every label for its range; the tarball md5 is checked after a
// download. Options.SkipChecksum turns the md5 and exact-size checks off for
// custom data; record structure and label ranges are always checked.
package cifar10

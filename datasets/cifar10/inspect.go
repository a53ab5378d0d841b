package cifar10

import (
	"errors"
	"math"
)

// Info describes the data at a path, for `zoo data info`.
type Info struct {
	Dataset  string      // "cifar10" or "cifar100"
	Classes  []string    // class names (CIFAR-100: fine)
	Splits   []SplitInfo // Train, then Test
	Checksum string      // the verification verdict, "ok: …", "MISMATCH: …" or "not checked …"
}

// SplitInfo holds the figures of one split.
type SplitInfo struct {
	Split    Split
	Images   int
	PerClass []int      // images per class (CIFAR-100: fine class)
	Mean     [3]float64 // per-channel (R, G, B) mean of pixel/255
	Std      [3]float64 // per-channel population standard deviation of pixel/255
}

// Inspect loads both splits at path (see Load) and returns their counts,
// per-channel statistics and checksum verdict. A checksum mismatch is not an
// error here: the data is read again unchecked and Checksum says MISMATCH.
func Inspect(path string, opts Options) (*Info, error) {
	splits := []Split{Train, Test}
	ds, verdict, err := load(path, splits, opts)
	if errors.Is(err, ErrChecksum) {
		verdict = "MISMATCH: " + err.Error()
		opts.SkipChecksum = true
		ds, _, err = load(path, splits, opts)
	}
	if err != nil {
		return nil, err
	}
	info := &Info{Dataset: ds[0].Name, Classes: ds[0].Classes, Checksum: verdict}
	for i, d := range ds {
		info.Splits = append(info.Splits, stats(splits[i], d))
	}
	return info, nil
}

// stats counts d's classes and computes its per-channel mean and std from
// pixel histograms, exactly in float64.
func stats(split Split, d *Dataset) SplitInfo {
	s := SplitInfo{Split: split, Images: d.Len(), PerClass: make([]int, len(d.Classes))}
	for _, l := range d.Labels {
		s.PerClass[l]++
	}
	var hist [3][256]int
	for i := range d.Len() {
		img := d.Image(i)
		for c := range Channels {
			h := &hist[c]
			for _, v := range img[c*Height*Width : (c+1)*Height*Width] {
				h[v]++
			}
		}
	}
	n := float64(d.Len() * Height * Width)
	for c := range Channels {
		var sum, sq float64
		for v, k := range hist[c] {
			x := float64(v) / 255
			sum += float64(k) * x
			sq += float64(k) * x * x
		}
		s.Mean[c] = sum / n
		s.Std[c] = math.Sqrt(max(sq/n-s.Mean[c]*s.Mean[c], 0))
	}
	return s
}

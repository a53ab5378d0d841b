package tensorboard

import (
	"fmt"
	"math"
)

// Histogram is a tensorflow.HistogramProto: statistics of a set of values
// and its buckets. Bucket i counts Counts[i] values from Limits[i-1] (Min
// for the first) up to Limits[i].
type Histogram struct {
	Min, Max, Num, Sum, SumSquares float64
	Limits, Counts                 []float64
}

// NewHistogram counts the finite values of vs in bins buckets of equal
// width between their smallest and largest (one bucket when these are
// equal); each bucket holds the values from its lower limit up to, not
// including, its upper one, and the last also holds Max. NaNs and
// infinities are left out; with no finite value it returns an error.
func NewHistogram[T float32 | float64](vs []T, bins int) (Histogram, error) {
	if bins < 1 {
		return Histogram{}, fmt.Errorf("tensorboard: histogram of %d buckets: want at least 1", bins)
	}
	h := Histogram{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, v := range vs {
		x := float64(v)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		h.Min, h.Max = min(h.Min, x), max(h.Max, x)
		h.Num++
		h.Sum += x
		h.SumSquares += x * x
	}
	if h.Num == 0 {
		return Histogram{}, fmt.Errorf("tensorboard: histogram of %d values: none is finite", len(vs))
	}
	if h.Min == h.Max {
		h.Limits, h.Counts = []float64{h.Max}, []float64{h.Num}
		return h, nil
	}
	width := (h.Max - h.Min) / float64(bins)
	h.Limits, h.Counts = make([]float64, bins), make([]float64, bins)
	for i := range h.Limits {
		h.Limits[i] = h.Min + float64(i+1)*width
	}
	h.Limits[bins-1] = h.Max
	for _, v := range vs {
		x := float64(v)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		h.Counts[min(int((x-h.Min)/width), bins-1)]++
	}
	return h, nil
}

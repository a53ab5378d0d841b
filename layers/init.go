package layers

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// initData returns t's backing data as float32 or float64, or an error
// naming fn when t cannot be filled in place.
func initData(fn string, t *tensor.Dense) (any, error) {
	if t == nil {
		return nil, fmt.Errorf("layers: %s: nil tensor", fn)
	}
	if t.IsView() {
		return nil, fmt.Errorf("layers: %s: tensor %v is a view; fill the tensor it views, or a materialised copy", fn, t.Shape())
	}
	switch d := t.Data().(type) {
	case []float32, []float64:
		return d, nil
	}
	return nil, fmt.Errorf("layers: %s: tensor has dtype %v; only float32 and float64 are supported", fn, t.Dtype())
}

// KaimingNormal fills w (a conv weight (O, C, kH, kW)) from N(0, 2/fanOut)
// with fanOut = O·kH·kW (torch.nn.init.kaiming_normal_(mode="fan_out",
// nonlinearity="relu")). As in PyTorch, any rank ≥ 2 is accepted, with
// fanOut = shape[0]·shape[2]·…; a Linear weight (O, I) gets fanOut = O.
func KaimingNormal(w *tensor.Dense, r *rand.Rand) error {
	if _, err := initData("KaimingNormal", w); err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("layers: KaimingNormal: nil *rand.Rand; pass a seeded rand.New(rand.NewPCG(seed1, seed2))")
	}
	s := w.Shape()
	if len(s) < 2 {
		return fmt.Errorf("layers: KaimingNormal: weight has shape %v; want (O, C, kH, kW) or at least 2 dimensions", s)
	}
	fanOut := s[0]
	for _, d := range s[2:] {
		fanOut *= d
	}
	if fanOut == 0 {
		return nil // no elements
	}
	return Normal(w, 0, math.Sqrt(2/float64(fanOut)), r)
}

// Normal fills t from N(mean, std²), drawing one r.NormFloat64() per element
// in storage order.
func Normal(t *tensor.Dense, mean, std float64, r *rand.Rand) error {
	d, err := initData("Normal", t)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("layers: Normal: nil *rand.Rand; pass a seeded rand.New(rand.NewPCG(seed1, seed2))")
	}
	if !(std >= 0) || math.IsInf(std, 0) || math.IsNaN(mean) || math.IsInf(mean, 0) {
		return fmt.Errorf("layers: Normal: mean %g and std %g; want finite values and std ≥ 0", mean, std)
	}
	switch d := d.(type) {
	case []float32:
		for i := range d {
			d[i] = float32(mean + std*r.NormFloat64())
		}
	case []float64:
		for i := range d {
			d[i] = mean + std*r.NormFloat64()
		}
	}
	return nil
}

// Fill sets every element of t to v.
func Fill(t *tensor.Dense, v float64) error {
	d, err := initData("Fill", t)
	if err != nil {
		return err
	}
	switch d := d.(type) {
	case []float32:
		for i := range d {
			d[i] = float32(v)
		}
	case []float64:
		for i := range d {
			d[i] = v
		}
	}
	return nil
}

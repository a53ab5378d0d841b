package nn

import (
	"fmt"
	"math"
)

// SGDStep is one train.SGD update of w with gradient g (same length); buf
// is the momentum buffer (an empty Tensor without momentum), fresh on the
// first step. Coefficients are rounded to float32 as the CPU does.
func (b *Backend) SGDStep(w, g, buf Tensor, lr, weightDecay, momentum, dampening float64, nesterov, fresh bool) error {
	if w.Len() != g.Len() {
		return fmt.Errorf("nn: SGDStep: w has %d values, g %d", w.Len(), g.Len())
	}
	return b.elementwise("sgd_update", w.Len(), w.Buf, g.Buf, buf.Buf, int64(w.Len()),
		float32(weightDecay), float32(momentum), float32(1-dampening), float32(-lr), boolInt(fresh), boolInt(nesterov))
}

// AdamConfig is the part of train's Adam configuration an update needs.
type AdamConfig struct {
	Beta1, Beta2, Eps, WeightDecay float64
	Decoupled                      bool // AdamW
}

// AdamStep is one train.Adam (or AdamW) update at step k ≥ 1 (counted per
// parameter); m and v are the moment buffers, vmax the AMSGrad maximum or an
// empty Tensor.
func (b *Backend) AdamStep(w, g, m, v, vmax Tensor, lr float64, k int, c AdamConfig) error {
	if w.Len() != g.Len() || m.Len() != w.Len() || v.Len() != w.Len() {
		return fmt.Errorf("nn: AdamStep: w, g, m and v have %d, %d, %d and %d values", w.Len(), g.Len(), m.Len(), v.Len())
	}
	stepSize := lr / (1 - math.Pow(c.Beta1, float64(k)))
	bc2Sqrt := float32(math.Sqrt(1 - math.Pow(c.Beta2, float64(k))))
	return b.elementwise("adam_update", w.Len(), w.Buf, g.Buf, m.Buf, v.Buf, vmax.Buf, int64(w.Len()),
		float32(c.Beta1), float32(1-c.Beta1), float32(c.Beta2), float32(1-c.Beta2), float32(c.Eps), float32(-stepSize), bc2Sqrt,
		float32(c.WeightDecay), float32(1-lr*c.WeightDecay), boolInt(c.Decoupled))
}

func boolInt(v bool) int32 {
	if v {
		return 1
	}
	return 0
}

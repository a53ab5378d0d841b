package emu

import (
	"fmt"
	"slices"

	"github.com/gozoo/gozoo/layers"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// cpu runs build over host copies of ins on a fresh Gorgonia graph and
// returns its output. With dy it also returns the gradients of Σ y⊙dy (the
// backward pass fed with dy) with respect to the inputs listed in wrt.
func cpu(ins []Tensor, wrt []int, dy *Tensor, build func(xs []*G.Node) (*G.Node, error)) (y []float32, grads [][]float32, err error) {
	g := G.NewGraph()
	xs := make([]*G.Node, len(ins))
	for i, x := range ins {
		d := tensor.New(tensor.WithShape(slices.Clone(x.Shape)...), tensor.WithBacking(slices.Clone(x.data())))
		xs[i] = G.NodeFromAny(g, d, G.WithName(fmt.Sprintf("x%d", i)))
	}
	yn, err := build(xs)
	if err != nil {
		return nil, nil, err
	}
	var gn G.Nodes
	if dy != nil {
		loss := yn
		if !yn.IsScalar() {
			r := G.NodeFromAny(g, tensor.New(tensor.WithShape(slices.Clone(dy.Shape)...), tensor.WithBacking(slices.Clone(dy.data()))), G.WithName("dy"))
			prod, err := G.HadamardProd(yn, r)
			if err != nil {
				return nil, nil, err
			}
			if loss, err = G.Sum(prod); err != nil {
				return nil, nil, err
			}
		}
		var nodes G.Nodes
		for _, i := range wrt {
			nodes = append(nodes, xs[i])
		}
		if gn, err = G.Grad(loss, nodes...); err != nil {
			return nil, nil, err
		}
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		return nil, nil, err
	}
	if yn.IsScalar() {
		y = []float32{yn.Value().Data().(float32)}
	} else {
		y = slices.Clone(yn.Value().Data().([]float32))
	}
	for _, n := range gn {
		grads = append(grads, slices.Clone(n.Value().Data().([]float32)))
	}
	return y, grads, nil
}

// out uploads host results as tensors of the given shapes.
func (b *Backend) out(vals [][]float32, shapes ...[]int) ([]Tensor, error) {
	ts := make([]Tensor, len(vals))
	for i, v := range vals {
		var err error
		if ts[i], err = b.Upload(v, shapes[i]...); err != nil {
			b.Free(ts[:i]...)
			return nil, err
		}
	}
	return ts, nil
}

// Conv2d is nn.Backend.Conv2d, computed by layers.Conv2d.
func (b *Backend) Conv2d(x, w, bias Tensor, stride, pad int) (Tensor, error) {
	y, _, err := cpu([]Tensor{x, w, bias}, nil, nil, func(xs []*G.Node) (*G.Node, error) {
		return layers.Conv2d(xs[0], xs[1], xs[2], stride, pad)
	})
	if err != nil {
		return Tensor{}, fmt.Errorf("emu: Conv2d: %w", err)
	}
	n, o := x.Shape[0], w.Shape[0]
	hw := len(y) / (n * o)
	oh := (x.Shape[2]+2*pad-w.Shape[2])/stride + 1
	return b.Upload(y, n, o, oh, hw/oh)
}

// Conv2dBackward is nn.Backend.Conv2dBackward.
func (b *Backend) Conv2dBackward(x, w, dy Tensor, stride, pad int) (dx, dw, db Tensor, err error) {
	bias := host(make([]float32, w.Shape[0]), w.Shape[0])
	_, g, err := cpu([]Tensor{x, w, bias}, []int{0, 1, 2}, &dy, func(xs []*G.Node) (*G.Node, error) {
		return layers.Conv2d(xs[0], xs[1], xs[2], stride, pad)
	})
	if err != nil {
		return dx, dw, db, fmt.Errorf("emu: Conv2dBackward: %w", err)
	}
	ts, err := b.out(g, x.Shape, w.Shape, bias.Shape)
	if err != nil {
		return dx, dw, db, err
	}
	return ts[0], ts[1], ts[2], nil
}

// Linear is nn.Backend.Linear, computed by layers.Linear.
func (b *Backend) Linear(x, w, bias Tensor) (Tensor, error) {
	y, _, err := cpu([]Tensor{x, w, bias}, nil, nil, func(xs []*G.Node) (*G.Node, error) { return layers.Linear(xs[0], xs[1], xs[2]) })
	if err != nil {
		return Tensor{}, fmt.Errorf("emu: Linear: %w", err)
	}
	return b.Upload(y, x.Shape[0], w.Shape[0])
}

// LinearBackward is nn.Backend.LinearBackward.
func (b *Backend) LinearBackward(x, w, dy Tensor) (dx, dw, db Tensor, err error) {
	bias := host(make([]float32, w.Shape[0]), w.Shape[0])
	_, g, err := cpu([]Tensor{x, w, bias}, []int{0, 1, 2}, &dy, func(xs []*G.Node) (*G.Node, error) { return layers.Linear(xs[0], xs[1], xs[2]) })
	if err != nil {
		return dx, dw, db, fmt.Errorf("emu: LinearBackward: %w", err)
	}
	ts, err := b.out(g, x.Shape, w.Shape, bias.Shape)
	if err != nil {
		return dx, dw, db, err
	}
	return ts[0], ts[1], ts[2], nil
}

// ReLU is nn.Backend.ReLU.
func (b *Backend) ReLU(x Tensor) (Tensor, error) {
	y, err := b.Empty(x.Shape...)
	if err != nil {
		return y, err
	}
	yd := y.data()
	for i, v := range x.data() {
		if v > 0 {
			yd[i] = v
		}
	}
	return y, nil
}

// ReLUGrad is nn.Backend.ReLUGrad: dy where y > 0, else 0.
func (b *Backend) ReLUGrad(y, dy Tensor) (Tensor, error) {
	dx, err := b.Empty(y.Shape...)
	if err != nil {
		return dx, err
	}
	d, g := dx.data(), dy.data()
	for i, v := range y.data() {
		if v > 0 {
			d[i] = g[i]
		}
	}
	return dx, nil
}

// MaxPool2d is nn.Backend.MaxPool2d, computed by layers.MaxPool2d; the
// returned "argmax" is a copy of x, from which MaxPool2dGrad recomputes.
func (b *Backend) MaxPool2d(x Tensor, k, s, p int) (y, argmax Tensor, err error) {
	v, _, err := cpu([]Tensor{x}, nil, nil, func(xs []*G.Node) (*G.Node, error) { return layers.MaxPool2d(xs[0], k, s, p) })
	if err != nil {
		return y, argmax, fmt.Errorf("emu: MaxPool2d: %w", err)
	}
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	if y, err = b.Upload(v, n, c, (h+2*p-k)/s+1, (w+2*p-k)/s+1); err != nil {
		return y, argmax, err
	}
	argmax, err = b.Upload(x.data(), x.Shape...)
	return y, argmax, err
}

// MaxPool2dGrad is nn.Backend.MaxPool2dGrad.
func (b *Backend) MaxPool2dGrad(dy, argmax Tensor, h, w, k, s, p int) (Tensor, error) {
	_, g, err := cpu([]Tensor{argmax}, []int{0}, &dy, func(xs []*G.Node) (*G.Node, error) { return layers.MaxPool2d(xs[0], k, s, p) })
	if err != nil {
		return Tensor{}, fmt.Errorf("emu: MaxPool2dGrad: %w", err)
	}
	return b.Upload(g[0], argmax.Shape...)
}

// AdaptiveAvgPool2d is nn.Backend.AdaptiveAvgPool2d.
func (b *Backend) AdaptiveAvgPool2d(x Tensor, oh, ow int) (Tensor, error) {
	y, _, err := cpu([]Tensor{x}, nil, nil, func(xs []*G.Node) (*G.Node, error) { return layers.AdaptiveAvgPool2d(xs[0], oh, ow) })
	if err != nil {
		return Tensor{}, fmt.Errorf("emu: AdaptiveAvgPool2d: %w", err)
	}
	return b.Upload(y, x.Shape[0], x.Shape[1], oh, ow)
}

// AdaptiveAvgPool2dGrad is nn.Backend.AdaptiveAvgPool2dGrad.
func (b *Backend) AdaptiveAvgPool2dGrad(dy Tensor, h, w int) (Tensor, error) {
	n, c, oh, ow := dy.Shape[0], dy.Shape[1], dy.Shape[2], dy.Shape[3]
	x, err := b.Empty(n, c, h, w)
	if err != nil {
		return x, err
	}
	defer b.Free(x)
	_, g, err := cpu([]Tensor{x}, []int{0}, &dy, func(xs []*G.Node) (*G.Node, error) { return layers.AdaptiveAvgPool2d(xs[0], oh, ow) })
	if err != nil {
		return Tensor{}, fmt.Errorf("emu: AdaptiveAvgPool2dGrad: %w", err)
	}
	return b.Upload(g[0], n, c, h, w)
}

// BatchNorm2d is nn.Backend.BatchNorm2d, computed by layers.BatchNorm2d. Its
// mean and invStd are the running mean and variance it started from (the
// emulation's backward recomputes the batch statistics from x).
func (b *Backend) BatchNorm2d(x, gamma, beta, runMean, runVar Tensor, eps, momentum float64, train bool) (y, mean, invStd Tensor, err error) {
	if mean, err = b.Upload(runMean.data(), runMean.Shape...); err != nil {
		return y, mean, invStd, err
	}
	if invStd, err = b.Upload(runVar.data(), runVar.Shape...); err != nil {
		return y, mean, invStd, err
	}
	stats := bnStats(runMean, runVar, eps, momentum)
	v, _, err := cpu([]Tensor{x, gamma, beta}, nil, nil, func(xs []*G.Node) (*G.Node, error) {
		return layers.BatchNorm2d(xs[0], xs[1], xs[2], stats, train)
	})
	if err != nil {
		return y, mean, invStd, fmt.Errorf("emu: BatchNorm2d: %w", err)
	}
	copy(runMean.data(), stats.Mean.Data().([]float32))
	copy(runVar.data(), stats.Var.Data().([]float32))
	y, err = b.Upload(v, x.Shape...)
	return y, mean, invStd, err
}

func bnStats(mean, v Tensor, eps, momentum float64) *layers.BNStats {
	s := layers.NewBNStats(tensor.Float32, mean.Len())
	copy(s.Mean.Data().([]float32), mean.data())
	copy(s.Var.Data().([]float32), v.data())
	s.Eps, s.Momentum = eps, momentum
	return s
}

// BatchNorm2dBackward is nn.Backend.BatchNorm2dBackward. mean and invStd are
// what the emulation's BatchNorm2d returned (the running statistics before
// the forward pass); eps and momentum are PyTorch's defaults, as in the
// model's layers.
func (b *Backend) BatchNorm2dBackward(x, gamma, dy, mean, invStd Tensor, train bool) (dx, dgamma, dbeta Tensor, err error) {
	c := gamma.Len()
	beta := host(make([]float32, c), c)
	def := layers.NewBNStats(tensor.Float32, c)
	stats := bnStats(mean, invStd, def.Eps, def.Momentum)
	_, g, err := cpu([]Tensor{x, gamma, beta}, []int{0, 1, 2}, &dy, func(xs []*G.Node) (*G.Node, error) {
		return layers.BatchNorm2d(xs[0], xs[1], xs[2], stats, train)
	})
	if err != nil {
		return dx, dgamma, dbeta, fmt.Errorf("emu: BatchNorm2dBackward: %w", err)
	}
	ts, err := b.out(g, x.Shape, gamma.Shape, gamma.Shape)
	if err != nil {
		return dx, dgamma, dbeta, err
	}
	return ts[0], ts[1], ts[2], nil
}

// UploadMask is nn.Backend.UploadMask: 1 keeps, 0 drops.
func (b *Backend) UploadMask(keep []bool) (Tensor, error) {
	t, err := b.Empty(len(keep))
	if err != nil {
		return t, err
	}
	d := t.data()
	for i, k := range keep {
		if k {
			d[i] = 1
		}
	}
	return t, nil
}

// Dropout is nn.Backend.Dropout: in·keep/(1−p), the scale rounded to
// float32 as the CPU op does.
func (b *Backend) Dropout(in, keep Tensor, p float64) (Tensor, error) {
	if !(p >= 0 && p < 1) {
		return Tensor{}, fmt.Errorf("emu: Dropout: p = %g; want [0, 1)", p)
	}
	out, err := b.Empty(in.Shape...)
	if err != nil {
		return out, err
	}
	scale := float32(1) / float32(1-p)
	o, k := out.data(), keep.data()
	for i, v := range in.data() {
		if k[i] != 0 {
			o[i] = v * scale
		}
	}
	return out, nil
}

// CrossEntropy is nn.Backend.CrossEntropy, computed by layers.CrossEntropy.
func (b *Backend) CrossEntropy(z Tensor, labels []float32, smoothing float64) (loss, lab Tensor, err error) {
	if len(z.Shape) != 2 || z.Shape[0] != len(labels) {
		return loss, lab, fmt.Errorf("emu: CrossEntropy: logits %v and %d labels; want (N, K) and N", z.Shape, len(labels))
	}
	for i, v := range labels {
		if !(v >= 0 && int(v) < z.Shape[1] && float32(int(v)) == v) {
			return loss, lab, fmt.Errorf("emu: CrossEntropy: label %g of row %d is not a class index", v, i)
		}
	}
	if lab, err = b.Upload(labels, len(labels)); err != nil {
		return loss, lab, err
	}
	y, _, err := cpu([]Tensor{z, lab}, nil, nil, func(xs []*G.Node) (*G.Node, error) { return layers.CrossEntropy(xs[0], xs[1], smoothing) })
	if err != nil {
		return loss, lab, fmt.Errorf("emu: CrossEntropy: %w", err)
	}
	loss, err = b.Upload(y, 1)
	return loss, lab, err
}

// CrossEntropyGrad is nn.Backend.CrossEntropyGrad.
func (b *Backend) CrossEntropyGrad(z, labels Tensor, smoothing, g float64) (Tensor, error) {
	seed := host([]float32{1}, 1)
	_, gs, err := cpu([]Tensor{z, labels}, []int{0}, &seed, func(xs []*G.Node) (*G.Node, error) { return layers.CrossEntropy(xs[0], xs[1], smoothing) })
	if err != nil {
		return Tensor{}, fmt.Errorf("emu: CrossEntropyGrad: %w", err)
	}
	if g != 1 {
		for i := range gs[0] {
			gs[0][i] *= float32(g)
		}
	}
	return b.Upload(gs[0], z.Shape...)
}

// SGDStep is nn.Backend.SGDStep: the sgd_update kernel's loop, which is
// train.SGD's float32 arithmetic.
func (b *Backend) SGDStep(w, g, buf Tensor, lr, weightDecay, momentum, dampening float64, nesterov, fresh bool) error {
	if w.Len() != g.Len() || (buf.buf != nil && buf.Len() != w.Len()) {
		return fmt.Errorf("emu: SGDStep: w has %d values, g %d, the buffer %d", w.Len(), g.Len(), buf.Len())
	}
	wd, mom, damp, negLR := float32(weightDecay), float32(momentum), float32(1-dampening), float32(-lr)
	wv, gv, bv := w.data(), g.data(), buf.data()
	for i := range wv {
		d := gv[i]
		if wd != 0 {
			d += wd * wv[i]
		}
		if bv != nil {
			if fresh {
				bv[i] = d
			} else {
				bv[i] = bv[i]*mom + damp*d
			}
			if nesterov {
				d += mom * bv[i]
			} else {
				d = bv[i]
			}
		}
		wv[i] += negLR * d
	}
	return nil
}

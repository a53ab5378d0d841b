package nn

import (
	"errors"
	"fmt"

	"github.com/gozoo/gozoo/internal/cuda"
)

// Conv2d computes y = conv(x, w) + bias as layers.Conv2d (dilation 1): x is
// (N, C, H, W), w is (O, C, kH, kW), bias is (O) or an empty Tensor; y is
// (N, O, H', W'). All images go through one im2col and one SGEMM.
func (b *Backend) Conv2d(x, w, bias Tensor, stride, pad int) (Tensor, error) {
	g, err := convGeometry(x, w, stride, pad)
	if err != nil {
		return Tensor{}, err
	}
	cols, err := b.Empty(g.ckk(), g.n*g.ohw())
	if err != nil {
		return Tensor{}, err
	}
	defer b.Free(cols)
	if err := b.im2col(g, x, cols); err != nil {
		return Tensor{}, err
	}
	tmp, err := b.Empty(g.o, g.n*g.ohw())
	if err != nil {
		return Tensor{}, err
	}
	defer b.Free(tmp)
	// Row-major tmp (O, N·ohw) = w (O, ckk) · cols (ckk, N·ohw).
	ld := g.n * g.ohw()
	if err := b.D.Sgemm(false, false, ld, g.o, g.ckk(), 1, cols.Buf, ld, w.Buf, g.ckk(), 0, tmp.Buf, ld); err != nil {
		return Tensor{}, err
	}
	y, err := b.Empty(g.n, g.o, g.oh, g.ow)
	if err != nil {
		return Tensor{}, err
	}
	return y, b.elementwise("conv_scatter", y.Len(), tmp.Buf, bias.Buf, y.Buf, g.n, g.o, g.ohw())
}

// Conv2dBackward returns dx (N, C, H, W), dw (O, C, kH, kW) and db (O) of
// Conv2d given dy (N, O, H', W').
func (b *Backend) Conv2dBackward(x, w, dy Tensor, stride, pad int) (dx, dw, db Tensor, err error) {
	g, err := convGeometry(x, w, stride, pad)
	if err != nil {
		return dx, dw, db, err
	}
	ld := g.n * g.ohw()
	var tmps []Tensor
	defer func() { b.Free(tmps...) }()
	alloc := func(shape ...int) Tensor {
		if err != nil {
			return Tensor{}
		}
		var t Tensor
		t, err = b.Empty(shape...)
		return t
	}
	dyg, cols, dcols := alloc(g.o, ld), alloc(g.ckk(), ld), alloc(g.ckk(), ld)
	tmps = append(tmps, dyg, cols, dcols)
	dx, dw, db = alloc(g.n, g.c, g.h, g.w), alloc(g.o, g.c, g.kh, g.kw), alloc(g.o)
	steps := []func() error{
		func() error { return b.elementwise("conv_gather", dy.Len(), dy.Buf, dyg.Buf, g.n, g.o, g.ohw()) },
		func() error { return b.im2col(g, x, cols) },
		// dw (O, ckk) = dyg (O, ld) · colsᵀ (row-major; cuBLAS sees the transposes).
		func() error {
			return b.D.Sgemm(true, false, g.ckk(), g.o, ld, 1, cols.Buf, ld, dyg.Buf, ld, 0, dw.Buf, g.ckk())
		},
		// dcols (ckk, ld) = wᵀ (ckk, O) · dyg (O, ld).
		func() error {
			return b.D.Sgemm(false, true, ld, g.ckk(), g.o, 1, dyg.Buf, ld, w.Buf, g.ckk(), 0, dcols.Buf, ld)
		},
		func() error {
			return b.elementwise("col2im", dx.Len(), dcols.Buf, dx.Buf, g.n, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p, g.oh, g.ow)
		},
		func() error { return b.perChannel("bias_grad", g.o, dy.Buf, db.Buf, g.n, g.o, g.ohw()) },
	}
	for _, s := range steps {
		if err != nil {
			break
		}
		err = s()
	}
	if err != nil {
		b.Free(dx, dw, db)
		return Tensor{}, Tensor{}, Tensor{}, err
	}
	return dx, dw, db, nil
}

// convGeom is a convolution's shapes.
type convGeom struct{ n, c, h, w, o, kh, kw, s, p, oh, ow int }

func (g convGeom) ckk() int { return g.c * g.kh * g.kw }
func (g convGeom) ohw() int { return g.oh * g.ow }

func convGeometry(x, w Tensor, stride, pad int) (convGeom, error) {
	n, c, h, wd, err := shape4("Conv2d x", x)
	if err != nil {
		return convGeom{}, err
	}
	o, c2, kh, kw, err := shape4("Conv2d w", w)
	if err != nil {
		return convGeom{}, err
	}
	if c2 != c || stride < 1 || pad < 0 || kh > h+2*pad || kw > wd+2*pad {
		return convGeom{}, fmt.Errorf("nn: Conv2d: x %v, w %v, stride %d, padding %d do not fit", x.Shape, w.Shape, stride, pad)
	}
	return convGeom{n: n, c: c, h: h, w: wd, o: o, kh: kh, kw: kw, s: stride, p: pad,
		oh: (h+2*pad-kh)/stride + 1, ow: (wd+2*pad-kw)/stride + 1}, nil
}

func (b *Backend) im2col(g convGeom, x, cols Tensor) error {
	return b.elementwise("im2col", cols.Len(), x.Buf, cols.Buf, g.n, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p, g.oh, g.ow)
}

// Linear computes y = x·wᵀ + bias as layers.Linear: x is (N, in), w is
// (out, in), bias (out) or empty; y is (N, out).
func (b *Backend) Linear(x, w, bias Tensor) (Tensor, error) {
	if len(x.Shape) != 2 || len(w.Shape) != 2 || x.Shape[1] != w.Shape[1] {
		return Tensor{}, fmt.Errorf("nn: Linear: x %v and w %v; want (N, in) and (out, in)", x.Shape, w.Shape)
	}
	n, in, out := x.Shape[0], x.Shape[1], w.Shape[0]
	y, err := b.Empty(n, out)
	if err != nil {
		return y, err
	}
	if err := b.D.Sgemm(true, false, out, n, in, 1, w.Buf, in, x.Buf, in, 0, y.Buf, out); err != nil {
		b.Free(y)
		return Tensor{}, err
	}
	if bias.Buf.Ptr() != 0 {
		err = b.elementwise("add_bias_rows", y.Len(), y.Buf, bias.Buf, n, out)
	}
	return y, err
}

// LinearBackward returns dx (N, in), dw (out, in) and db (out) given dy
// (N, out).
func (b *Backend) LinearBackward(x, w, dy Tensor) (dx, dw, db Tensor, err error) {
	n, in, out := x.Shape[0], x.Shape[1], w.Shape[0]
	if dx, err = b.Empty(n, in); err == nil {
		err = b.D.Sgemm(false, false, in, n, out, 1, w.Buf, in, dy.Buf, out, 0, dx.Buf, in)
	}
	if err == nil {
		if dw, err = b.Empty(out, in); err == nil {
			err = b.D.Sgemm(false, true, in, out, n, 1, x.Buf, in, dy.Buf, out, 0, dw.Buf, in)
		}
	}
	if err == nil {
		if db, err = b.Empty(out); err == nil {
			err = b.elementwise("sum_rows", out, dy.Buf, db.Buf, n, out)
		}
	}
	if err != nil {
		b.Free(dx, dw, db)
		return Tensor{}, Tensor{}, Tensor{}, err
	}
	return dx, dw, db, nil
}

// ReLU returns max(x, 0); any shape.
func (b *Backend) ReLU(x Tensor) (Tensor, error) {
	y, err := b.Empty(x.Shape...)
	if err == nil {
		err = b.elementwise("relu", x.Len(), x.Buf, y.Buf, int64(x.Len()))
	}
	return y, err
}

// ReLUGrad returns dy where y > 0, else 0.
func (b *Backend) ReLUGrad(y, dy Tensor) (Tensor, error) {
	dx, err := b.Empty(y.Shape...)
	if err == nil {
		err = b.elementwise("relu_grad", y.Len(), y.Buf, dy.Buf, dx.Buf, int64(y.Len()))
	}
	return dx, err
}

// MaxPool2d returns y (N, C, H', W') and the int32 argmax of each window
// (index in its plane), as layers.MaxPool2d.
func (b *Backend) MaxPool2d(x Tensor, k, s, p int) (y, argmax Tensor, err error) {
	n, c, h, w, err := shape4("MaxPool2d", x)
	if err != nil {
		return y, argmax, err
	}
	oh, ow := (h+2*p-k)/s+1, (w+2*p-k)/s+1
	if y, err = b.Empty(n, c, oh, ow); err != nil {
		return y, argmax, err
	}
	if argmax, err = b.Empty(n, c, oh, ow); err != nil {
		return y, argmax, err
	}
	err = b.elementwise("maxpool", y.Len(), x.Buf, y.Buf, argmax.Buf, n*c, h, w, k, s, p, oh, ow)
	return y, argmax, err
}

// MaxPool2dGrad returns dx (N, C, H, W) given dy and the forward argmax.
func (b *Backend) MaxPool2dGrad(dy, argmax Tensor, h, w, k, s, p int) (Tensor, error) {
	n, c, oh, ow, err := shape4("MaxPool2dGrad", dy)
	if err != nil {
		return Tensor{}, err
	}
	dx, err := b.Empty(n, c, h, w)
	if err == nil {
		err = b.elementwise("maxpool_grad", dx.Len(), dy.Buf, argmax.Buf, dx.Buf, n*c, h, w, k, s, p, oh, ow)
	}
	return dx, err
}

// AdaptiveAvgPool2d returns y (N, C, oh, ow) as layers.AdaptiveAvgPool2d.
func (b *Backend) AdaptiveAvgPool2d(x Tensor, oh, ow int) (Tensor, error) {
	n, c, h, w, err := shape4("AdaptiveAvgPool2d", x)
	if err != nil {
		return Tensor{}, err
	}
	y, err := b.Empty(n, c, oh, ow)
	if err == nil {
		err = b.elementwise("adaptive_avgpool", y.Len(), x.Buf, y.Buf, n*c, h, w, oh, ow)
	}
	return y, err
}

// AdaptiveAvgPool2dGrad returns dx (N, C, h, w) given dy (N, C, oh, ow).
func (b *Backend) AdaptiveAvgPool2dGrad(dy Tensor, h, w int) (Tensor, error) {
	n, c, oh, ow, err := shape4("AdaptiveAvgPool2dGrad", dy)
	if err != nil {
		return Tensor{}, err
	}
	dx, err := b.Empty(n, c, h, w)
	if err == nil {
		err = b.elementwise("adaptive_avgpool_grad", dx.Len(), dy.Buf, dx.Buf, n*c, h, w, oh, ow)
	}
	return dx, err
}

// Dropout returns in·keep/(1−p) (the scale rounded to float32, as the CPU),
// for the forward pass (in = x) and the backward one (in = dy). keep is the
// mask drawn on the CPU from the layer's PCG stream (see layers.Dropout), one
// byte per element (non-zero keeps), already on the device.
func (b *Backend) Dropout(in, keep Tensor, p float64) (Tensor, error) {
	if !(p >= 0 && p < 1) {
		return Tensor{}, fmt.Errorf("nn: Dropout: p = %g; want [0, 1)", p)
	}
	out, err := b.Empty(in.Shape...)
	if err == nil {
		err = b.elementwise("dropout", in.Len(), in.Buf, keep.Buf, out.Buf, float32(1)/float32(1-p), int64(in.Len()))
	}
	return out, err
}

// UploadMask copies a dropout mask to the device, one byte per element.
func (b *Backend) UploadMask(keep []bool) (Tensor, error) {
	bs := make([]uint8, len(keep))
	for i, k := range keep {
		if k {
			bs[i] = 1
		}
	}
	buf, err := b.get(max(len(bs), 1))
	if err != nil {
		return Tensor{}, err
	}
	return Tensor{Buf: buf, Shape: []int{len(keep)}}, cuda.CopyIn(b.D, buf, bs)
}

// ErrLabel is returned for a label that is not a class index.
var ErrLabel = errors.New("nn: CrossEntropy: label is not a class index")

// checkLabels checks labels on the host, before they are uploaded.
func checkLabels(labels []float32, k int) error {
	for i, v := range labels {
		if !(v >= 0 && int(v) < k && float32(int(v)) == v) {
			return fmt.Errorf("%w: row %d holds %g, want 0..%d", ErrLabel, i, v, k-1)
		}
	}
	return nil
}

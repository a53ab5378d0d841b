package layers

import (
	"fmt"
	"hash"
	"sync"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gozoo/gozoo/internal/sgemm"
)

// Conv2d is a 2-D convolution as PyTorch's nn.Conv2d with dilation 1 and
// groups 1 (a cross-correlation with zero padding).
// x is (N, C, H, W), w is (O, C, kH, kW), b is (O) or nil; the result is
// (N, O, H', W') with H' = (H + 2·padding − kH)/stride + 1 (same for W).
//
// Each batch item is unrolled by im2col and multiplied by w in one GEMM
// straight into the NCHW output, batch items spread over the CPUs; on
// small feature maps (under 256 output pixels) one GEMM spans several
// images instead, and itself runs on every CPU. float32 3×3 convolutions
// with stride 1 and padding 1 and at least 16 input and output channels
// (all of VGG's but the first) run on Winograd instead (winograd.go,
// winograd_dw.go): the forward pass and input gradient on F(4×4, 3×3) for
// maps of 16×16 and more and F(2×2, 3×3) below, the weight gradient on
// F(2×2, 3×3). ZOO_CONV in the environment at start changes that:
// direct forces im2col and GEMM for every convolution, f2 keeps F(2×2)
// everywhere, f4 takes F(4×4) down to 8×8 maps.
func Conv2d(x, w, b *G.Node, stride, padding int) (*G.Node, error) {
	g, err := convGeometry(x, w, b, stride, padding)
	if err != nil {
		return nil, err
	}
	op := convOp{g: g, convState: newConvState()}
	if b == nil {
		return G.ApplyOp(op, x, w)
	}
	op.bias = true
	return G.ApplyOp(op, x, w, b)
}

// convState is what a convolution op keeps from run to run: its output
// tensor and its scratch. Every ApplyOp gets a fresh one, so two graph
// nodes never share it (the ops hash by value, so Gorgonia merges two
// convolution nodes only when they compute the same thing from the same
// inputs, and the merged node keeps the first op's state). It holds no
// input: nothing of a run survives in it but the op's own memory, which
// the next run overwrites whole. The zero value (nil pointers) allocates
// at every run.
type convState struct {
	buf *ownBuffer
	scr *convScratch
}

// newConvState returns an empty state, filled at the first run.
func newConvState() convState { return convState{buf: newBuffer(), scr: new(convScratch)} }

// convScratch is a convolution op's scratch memory (gathered dy, im2col
// columns, dwᵀ, per-worker partial sums), kept from run to run so that a
// training step allocates none. Slots only grow and are never cleared:
// every element read is written first. A nil scratch, or one in use by
// another goroutine (the same op run concurrently; a TapeMachine never
// does), gives fresh memory.
type convScratch struct {
	mu  sync.Mutex
	f32 [][]float32
	f64 [][]float64
}

// lockScratch returns s's slots of element type T and the function that
// releases them.
func lockScratch[T float](s *convScratch) (*[][]T, func()) {
	if s == nil || !s.mu.TryLock() {
		return new([][]T), func() {}
	}
	if _, ok := any(T(0)).(float32); ok {
		return any(&s.f32).(*[][]T), s.mu.Unlock
	}
	return any(&s.f64).(*[][]T), s.mu.Unlock
}

// slot returns slot i of bufs with length n, growing it when short. Its
// contents are stale. Not safe for concurrent use: take every slot before
// starting workers.
func slot[T float](bufs *[][]T, i, n int) []T {
	for len(*bufs) <= i {
		*bufs = append(*bufs, nil)
	}
	if cap((*bufs)[i]) < n {
		(*bufs)[i] = make([]T, n)
	}
	return (*bufs)[i][:n]
}

// convGeom is everything a convolution's kernels need to know about shapes:
// x is (n, c, h, w), the weights are (o, c, kh, kw), y is (n, o, oh, ow).
type convGeom struct {
	n, c, h, w  int
	o, kh, kw   int
	stride, pad int
	oh, ow      int
}

// convGeometry checks Conv2d's arguments and derives the output size.
func convGeometry(x, w, b *G.Node, stride, padding int) (convGeom, error) {
	const op = "Conv2d"
	if err := checkNode(op, "x", x, 4, "(N, C, H, W)"); err != nil {
		return convGeom{}, err
	}
	if err := checkNode(op, "w", w, 4, "(O, C, kH, kW)"); err != nil {
		return convGeom{}, err
	}
	if err := sameDtype(op, x, w); err != nil {
		return convGeom{}, err
	}
	xs, ws := x.Shape(), w.Shape()
	g := convGeom{
		n: xs[0], c: xs[1], h: xs[2], w: xs[3],
		o: ws[0], kh: ws[2], kw: ws[3],
		stride: stride, pad: padding,
	}
	switch {
	case stride < 1:
		return g, fmt.Errorf("layers: %s: stride is %d; it must be at least 1", op, stride)
	case padding < 0:
		return g, fmt.Errorf("layers: %s: padding is %d; it must be 0 or more", op, padding)
	case ws[1] != g.c:
		return g, fmt.Errorf("layers: %s: x has %d channels but w %v expects %d; w must be (O, %d, kH, kW)", op, g.c, ws, ws[1], g.c)
	case g.kh > g.h+2*padding || g.kw > g.w+2*padding:
		return g, fmt.Errorf("layers: %s: kernel %d×%d is larger than the padded input %d×%d; use a smaller kernel or more padding", op, g.kh, g.kw, g.h+2*padding, g.w+2*padding)
	}
	if b != nil {
		if err := checkNode(op, "b", b, 1, "(O)"); err != nil {
			return g, err
		}
		if err := sameDtype(op, x, b); err != nil {
			return g, err
		}
		if b.Shape()[0] != g.o {
			return g, fmt.Errorf("layers: %s: b has %d elements but w has %d output channels", op, b.Shape()[0], g.o)
		}
	}
	g.oh = (g.h+2*padding-g.kh)/stride + 1
	g.ow = (g.w+2*padding-g.kw)/stride + 1
	return g, nil
}

// checkNode returns an error unless n is a float32 or float64 tensor of the
// given rank; layout names its axes for the message.
func checkNode(op, name string, n *G.Node, rank int, layout string) error {
	if n == nil {
		return fmt.Errorf("layers: %s: %s is nil", op, name)
	}
	if d := n.Dtype(); d != tensor.Float32 && d != tensor.Float64 {
		return fmt.Errorf("layers: %s: %s has dtype %v; use float32 or float64", op, name, d)
	}
	if s := n.Shape(); len(s) != rank {
		return fmt.Errorf("layers: %s: %s has shape %v; want rank %d %s", op, name, s, rank, layout)
	}
	for _, d := range n.Shape() {
		if d < 1 {
			return fmt.Errorf("layers: %s: %s has shape %v; every dimension must be at least 1", op, name, n.Shape())
		}
	}
	return nil
}

// checkNotNil returns an error naming the first nil node of ns, whose
// names are names, for the layers whose other checks do not go through
// checkNode.
func checkNotNil(op string, names []string, ns ...*G.Node) error {
	for i, n := range ns {
		if n == nil {
			return fmt.Errorf("layers: %s: %s is nil", op, names[i])
		}
	}
	return nil
}

// sameDtype returns an error unless b has a's dtype.
func sameDtype(op string, a, b *G.Node) error {
	if a.Dtype() != b.Dtype() {
		return fmt.Errorf("layers: %s: %s is %v but %s is %v; use one dtype", op, a.Name(), a.Dtype(), b.Name(), b.Dtype())
	}
	return nil
}

// checkShape returns an error when a value reaching an op at run time does
// not have the shape the op was built for.
func checkShape(op string, d *tensor.Dense, want ...int) error {
	if !d.Shape().Eq(tensor.Shape(want)) {
		return fmt.Errorf("layers: %s: got an input of shape %v, built for %v", op, d.Shape(), tensor.Shape(want))
	}
	return nil
}

func (g convGeom) xShape() tensor.Shape { return tensor.Shape{g.n, g.c, g.h, g.w} }
func (g convGeom) wShape() tensor.Shape { return tensor.Shape{g.o, g.c, g.kh, g.kw} }
func (g convGeom) yShape() tensor.Shape { return tensor.Shape{g.n, g.o, g.oh, g.ow} }

// ckk is the number of rows of the im2col matrix (and columns of w as a
// matrix); ohw the number of its columns.
func (g convGeom) ckk() int { return g.c * g.kh * g.kw }
func (g convGeom) ohw() int { return g.oh * g.ow }

// pointwise reports a 1×1 convolution with stride 1 and no padding, whose
// im2col matrix is the input itself.
func (g convGeom) pointwise() bool { return g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0 }

func (g convGeom) String() string {
	return fmt.Sprintf("x%v w%v s%d p%d", g.xShape(), g.wShape(), g.stride, g.pad)
}

// convOp is y = conv(x, w) + b; inputs (x, w) or (x, w, b).
type convOp struct {
	opBase
	g    convGeom
	bias bool
	convState
}

func (op convOp) Arity() int {
	if op.bias {
		return 3
	}
	return 2
}

func (op convOp) Type() hm.Type {
	if op.bias {
		return hm.NewFnType(tensorType(4), tensorType(4), tensorType(1), tensorType(4))
	}
	return hm.NewFnType(tensorType(4), tensorType(4), tensorType(4))
}

func (op convOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.g.yShape(), nil }
func (op convOp) Do(in ...G.Value) (G.Value, error)              { return op.UsePreallocDo(nil, in...) }
func (op convOp) WriteHash(h hash.Hash)                          { fmt.Fprintf(h, "layers.Conv2d %v %t", op.g, op.bias) }
func (op convOp) Hashcode() uint32                               { return hashOf(op) }
func (op convOp) String() string {
	return fmt.Sprintf("Conv2d(%dx%d, s%d, p%d)", op.g.kh, op.g.kw, op.g.stride, op.g.pad)
}

func (op convOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}

func (op convOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("Conv2d", in...)
	if err != nil {
		return nil, err
	}
	if len(ts) != op.Arity() {
		return nil, fmt.Errorf("layers: Conv2d: got %d inputs, want %d", len(ts), op.Arity())
	}
	if err := checkShape("Conv2d", ts[0], op.g.xShape()...); err != nil {
		return nil, err
	}
	if err := checkShape("Conv2d", ts[1], op.g.wShape()...); err != nil {
		return nil, err
	}
	if op.bias {
		if err := checkShape("Conv2d", ts[2], op.g.o); err != nil {
			return nil, err
		}
	}
	y := op.buf.output(prealloc, ts[0].Dtype(), op.g.yShape())
	switch {
	case y.Dtype() == tensor.Float32 && op.g.winograd():
		winogradConv(op.g, op.g.wgAlg(), data[float32](y), data[float32](ts[0]), data[float32](ts[1]), convBias[float32](ts), false)
	case y.Dtype() == tensor.Float32:
		convForward(op.scr, op.g, op.g.group(), data[float32](y), data[float32](ts[0]), data[float32](ts[1]), convBias[float32](ts))
	default:
		convForward(op.scr, op.g, op.g.group(), data[float64](y), data[float64](ts[0]), data[float64](ts[1]), convBias[float64](ts))
	}
	return y, nil
}

// convBias returns the bias data among (x, w, b), or nil without a bias.
func convBias[T float](ts []*tensor.Dense) []T {
	if len(ts) < 3 {
		return nil
	}
	return data[T](ts[2])
}

func (op convOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(convGradInputOp{g: op.g, convState: newConvState()}, in[1], grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(convGradWeightOp{g: op.g, convState: newConvState()}, in[0], grad)
	if err != nil {
		return nil, err
	}
	if !op.bias {
		return G.Nodes{dx, dw}, nil
	}
	db, err := G.ApplyOp(biasGradOp{dims: 4, n: op.g.n, c: op.g.o, hw: op.g.ohw(), buf: newBuffer()}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// convMinCols is the number of GEMM columns below which a convolution
// multiplies several images at once: the GEMM of one image with a small
// feature map (4×4 has 16 columns, 2×2 only 4) is too narrow for the
// kernels' 16- and 32-lane tiles and repacks the weights for every image.
const convMinCols = 256

// group is the number of images one GEMM of the convolution spans.
func (g convGeom) group() int { return max(1, min(g.n, convMinCols/g.ohw())) }

// convForward computes y = conv(x, w) + b (b may be nil), nb images per
// GEMM (see convGeom.group): with nb = 1 one image per GEMM, the images
// spread over the CPUs; with nb > 1 the GEMM writes the images' (O, H'·W')
// blocks side by side into a scratch (O, nb·H'·W') matrix, spread over the
// CPUs by gemm itself, and the blocks are then copied out.
// x is (N, C, H, W), w is (O, C·kH·kW), b is (O), y is (N, O, H'·W').
// Its scratch lives in s (nil: allocated).
func convForward[T float](s *convScratch, g convGeom, nb int, y, x, w, b []T) {
	ohw := g.ohw()
	bufs, unlock := lockScratch[T](s)
	defer unlock()
	// float32 never builds the im2col matrix (convMul); float64 builds it
	// unless it is the input itself.
	_, f32 := any(x).([]float32)
	needCols := !f32 && (nb > 1 || !g.pointwise())
	if nb == 1 {
		workers := splitWorkers(g.n)
		cols := make([][]T, workers)
		for k := range cols {
			if needCols {
				cols[k] = slot(bufs, k, g.ckk()*ohw)
			}
		}
		splitImages(g.n, func(k, lo, hi int) {
			cols := cols[k]
			for i := lo; i < hi; i++ {
				yi := y[i*g.o*ohw : (i+1)*g.o*ohw]
				cols = convMul(g, yi, x, w, cols, i, 1)
				if b == nil {
					continue
				}
				for o, bo := range b {
					row := yi[o*ohw : (o+1)*ohw]
					for j := range row {
						row[j] += bo
					}
				}
			}
		})
		return
	}
	tmp := slot(bufs, 0, g.o*nb*ohw)
	var cols []T
	if needCols {
		cols = slot(bufs, 1, g.ckk()*nb*ohw)
	}
	for i0 := 0; i0 < g.n; i0 += nb {
		cnt := min(nb, g.n-i0)
		ld := cnt * ohw
		cols = convMul(g, tmp[:g.o*ld], x, w, cols, i0, cnt)
		for j := range cnt {
			yi := y[(i0+j)*g.o*ohw : (i0+j+1)*g.o*ohw]
			for o := range g.o {
				row, src := yi[o*ohw:(o+1)*ohw], tmp[o*ld+j*ohw:][:ohw]
				if b == nil {
					copy(row, src)
					continue
				}
				for k, v := range src {
					row[k] = v + b[o]
				}
			}
		}
	}
}

// convMul overwrites dst (O, cnt·H'·W') with w·cols, where cols is the
// im2col matrices of images [i0, i0+cnt) of x side by side,
// (C·kH·kW, cnt·H'·W'). float32 packs cols straight into the GEMM's panels
// (convPacker) and never builds it; float64 builds it in the scratch
// buffer cols, which convMul returns (grown as needed) for the next call.
func convMul[T float](g convGeom, dst, x, w, cols []T, i0, cnt int) []T {
	ckk, chw, ld := g.ckk(), g.c*g.h*g.w, cnt*g.ohw()
	if xf, ok := any(x).([]float32); ok {
		sgemm.SgemmPackB(false, g.o, ld, ckk, 1, any(w).([]float32), ckk, convPacker(g, xf, i0), 0, any(dst).([]float32), ld)
		return cols
	}
	src := x[i0*chw : (i0+1)*chw]
	if cnt > 1 || !g.pointwise() {
		if cap(cols) < ckk*ld {
			cols = make([]T, ckk*ld)
		}
		src = cols[:ckk*ld]
		splitImages(cnt, func(_, lo, hi int) {
			for j := lo; j < hi; j++ {
				convIm2col(g, src[j*g.ohw():], ld, x[(i0+j)*chw:(i0+j+1)*chw])
			}
		})
	}
	gemm(false, false, g.o, ld, ckk, 1, w, ckk, src, ld, 0, dst, ld)
	return cols
}

// convGather copies the (O, H'·W') blocks of images [i0, i0+cnt) of dy
// (N, O, H'·W') side by side into dst (O, cnt·H'·W').
// The channels are spread over the CPUs (splitRows).
func convGather[T float](g convGeom, dst, dy []T, i0, cnt int) {
	ohw := g.ohw()
	ld := cnt * ohw
	splitRows(g.o, ld, func(lo, hi int) {
		for j := range cnt {
			dyi := dy[(i0+j)*g.o*ohw : (i0+j+1)*g.o*ohw]
			for o := lo; o < hi; o++ {
				copy(dst[o*ld+j*ohw:][:ohw], dyi[o*ohw:(o+1)*ohw])
			}
		}
	})
}

// convValid returns the range [lo, hi) of output positions o, among out,
// whose input position o·s − p + k lies inside [0, in).
func convValid(k, s, p, in, out int) (lo, hi int) {
	if p-k > 0 {
		lo = (p - k + s - 1) / s
	}
	if in-1+p-k >= 0 {
		hi = (in-1+p-k)/s + 1
	}
	hi = min(hi, out)
	return min(lo, hi), hi
}

// convIm2col unrolls one image x (C, H, W) into cols (C·kH·kW, H'·W'),
// stored with row stride ld ≥ H'·W': row (c, i, j), column (oy, ox) holds
// x[c, oy·s − p + i, ox·s − p + j], or 0 in the padding.
func convIm2col[T float](g convGeom, cols []T, ld int, x []T) {
	ohw, hw := g.ohw(), g.h*g.w
	for c := range g.c {
		xc := x[c*hw : (c+1)*hw]
		for i := range g.kh {
			yLo, yHi := convValid(i, g.stride, g.pad, g.h, g.oh)
			for j := range g.kw {
				xLo, xHi := convValid(j, g.stride, g.pad, g.w, g.ow)
				row := cols[((c*g.kh+i)*g.kw+j)*ld:][:ohw]
				clear(row[:yLo*g.ow])
				clear(row[yHi*g.ow:])
				for oy := yLo; oy < yHi; oy++ {
					dst := row[oy*g.ow : (oy+1)*g.ow]
					src := xc[(oy*g.stride-g.pad+i)*g.w:][:g.w]
					clear(dst[:xLo])
					clear(dst[xHi:])
					ix := xLo*g.stride - g.pad + j
					if g.stride == 1 {
						copy(dst[xLo:xHi], src[ix:])
						continue
					}
					for ox := xLo; ox < xHi; ox++ {
						dst[ox] = src[ix]
						ix += g.stride
					}
				}
			}
		}
	}
}

// convCol2im is the adjoint of convIm2col: it overwrites one image's
// gradient dx (C, H, W) with the sum of cols (C·kH·kW, H'·W'), stored with
// row stride ld, over every place each input element was copied to.
func convCol2im[T float](g convGeom, dx, cols []T, ld int) {
	clear(dx)
	ohw, hw := g.ohw(), g.h*g.w
	for c := range g.c {
		dxc := dx[c*hw : (c+1)*hw]
		for i := range g.kh {
			yLo, yHi := convValid(i, g.stride, g.pad, g.h, g.oh)
			for j := range g.kw {
				xLo, xHi := convValid(j, g.stride, g.pad, g.w, g.ow)
				row := cols[((c*g.kh+i)*g.kw+j)*ld:][:ohw]
				for oy := yLo; oy < yHi; oy++ {
					src := row[oy*g.ow : (oy+1)*g.ow]
					dst := dxc[(oy*g.stride-g.pad+i)*g.w:][:g.w]
					ix := xLo*g.stride - g.pad + j
					for ox := xLo; ox < xHi; ox++ {
						dst[ix] += src[ox]
						ix += g.stride
					}
				}
			}
		}
	}
}

// convGradInputOp is dx = conv(x, w)'s gradient with respect to x;
// inputs (w, dy).
type convGradInputOp struct {
	opBase
	g convGeom
	convState
}

func (convGradInputOp) Arity() int { return 2 }
func (convGradInputOp) Type() hm.Type {
	return hm.NewFnType(tensorType(4), tensorType(4), tensorType(4))
}
func (op convGradInputOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.g.xShape(), nil
}
func (op convGradInputOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op convGradInputOp) WriteHash(h hash.Hash)             { fmt.Fprintf(h, "layers.Conv2dGradInput %v", op.g) }
func (op convGradInputOp) Hashcode() uint32                  { return hashOf(op) }
func (convGradInputOp) String() string                       { return "Conv2dGradInput" }

func (op convGradInputOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	const name = "Conv2dGradInput"
	ts, err := denses(name, in...)
	if err != nil {
		return nil, err
	}
	if err := checkShape(name, ts[0], op.g.wShape()...); err != nil {
		return nil, err
	}
	if err := checkShape(name, ts[1], op.g.yShape()...); err != nil {
		return nil, err
	}
	dx := op.buf.output(prealloc, ts[0].Dtype(), op.g.xShape())
	switch {
	case dx.Dtype() == tensor.Float32 && op.g.winograd():
		winogradConv(op.g, op.g.wgAlg(), data[float32](dx), data[float32](ts[1]), data[float32](ts[0]), nil, true)
	case dx.Dtype() == tensor.Float32:
		convGradInput(op.scr, op.g, op.g.group(), data[float32](dx), data[float32](ts[0]), data[float32](ts[1]))
	default:
		convGradInput(op.scr, op.g, op.g.group(), data[float64](dx), data[float64](ts[0]), data[float64](ts[1]))
	}
	return dx, nil
}

// convGradInput overwrites dx (N, C, H, W) with col2im(wᵀ·dy), nb images
// per GEMM (see convGeom.group); w is (O, C·kH·kW), dy is (N, O, H'·W').
// Its scratch lives in s (nil: allocated).
func convGradInput[T float](s *convScratch, g convGeom, nb int, dx, w, dy []T) {
	ckk, ohw, chw := g.ckk(), g.ohw(), g.c*g.h*g.w
	bufs, unlock := lockScratch[T](s)
	defer unlock()
	if nb > 1 {
		dyg, cols := slot(bufs, 0, g.o*nb*ohw), slot(bufs, 1, ckk*nb*ohw)
		for i0 := 0; i0 < g.n; i0 += nb {
			cnt := min(nb, g.n-i0)
			ld := cnt * ohw
			convGather(g, dyg, dy, i0, cnt)
			gemm(true, false, ckk, ld, g.o, 1, w, ckk, dyg, ld, 0, cols, ld)
			splitImages(cnt, func(_, lo, hi int) {
				for j := lo; j < hi; j++ {
					convCol2im(g, dx[(i0+j)*chw:(i0+j+1)*chw], cols[j*ohw:], ld)
				}
			})
		}
		return
	}
	cols := make([][]T, splitWorkers(g.n))
	for k := range cols {
		if !g.pointwise() {
			cols[k] = slot(bufs, k, ckk*ohw)
		}
	}
	splitImages(g.n, func(k, lo, hi int) {
		cols := cols[k]
		for i := lo; i < hi; i++ {
			dyi := dy[i*g.o*ohw : (i+1)*g.o*ohw]
			dxi := dx[i*chw : (i+1)*chw]
			if cols == nil {
				gemm(true, false, ckk, ohw, g.o, 1, w, ckk, dyi, ohw, 0, dxi, ohw)
				continue
			}
			gemm(true, false, ckk, ohw, g.o, 1, w, ckk, dyi, ohw, 0, cols, ohw)
			convCol2im(g, dxi, cols, ohw)
		}
	})
}

// convGradWeightOp is conv(x, w)'s gradient with respect to w; inputs (x, dy).
type convGradWeightOp struct {
	opBase
	g convGeom
	convState
}

func (convGradWeightOp) Arity() int { return 2 }
func (convGradWeightOp) Type() hm.Type {
	return hm.NewFnType(tensorType(4), tensorType(4), tensorType(4))
}
func (op convGradWeightOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.g.wShape(), nil
}
func (op convGradWeightOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op convGradWeightOp) WriteHash(h hash.Hash)             { fmt.Fprintf(h, "layers.Conv2dGradWeight %v", op.g) }
func (op convGradWeightOp) Hashcode() uint32                  { return hashOf(op) }
func (convGradWeightOp) String() string                       { return "Conv2dGradWeight" }

func (op convGradWeightOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	const name = "Conv2dGradWeight"
	ts, err := denses(name, in...)
	if err != nil {
		return nil, err
	}
	if err := checkShape(name, ts[0], op.g.xShape()...); err != nil {
		return nil, err
	}
	if err := checkShape(name, ts[1], op.g.yShape()...); err != nil {
		return nil, err
	}
	dw := op.buf.output(prealloc, ts[0].Dtype(), op.g.wShape())
	switch {
	case dw.Dtype() == tensor.Float32 && op.g.wgGradWeight():
		winogradGradWeight(op.g, data[float32](dw), data[float32](ts[0]), data[float32](ts[1]))
	case dw.Dtype() == tensor.Float32:
		convGradWeight(op.scr, op.g, op.g.group(), data[float32](dw), data[float32](ts[0]), data[float32](ts[1]))
	default:
		convGradWeight(op.scr, op.g, op.g.group(), data[float64](dw), data[float64](ts[0]), data[float64](ts[1]))
	}
	return dw, nil
}

// convGradWeight overwrites dw (O, C·kH·kW) with Σₙ dyₙ·im2col(xₙ)ᵀ, nb
// images per GEMM (see convGeom.group); x is (N, C, H, W), dy is
// (N, O, H'·W'). It computes the transpose, dwᵀ = Σₙ im2col(xₙ)·dyₙᵀ, so
// that the GEMM reads the large im2col matrix in place and packs only the
// smaller dy, then transposes the (C·kH·kW, O) result into dw. With nb = 1
// each worker sums its share of the batch into its own buffer. Its scratch
// lives in s (nil: allocated).
func convGradWeight[T float](s *convScratch, g convGeom, nb int, dw, x, dy []T) {
	ckk, ohw, chw := g.ckk(), g.ohw(), g.c*g.h*g.w
	bufs, unlock := lockScratch[T](s)
	defer unlock()
	acc := slot(bufs, 0, len(dw)) // dwᵀ, (C·kH·kW, O)
	if nb > 1 {
		dyg, cols := slot(bufs, 1, g.o*nb*ohw), slot(bufs, 2, ckk*nb*ohw)
		for i0 := 0; i0 < g.n; i0 += nb {
			cnt := min(nb, g.n-i0)
			ld := cnt * ohw
			splitImages(cnt, func(_, lo, hi int) {
				for j := lo; j < hi; j++ {
					convIm2col(g, cols[j*ohw:], ld, x[(i0+j)*chw:(i0+j+1)*chw])
				}
			})
			convGather(g, dyg, dy, i0, cnt)
			beta := T(1)
			if i0 == 0 {
				beta = 0
			}
			gemm(false, true, ckk, g.o, ld, 1, cols, ld, dyg, ld, beta, acc, g.o)
		}
	} else {
		// Worker k sums into partial[k] (acc for worker 0) with its own
		// im2col matrix cols[k].
		workers := splitWorkers(g.n)
		partial, cols := make([][]T, workers), make([][]T, workers)
		partial[0] = acc
		for k := range workers {
			if k > 0 {
				partial[k] = slot(bufs, k, len(dw))
			}
			if !g.pointwise() {
				cols[k] = slot(bufs, workers+k, ckk*ohw)
			}
		}
		// A fixed split (splitFixed): which images each partial sum
		// holds, and so the rounding of their total, must not depend on
		// timing.
		splitFixed(g.n, func(k, lo, hi int) {
			sum, cols := partial[k], cols[k]
			for i := lo; i < hi; i++ {
				src := x[i*chw : (i+1)*chw]
				if cols != nil {
					convIm2col(g, cols, ohw, src)
					src = cols
				}
				beta := T(1)
				if i == lo {
					beta = 0
				}
				gemmSerial(false, true, ckk, g.o, ohw, 1, src, ohw, dy[i*g.o*ohw:(i+1)*g.o*ohw], ohw, beta, sum, g.o)
			}
		})
		for _, p := range partial[1:] {
			for j, v := range p {
				acc[j] += v
			}
		}
	}
	convTranspose(dw, acc, ckk, g.o)
}

// convTransposeBlock is the side of the square blocks convTranspose copies
// at a time: 32×32 float32 is 4 KiB read and 4 KiB written, both in L1.
const convTransposeBlock = 32

// convTranspose overwrites dst (cols, rows) with the transpose of src
// (rows, cols), block by block, the rows of dst spread over the CPUs
// (splitRows).
func convTranspose[T float](dst, src []T, rows, cols int) {
	const b = convTransposeBlock
	splitRows(cols, rows, func(lo, hi int) {
		for c0 := lo; c0 < hi; c0 += b {
			c1 := min(c0+b, hi)
			for r0 := 0; r0 < rows; r0 += b {
				r1 := min(r0+b, rows)
				for r := r0; r < r1; r++ {
					row := src[r*cols : (r+1)*cols]
					for c := c0; c < c1; c++ {
						dst[c*rows+r] = row[c]
					}
				}
			}
		}
	})
}

// biasGradOp sums dy over every axis but the channel axis: dy is (N, C)
// (dims 2) or (N, C, H, W) (dims 4), seen as (n, c, hw); the result is (C).
// It is the bias gradient of Conv2d and Linear.
type biasGradOp struct {
	opBase
	dims, n, c, hw int
	buf            *ownBuffer // nil: a new output at every run
}

func (biasGradOp) Arity() int { return 1 }
func (op biasGradOp) Type() hm.Type {
	return hm.NewFnType(tensorType(op.dims), tensorType(1))
}
func (op biasGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.Shape{op.c}, nil }
func (op biasGradOp) Do(in ...G.Value) (G.Value, error)              { return op.UsePreallocDo(nil, in...) }
func (op biasGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "layers.BiasGrad %d %d %d %d", op.dims, op.n, op.c, op.hw)
}
func (op biasGradOp) Hashcode() uint32 { return hashOf(op) }
func (biasGradOp) String() string      { return "BiasGrad" }

func (op biasGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("BiasGrad", in...)
	if err != nil {
		return nil, err
	}
	dy := ts[0]
	if dy.Shape().TotalSize() != op.n*op.c*op.hw {
		return nil, fmt.Errorf("layers: BiasGrad: got an input of shape %v, built for %d×%d×%d elements", dy.Shape(), op.n, op.c, op.hw)
	}
	db := op.buf.output(prealloc, dy.Dtype(), tensor.Shape{op.c})
	if db.Dtype() == tensor.Float32 {
		biasGrad(op.n, op.c, op.hw, data[float32](db), data[float32](dy))
	} else {
		biasGrad(op.n, op.c, op.hw, data[float64](db), data[float64](dy))
	}
	return db, nil
}

// biasGrad overwrites db (c) with the sums of dy (n, c, hw) over n and hw,
// accumulated in float64, the channels spread over the CPUs (splitRows):
// each channel is summed by one goroutine in one fixed order.
func biasGrad[T float](n, c, hw int, db, dy []T) {
	splitRows(c, n*hw, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var s float64
			for i := range n {
				for _, v := range dy[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					s += float64(v)
				}
			}
			db[ch] = T(s)
		}
	})
}

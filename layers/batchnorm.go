package layers

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BNStats holds BatchNorm2d's running statistics, shared by every graph
// built from one model (a training graph and an evaluation graph share the
// same *BNStats and its tensors).
type BNStats struct {
	Mean, Var         *tensor.Dense // (C), float32 or float64; Mean starts at 0, Var at 1
	NumBatchesTracked int64         // counts training forward passes, as PyTorch's num_batches_tracked
	Momentum, Eps     float64       // 0.1 and 1e-5 by default
}

// NewBNStats returns fresh statistics for c channels of dtype dt (mean 0,
// var 1, momentum 0.1, eps 1e-5).
func NewBNStats(dt tensor.Dtype, c int) *BNStats {
	mean := tensor.New(tensor.Of(dt), tensor.WithShape(c))
	v := tensor.New(tensor.Of(dt), tensor.WithShape(c))
	switch dt {
	case tensor.Float32:
		for i := range data[float32](v) {
			data[float32](v)[i] = 1
		}
	case tensor.Float64:
		for i := range data[float64](v) {
			data[float64](v)[i] = 1
		}
	}
	return &BNStats{Mean: mean, Var: v, Momentum: 0.1, Eps: 1e-5}
}

// check reports whether s fits c channels.
func (s *BNStats) check(c int) error {
	if s == nil {
		return fmt.Errorf("layers: BatchNorm2d: nil *BNStats; make one with NewBNStats")
	}
	for _, t := range []struct {
		name string
		d    *tensor.Dense
	}{{"Mean", s.Mean}, {"Var", s.Var}} {
		if t.d == nil {
			return fmt.Errorf("layers: BatchNorm2d: stats.%s is nil; make the stats with NewBNStats", t.name)
		}
		if dt := t.d.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
			return fmt.Errorf("layers: BatchNorm2d: stats.%s has dtype %v; only float32 and float64 are supported", t.name, dt)
		}
		if !t.d.Shape().Eq(tensor.Shape{c}) {
			return fmt.Errorf("layers: BatchNorm2d: stats.%s has shape %v, want (%d) for %d channels", t.name, t.d.Shape(), c, c)
		}
	}
	if !(s.Eps >= 0) || !(s.Momentum >= 0 && s.Momentum <= 1) {
		return fmt.Errorf("layers: BatchNorm2d: momentum %g and eps %g: want momentum in [0, 1] and eps ≥ 0", s.Momentum, s.Eps)
	}
	return nil
}

// BatchNorm2d is PyTorch's nn.BatchNorm2d (affine). x is (N, C, H, W),
// gamma and beta are (C).
//
// With train true it normalises with the batch's statistics (biased
// variance) and, every time the op runs forward, updates stats as PyTorch
// does: mean ← (1−m)·mean + m·batchMean, var ← (1−m)·var +
// m·unbiasedBatchVar, NumBatchesTracked++. With train false it normalises
// with stats.Mean/Var and never changes them. Mode is fixed when the node is
// built (no gorgonia TrainModeOp/SetTraining: Gorgonia's BatchNorm loses its
// statistics that way).
//
// Differentiable in x, gamma and beta in both modes.
func BatchNorm2d(x, gamma, beta *G.Node, stats *BNStats, train bool) (*G.Node, error) {
	if err := checkNotNil("BatchNorm2d", []string{"x", "gamma", "beta"}, x, gamma, beta); err != nil {
		return nil, err
	}
	xs := x.Shape()
	if len(xs) != 4 {
		return nil, fmt.Errorf("layers: BatchNorm2d: x has shape %v; want (N, C, H, W)", xs)
	}
	c := xs[1]
	for _, p := range []struct {
		name string
		n    *G.Node
	}{{"gamma", gamma}, {"beta", beta}} {
		if !p.n.Shape().Eq(tensor.Shape{c}) {
			return nil, fmt.Errorf("layers: BatchNorm2d: %s has shape %v; want (%d), one per channel of x %v", p.name, p.n.Shape(), c, xs)
		}
		if p.n.Dtype() != x.Dtype() {
			return nil, fmt.Errorf("layers: BatchNorm2d: %s has dtype %v, x has %v", p.name, p.n.Dtype(), x.Dtype())
		}
	}
	if err := stats.check(c); err != nil {
		return nil, err
	}
	if m := xs[0] * xs[2] * xs[3]; train && m < 2 {
		return nil, fmt.Errorf("layers: BatchNorm2d: x %v has %d value per channel; training needs more than 1 (use a larger batch or train=false)", xs, m)
	}
	op := &bnOp{opInPlace: inPlaceOf(0, x), stats: stats, train: train, mean: make([]float64, c), invstd: make([]float64, c), sumDy: make([]float64, c)}
	return G.ApplyOp(op, x, gamma, beta)
}

// bnOp is y = (x − mean)·invstd·γ + β per channel; inputs (x, γ, β). It saves
// the mean and invstd it used for its gradient ops, which run after it in the
// same TapeMachine run. It writes y over x where x is dead after it (see
// inPlaceOK): in evaluation graphs, where no gradient reads x.
type bnOp struct {
	opInPlace
	stats        *BNStats
	train        bool
	mean, invstd []float64 // (C), what the last forward run used
	ran          bool      // the forward has run at least once
	sumDy        []float64 // (C), Σ dy per channel, from the last bnGradGammaOp run
	buf          ownBuffer
}

func (*bnOp) Arity() int { return 3 }
func (*bnOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(tensorType(4), G.TensorType{Dims: 1, Of: a}, G.TensorType{Dims: 1, Of: a}, tensorType(4))
}
func (*bnOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op *bnOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *bnOp) WriteHash(h hash.Hash)             { writeIdentity(h, "layers.BatchNorm2d", op) }
func (op *bnOp) Hashcode() uint32                  { return hashOf(op) }
func (op *bnOp) String() string {
	if op.train {
		return "BatchNorm2d(train)"
	}
	return "BatchNorm2d(eval)"
}
func (*bnOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *bnOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("BatchNorm2d", in...)
	if err != nil {
		return nil, err
	}
	x, gamma, beta := ts[0], ts[1], ts[2]
	s := x.Shape()
	n, c, hw := s[0], s[1], s[2]*s[3]
	if err := op.stats.check(c); err != nil {
		return nil, err
	}
	runMean, runVar := bnLoad(op.stats.Mean), bnLoad(op.stats.Var)
	y := op.buf.output(prealloc, x.Dtype(), s)
	if op.train {
		batchVar := make([]float64, c)
		if x.Dtype() == tensor.Float32 {
			bnTrainForward(data[float32](y), data[float32](x), data[float32](gamma), data[float32](beta), op.mean, batchVar, op.invstd, op.stats.Eps, n, c, hw)
		} else {
			bnTrainForward(data[float64](y), data[float64](x), data[float64](gamma), data[float64](beta), op.mean, batchVar, op.invstd, op.stats.Eps, n, c, hw)
		}
		m, count := op.stats.Momentum, float64(n*hw)
		for ch := range c {
			runMean[ch] = (1-m)*runMean[ch] + m*op.mean[ch]
			runVar[ch] = (1-m)*runVar[ch] + m*batchVar[ch]*count/(count-1)
		}
		bnStore(op.stats.Mean, runMean)
		bnStore(op.stats.Var, runVar)
		op.stats.NumBatchesTracked++
	} else {
		copy(op.mean, runMean)
		for ch, v := range runVar {
			op.invstd[ch] = bnInvStd(v, op.stats.Eps)
		}
		if x.Dtype() == tensor.Float32 {
			bnForward(data[float32](y), data[float32](x), data[float32](gamma), data[float32](beta), op.mean, op.invstd, n, c, hw)
		} else {
			bnForward(data[float64](y), data[float64](x), data[float64](gamma), data[float64](beta), op.mean, op.invstd, n, c, hw)
		}
	}
	op.ran = true
	return y, nil
}

func (op *bnOp) SymDiff(in G.Nodes, y, dy *G.Node) (G.Nodes, error) {
	x, gamma := in[0], in[1]
	dgamma, err := G.ApplyOp(bnGradGammaOp{fwd: op, buf: newBuffer()}, x, dy)
	if err != nil {
		return nil, err
	}
	dbeta, err := G.ApplyOp(bnGradBetaOp{fwd: op, buf: newBuffer()}, dy, dgamma)
	if err != nil {
		return nil, err
	}
	dx, err := G.ApplyOp(bnGradInputOp{opInPlace: inPlaceOf(2, dy), fwd: op, buf: newBuffer()}, x, gamma, dy, dgamma, dbeta)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dgamma, dbeta}, nil
}

// bnLoad returns a float64 copy of a float32 or float64 vector.
func bnLoad(d *tensor.Dense) []float64 {
	if d.Dtype() == tensor.Float32 {
		v := data[float32](d)
		out := make([]float64, len(v))
		for i, f := range v {
			out[i] = float64(f)
		}
		return out
	}
	return append([]float64(nil), data[float64](d)...)
}

// bnStore writes v into a float32 or float64 vector.
func bnStore(d *tensor.Dense, v []float64) {
	if d.Dtype() == tensor.Float32 {
		out := data[float32](d)
		for i, f := range v {
			out[i] = float32(f)
		}
		return
	}
	copy(data[float64](d), v)
}

// bnParallel calls f(ch) for every channel 0..c−1 of a pass over size
// elements, each channel on one goroutine (a fixed summation order), split
// over the CPUs when size is large enough (see splitRows).
func bnParallel(c, size int, f func(ch int)) {
	splitRows(c, size/max(c, 1), func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			f(ch)
		}
	})
}

// bnInvStd is 1/√(variance + eps).
func bnInvStd(variance, eps float64) float64 { return 1 / math.Sqrt(variance+eps) }

// bnTrainForward normalises x (N, C, HW) with its batch statistics into y:
// for each channel, its mean and biased variance in float64 (two passes
// over the channel), invstd, then y = (x − mean)·invstd·γ + β, all in one
// pass over the channels: a channel (N·HW values, 256 KiB for VGG's largest
// at batch 64) is still in the CPU's cache when it is normalised, and the
// split over the CPUs is paid once. y may be x: each channel is read whole
// before it is written.
func bnTrainForward[T float](y, x, gamma, beta []T, mean, variance, invstd []float64, eps float64, n, c, hw int) {
	count := float64(n * hw)
	bnParallel(c, len(x), func(ch int) {
		var sum float64
		for i := range n {
			sum += sum4(x[(i*c+ch)*hw : (i*c+ch+1)*hw])
		}
		mu := sum / count
		var sq float64
		for i := range n {
			sq += sqDev4(x[(i*c+ch)*hw:(i*c+ch+1)*hw], mu)
		}
		mean[ch], variance[ch], invstd[ch] = mu, sq/count, bnInvStd(sq/count, eps)
		bnChannel(y, x, gamma, beta, mean, invstd, n, c, hw, ch)
	})
}

// sum4 returns Σ x in float64, in four interleaved partial sums: one chain
// of float64 additions waits ~4 cycles per element, four chains overlap.
// The order is fixed, so a channel's sum never depends on the split.
func sum4[T float](x []T) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// sqDev4 returns Σ (x − mu)² in float64, in four partial sums as sum4.
func sqDev4[T float](x []T, mu float64) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		d0, d1, d2, d3 := float64(x[i])-mu, float64(x[i+1])-mu, float64(x[i+2])-mu, float64(x[i+3])-mu
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := float64(x[i]) - mu
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// bnForward computes y = (x − mean)·invstd·γ + β; x and y are (N, C, HW).
func bnForward[T float](y, x, gamma, beta []T, mean, invstd []float64, n, c, hw int) {
	bnParallel(c, len(x), func(ch int) { bnChannel(y, x, gamma, beta, mean, invstd, n, c, hw, ch) })
}

// bnChannel is bnForward for channel ch.
func bnChannel[T float](y, x, gamma, beta []T, mean, invstd []float64, n, c, hw, ch int) {
	mu, scale, shift := mean[ch], invstd[ch]*float64(gamma[ch]), float64(beta[ch])
	for i := range n {
		lo, hi := (i*c+ch)*hw, (i*c+ch+1)*hw
		yc := y[lo:hi]
		for j, v := range x[lo:hi] {
			yc[j] = T((float64(v)-mu)*scale + shift)
		}
	}
}

// bnGradGammaOp is dγ = Σ dy·x̂ per channel, with x̂ = (x − mean)·invstd as
// its forward op computed; inputs (x, dy). It takes no ordering input: dy is
// computed from the forward op's output in any graph with a real loss, and
// a graph that would run it first fails at its first run (fwd.ran), since a
// TapeMachine's order never changes. An ordering input (the forward output)
// would keep the BatchNorm's output alive until the backward pass and stop
// the ReLU after it from overwriting it.
type bnGradGammaOp struct {
	opBase
	fwd *bnOp
	buf *ownBuffer
}

func (bnGradGammaOp) Arity() int { return 2 }
func (bnGradGammaOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(tensorType(4), tensorType(4), G.TensorType{Dims: 1, Of: a})
}
func (bnGradGammaOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[1]}, nil
}
func (op bnGradGammaOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op bnGradGammaOp) WriteHash(h hash.Hash) {
	writeIdentity(h, "layers.BatchNorm2dGradGamma", op.fwd)
}
func (op bnGradGammaOp) Hashcode() uint32 { return hashOf(op) }
func (bnGradGammaOp) String() string      { return "BatchNorm2dGradGamma" }

func (op bnGradGammaOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("BatchNorm2dGradGamma", in...)
	if err != nil {
		return nil, err
	}
	if !op.fwd.ran {
		return nil, fmt.Errorf("layers: BatchNorm2dGradGamma: the forward BatchNorm2d has not run; run the whole graph")
	}
	x, dy := ts[0], ts[1]
	s := x.Shape()
	n, c, hw := s[0], s[1], s[2]*s[3]
	dg := op.buf.output(prealloc, x.Dtype(), tensor.Shape{c})
	if x.Dtype() == tensor.Float32 {
		bnGradGamma(data[float32](dg), data[float32](x), data[float32](dy), op.fwd, n, c, hw)
	} else {
		bnGradGamma(data[float64](dg), data[float64](x), data[float64](dy), op.fwd, n, c, hw)
	}
	return dg, nil
}

// bnGradGamma writes dγ and, in the same pass over dy, fwd.sumDy = Σ dy
// per channel, which bnGradBetaOp hands out as dβ.
func bnGradGamma[T float](dg, x, dy []T, fwd *bnOp, n, c, hw int) {
	bnParallel(c, len(x), func(ch int) {
		var sum, sumDy float64
		mu := fwd.mean[ch]
		for i := range n {
			lo, hi := (i*c+ch)*hw, (i*c+ch+1)*hw
			dyc := dy[lo:hi]
			for j, v := range x[lo:hi] {
				d := float64(dyc[j])
				sum += d * (float64(v) - mu)
				sumDy += d
			}
		}
		dg[ch], fwd.sumDy[ch] = T(sum*fwd.invstd[ch]), sumDy
	})
}

// bnGradBetaOp is dβ = Σ dy per channel; inputs (dy, dγ). bnGradGammaOp
// sums dy in its pass over dy (fwd.sumDy): dγ orders this op after it, and dy
// gives the shape.
type bnGradBetaOp struct {
	opBase
	fwd *bnOp
	buf *ownBuffer
}

func (bnGradBetaOp) Arity() int { return 2 }
func (bnGradBetaOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	v := G.TensorType{Dims: 1, Of: a}
	return hm.NewFnType(tensorType(4), v, v)
}
func (bnGradBetaOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[1]}, nil
}
func (op bnGradBetaOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op bnGradBetaOp) WriteHash(h hash.Hash)             { writeIdentity(h, "layers.BatchNorm2dGradBeta", op.fwd) }
func (op bnGradBetaOp) Hashcode() uint32                  { return hashOf(op) }
func (bnGradBetaOp) String() string                       { return "BatchNorm2dGradBeta" }

func (op bnGradBetaOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("BatchNorm2dGradBeta", in...)
	if err != nil {
		return nil, err
	}
	dy := ts[0]
	c := dy.Shape()[1]
	db := op.buf.output(prealloc, dy.Dtype(), tensor.Shape{c})
	bnStore(db, op.fwd.sumDy)
	return db, nil
}

// bnGradInputOp is dx; inputs (x, γ, dy, dγ, dβ). In training mode, with M =
// N·H·W values per channel, dx = γ·invstd·(dy − dβ/M − x̂·dγ/M); in
// evaluation mode dx = dy·γ·invstd (dγ and dβ are then only read to order
// the op after the forward op). It writes dx over dy where dy is dead after
// it (see inPlaceOK).
type bnGradInputOp struct {
	opInPlace
	fwd *bnOp
	buf *ownBuffer
}

func (bnGradInputOp) Arity() int { return 5 }
func (bnGradInputOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	v := G.TensorType{Dims: 1, Of: a}
	return hm.NewFnType(tensorType(4), v, tensorType(4), v, v, tensorType(4))
}
func (bnGradInputOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op bnGradInputOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op bnGradInputOp) WriteHash(h hash.Hash) {
	writeIdentity(h, "layers.BatchNorm2dGradInput", op.fwd)
}
func (op bnGradInputOp) Hashcode() uint32 { return hashOf(op) }
func (bnGradInputOp) String() string      { return "BatchNorm2dGradInput" }

func (op bnGradInputOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("BatchNorm2dGradInput", in...)
	if err != nil {
		return nil, err
	}
	x := ts[0]
	s := x.Shape()
	n, c, hw := s[0], s[1], s[2]*s[3]
	dx := op.buf.output(prealloc, x.Dtype(), s)
	if x.Dtype() == tensor.Float32 {
		bnGradInput(data[float32](dx), data[float32](x), data[float32](ts[1]), data[float32](ts[2]), data[float32](ts[3]), data[float32](ts[4]), op.fwd, n, c, hw)
	} else {
		bnGradInput(data[float64](dx), data[float64](x), data[float64](ts[1]), data[float64](ts[2]), data[float64](ts[3]), data[float64](ts[4]), op.fwd, n, c, hw)
	}
	return dx, nil
}

func bnGradInput[T float](dx, x, gamma, dy, dgamma, dbeta []T, fwd *bnOp, n, c, hw int) {
	count := float64(n * hw)
	bnParallel(c, len(x), func(ch int) {
		mu, is := fwd.mean[ch], fwd.invstd[ch]
		k := float64(gamma[ch]) * is
		for i := range n {
			lo, hi := (i*c+ch)*hw, (i*c+ch+1)*hw
			dxc, dyc := dx[lo:hi], dy[lo:hi]
			if !fwd.train {
				for j, v := range dyc {
					dxc[j] = T(float64(v) * k)
				}
				continue
			}
			mb, mg := float64(dbeta[ch])/count, float64(dgamma[ch])/count
			for j, v := range x[lo:hi] {
				xhat := (float64(v) - mu) * is
				dxc[j] = T(k * (float64(dyc[j]) - mb - xhat*mg))
			}
		}
	})
}

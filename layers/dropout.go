package layers

import (
	"fmt"
	"hash"
	"math/rand/v2"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Dropout is PyTorch's nn.Dropout(p): in training each element is zeroed
// with probability p and the rest scaled by 1/(1−p) (correct for every p in
// [0, 1); p = 1 gives zeros); the backward pass uses the same mask and
// scale. With train false, or p = 0, it returns x itself. The mask is drawn
// from src (a seeded *rand.PCG from math/rand/v2, which can be marshalled
// into a checkpoint), a fresh mask every forward run. x has any shape.
func Dropout(x *G.Node, p float64, src *rand.PCG, train bool) (*G.Node, error) {
	if err := checkNotNil("Dropout", []string{"x"}, x); err != nil {
		return nil, err
	}
	if !(p >= 0 && p <= 1) {
		return nil, fmt.Errorf("layers: Dropout: probability %g is outside [0, 1]", p)
	}
	if !train || p == 0 {
		return x, nil
	}
	if src == nil {
		return nil, fmt.Errorf("layers: Dropout: nil random source; pass a seeded rand.NewPCG(seed1, seed2)")
	}
	if dt := x.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("layers: Dropout: x has dtype %v; only float32 and float64 are supported", dt)
	}
	op := &dropoutOp{p: p, rng: rand.New(src), keep: make([]bool, x.Shape().TotalSize())}
	return G.ApplyOp(op, x)
}

// dropoutOp is y = x·keep·scale with a fresh keep mask every run; it saves
// the mask for its gradient op, which runs after it in the same TapeMachine
// run.
type dropoutOp struct {
	opBase
	p    float64
	rng  *rand.Rand // wraps the caller's *rand.PCG: its state is the caller's
	keep []bool     // the last forward run's mask, one per element of x
	buf  ownBuffer
}

func (*dropoutOp) Arity() int    { return 1 }
func (*dropoutOp) Type() hm.Type { return hm.NewFnType(hm.TypeVariable('a'), hm.TypeVariable('a')) }
func (*dropoutOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op *dropoutOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *dropoutOp) WriteHash(h hash.Hash)             { writeIdentity(h, "layers.Dropout", op) }
func (op *dropoutOp) Hashcode() uint32                  { return hashOf(op) }
func (op *dropoutOp) String() string                    { return fmt.Sprintf("Dropout(%g)", op.p) }
func (*dropoutOp) DiffWRT(int) []bool                   { return []bool{true} }

func (op *dropoutOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("Dropout", in...)
	if err != nil {
		return nil, err
	}
	x := ts[0]
	if x.Shape().TotalSize() != len(op.keep) {
		return nil, fmt.Errorf("layers: Dropout: x has shape %v, the graph was built for %d elements", x.Shape(), len(op.keep))
	}
	for i := range op.keep {
		// p = 1 keeps nothing and draws nothing.
		op.keep[i] = op.p < 1 && op.rng.Float64() >= op.p
	}
	y := op.buf.output(prealloc, x.Dtype(), x.Shape())
	if x.Dtype() == tensor.Float32 {
		dropoutApply(data[float32](y), data[float32](x), op.keep, op.p)
	} else {
		dropoutApply(data[float64](y), data[float64](x), op.keep, op.p)
	}
	return y, nil
}

func (op *dropoutOp) SymDiff(in G.Nodes, y, dy *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(dropoutGradOp{fwd: op, buf: newBuffer()}, y, dy)
	return G.Nodes{dx}, err
}

// dropoutApply sets out = in·scale where keep, else 0. The scale 1/(1−p) is
// computed in T, as PyTorch does.
func dropoutApply[T float](out, in []T, keep []bool, p float64) {
	scale := T(1) / T(1-p)
	for i, v := range in {
		if keep[i] {
			out[i] = v * scale
		} else {
			out[i] = 0
		}
	}
}

// dropoutGradOp is dx = dy·keep·scale with its forward op's mask; inputs (y,
// dy). y is only read to order the op after the forward op.
type dropoutGradOp struct {
	opBase
	fwd *dropoutOp
	buf *ownBuffer
}

func (dropoutGradOp) Arity() int { return 2 }
func (dropoutGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}
func (dropoutGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op dropoutGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op dropoutGradOp) WriteHash(h hash.Hash)             { writeIdentity(h, "layers.DropoutGrad", op.fwd) }
func (op dropoutGradOp) Hashcode() uint32                  { return hashOf(op) }
func (op dropoutGradOp) String() string                    { return fmt.Sprintf("DropoutGrad(%g)", op.fwd.p) }

func (op dropoutGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("DropoutGrad", in...)
	if err != nil {
		return nil, err
	}
	dy := ts[1]
	dx := op.buf.output(prealloc, dy.Dtype(), dy.Shape())
	if dy.Dtype() == tensor.Float32 {
		dropoutApply(data[float32](dx), data[float32](dy), op.fwd.keep, op.fwd.p)
	} else {
		dropoutApply(data[float64](dx), data[float64](dy), op.fwd.keep, op.fwd.p)
	}
	return dx, nil
}

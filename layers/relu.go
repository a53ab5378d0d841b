package layers

import (
	"hash"
	"io"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReLU returns max(x, 0) elementwise; x has any shape. As in PyTorch, the
// gradient at exactly 0 is 0.
func ReLU(x *G.Node) (*G.Node, error) {
	if err := checkNotNil("ReLU", []string{"x"}, x); err != nil {
		return nil, err
	}
	return G.ApplyOp(reluOp{opInPlace: inPlaceOf(0, x), buf: newBuffer()}, x)
}

// reluOp is y = max(x, 0), written over x where x is dead after it (see
// inPlaceOK): a ReLU after a BatchNorm then takes no memory of its own.
type reluOp struct {
	opInPlace
	buf *ownBuffer
}

func (reluOp) Arity() int    { return 1 }
func (reluOp) Type() hm.Type { return hm.NewFnType(hm.TypeVariable('a'), hm.TypeVariable('a')) }
func (reluOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op reluOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (reluOp) WriteHash(h hash.Hash)                { io.WriteString(h, "layers.ReLU") }
func (op reluOp) Hashcode() uint32                  { return hashOf(op) }
func (reluOp) String() string                       { return "ReLU" }
func (reluOp) DiffWRT(int) []bool                   { return []bool{true} }

func (op reluOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("ReLU", in...)
	if err != nil {
		return nil, err
	}
	x := ts[0]
	y := op.buf.output(prealloc, x.Dtype(), x.Shape())
	if x.Dtype() == tensor.Float32 {
		relu(data[float32](y), data[float32](x))
	} else {
		relu(data[float64](y), data[float64](x))
	}
	return y, nil
}

func (reluOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(reluGradOp{opInPlace: inPlaceOf(1, grad), buf: newBuffer()}, output, grad)
	return G.Nodes{dx}, err
}

// relu writes y = max(x, 0), split over the CPUs.
func relu[T float](y, x []T) {
	splitRows(len(x), 1, func(lo, hi int) {
		yc := y[lo:hi]
		for i, v := range x[lo:hi] {
			yc[i] = max(v, 0)
		}
	})
}

// reluGradOp is dx = dy where y > 0, else 0; inputs (y, dy). It writes dx
// over dy where dy is dead after it (see inPlaceOK).
type reluGradOp struct {
	opInPlace
	buf *ownBuffer
}

func (reluGradOp) Arity() int { return 2 }
func (reluGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}
func (reluGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op reluGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (reluGradOp) WriteHash(h hash.Hash)                { io.WriteString(h, "layers.ReLUGrad") }
func (op reluGradOp) Hashcode() uint32                  { return hashOf(op) }
func (reluGradOp) String() string                       { return "ReLUGrad" }

func (op reluGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("ReLUGrad", in...)
	if err != nil {
		return nil, err
	}
	y, dy := ts[0], ts[1]
	dx := op.buf.output(prealloc, y.Dtype(), y.Shape())
	if y.Dtype() == tensor.Float32 {
		reluGrad(data[float32](dx), data[float32](y), data[float32](dy))
	} else {
		reluGrad(data[float64](dx), data[float64](y), data[float64](dy))
	}
	return dx, nil
}

// reluGrad writes dx = dy where y > 0, else 0 (NaN and −0 included), split
// over the CPUs. The test is made on y's bits, without a branch: ReLU's
// output is positive about half the time at random, and a branch would be
// mispredicted as often (4× slower).
func reluGrad[T float](dx, y, dy []T) {
	splitRows(len(y), 1, func(lo, hi int) {
		switch dxc := any(dx[lo:hi]).(type) {
		case []float32:
			reluGrad32(dxc, any(y[lo:hi]).([]float32), any(dy[lo:hi]).([]float32))
		case []float64:
			reluGrad64(dxc, any(y[lo:hi]).([]float64), any(dy[lo:hi]).([]float64))
		}
	})
}

// reluGrad32 is reluGrad for float32. As an int32, y's bits s lie in
// (0, +Inf's bits] exactly when y > 0; the mask is all ones then: −s is
// negative for s > 0 (and for −0's MinInt32, which the second term, wrapping
// to positive, rules out), s − (Inf+1) is negative for s ≤ +Inf.
func reluGrad32(dx, y, dy []float32) {
	dy = dy[:len(y)]
	dx = dx[:len(y)]
	for i, v := range y {
		s := int32(math.Float32bits(v))
		m := (-s >> 31) & ((s - 0x7f800001) >> 31)
		dx[i] = math.Float32frombits(math.Float32bits(dy[i]) & uint32(m))
	}
}

// reluGrad64 is reluGrad32 for float64.
func reluGrad64(dx, y, dy []float64) {
	dy = dy[:len(y)]
	dx = dx[:len(y)]
	for i, v := range y {
		s := int64(math.Float64bits(v))
		m := (-s >> 63) & ((s - 0x7ff0000000000001) >> 63)
		dx[i] = math.Float64frombits(math.Float64bits(dy[i]) & uint64(m))
	}
}

package layers

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear is PyTorch's nn.Linear: y = x·wᵀ + b. x is (N, in), w is
// (out, in), b is (out) or nil; y is (N, out).
func Linear(x, w, b *G.Node) (*G.Node, error) {
	const op = "Linear"
	if err := checkNode(op, "x", x, 2, "(N, in)"); err != nil {
		return nil, err
	}
	if err := checkNode(op, "w", w, 2, "(out, in)"); err != nil {
		return nil, err
	}
	if err := sameDtype(op, x, w); err != nil {
		return nil, err
	}
	xs, ws := x.Shape(), w.Shape()
	l := linearOp{n: xs[0], in: xs[1], out: ws[0], bias: b != nil, buf: newBuffer()}
	if ws[1] != l.in {
		return nil, fmt.Errorf("layers: %s: x has %d features but w %v expects %d; w must be (out, %d)", op, l.in, ws, ws[1], l.in)
	}
	if b == nil {
		return G.ApplyOp(l, x, w)
	}
	if err := checkNode(op, "b", b, 1, "(out)"); err != nil {
		return nil, err
	}
	if err := sameDtype(op, x, b); err != nil {
		return nil, err
	}
	if b.Shape()[0] != l.out {
		return nil, fmt.Errorf("layers: %s: b has %d elements but w has %d outputs", op, b.Shape()[0], l.out)
	}
	return G.ApplyOp(l, x, w, b)
}

// linearOp is y = x·wᵀ + b; inputs (x, w) or (x, w, b) with x (n, in),
// w (out, in), b (out).
type linearOp struct {
	opBase
	n, in, out int
	bias       bool
	buf        *ownBuffer
}

func (op linearOp) Arity() int {
	if op.bias {
		return 3
	}
	return 2
}

func (op linearOp) Type() hm.Type {
	if op.bias {
		return hm.NewFnType(tensorType(2), tensorType(2), tensorType(1), tensorType(2))
	}
	return hm.NewFnType(tensorType(2), tensorType(2), tensorType(2))
}

func (op linearOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.n, op.out}, nil
}
func (op linearOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op linearOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "layers.Linear %d %d %d %t", op.n, op.in, op.out, op.bias)
}
func (op linearOp) Hashcode() uint32 { return hashOf(op) }
func (op linearOp) String() string   { return fmt.Sprintf("Linear(%d→%d)", op.in, op.out) }

func (op linearOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}

func (op linearOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	const name = "Linear"
	ts, err := denses(name, in...)
	if err != nil {
		return nil, err
	}
	if len(ts) != op.Arity() {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want %d", name, len(ts), op.Arity())
	}
	if err := checkShape(name, ts[0], op.n, op.in); err != nil {
		return nil, err
	}
	if err := checkShape(name, ts[1], op.out, op.in); err != nil {
		return nil, err
	}
	if op.bias {
		if err := checkShape(name, ts[2], op.out); err != nil {
			return nil, err
		}
	}
	y := op.buf.output(prealloc, ts[0].Dtype(), tensor.Shape{op.n, op.out})
	if y.Dtype() == tensor.Float32 {
		linearForward(op.n, op.in, op.out, data[float32](y), data[float32](ts[0]), data[float32](ts[1]), convBias[float32](ts))
	} else {
		linearForward(op.n, op.in, op.out, data[float64](y), data[float64](ts[0]), data[float64](ts[1]), convBias[float64](ts))
	}
	return y, nil
}

// linearForward computes y (n, out) = x (n, in) · wᵀ (in, out) + b (out);
// b may be nil.
func linearForward[T float](n, in, out int, y, x, w, b []T) {
	gemm(false, true, n, out, in, 1, x, in, w, in, 0, y, out)
	if b == nil {
		return
	}
	for i := range n {
		row := y[i*out : (i+1)*out]
		for j, bj := range b {
			row[j] += bj
		}
	}
}

func (op linearOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(linearGradOp{n: op.n, in: op.in, out: op.out, wrtWeight: false, buf: newBuffer()}, grad, in[1])
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(linearGradOp{n: op.n, in: op.in, out: op.out, wrtWeight: true, buf: newBuffer()}, grad, in[0])
	if err != nil {
		return nil, err
	}
	if !op.bias {
		return G.Nodes{dx, dw}, nil
	}
	db, err := G.ApplyOp(biasGradOp{dims: 2, n: op.n, c: op.out, hw: 1, buf: newBuffer()}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// linearGradOp is one of Linear's two matrix gradients; inputs (dy, m) with
// dy (n, out). With wrtWeight false, m is w (out, in) and the result is
// dx = dy·w (n, in); with wrtWeight true, m is x (n, in) and the result is
// dw = dyᵀ·x (out, in).
type linearGradOp struct {
	opBase
	n, in, out int
	wrtWeight  bool
	buf        *ownBuffer
}

func (linearGradOp) Arity() int { return 2 }
func (linearGradOp) Type() hm.Type {
	return hm.NewFnType(tensorType(2), tensorType(2), tensorType(2))
}
func (op linearGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.shape(), nil }
func (op linearGradOp) Do(in ...G.Value) (G.Value, error)              { return op.UsePreallocDo(nil, in...) }
func (op linearGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "layers.LinearGrad %d %d %d %t", op.n, op.in, op.out, op.wrtWeight)
}
func (op linearGradOp) Hashcode() uint32 { return hashOf(op) }
func (op linearGradOp) String() string {
	if op.wrtWeight {
		return "LinearGradWeight"
	}
	return "LinearGradInput"
}

// shape is the result's shape: dw's (out, in) or dx's (n, in).
func (op linearGradOp) shape() tensor.Shape {
	if op.wrtWeight {
		return tensor.Shape{op.out, op.in}
	}
	return tensor.Shape{op.n, op.in}
}

func (op linearGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	name := op.String()
	ts, err := denses(name, in...)
	if err != nil {
		return nil, err
	}
	mShape := []int{op.out, op.in}
	if op.wrtWeight {
		mShape = []int{op.n, op.in}
	}
	if err := checkShape(name, ts[0], op.n, op.out); err != nil {
		return nil, err
	}
	if err := checkShape(name, ts[1], mShape...); err != nil {
		return nil, err
	}
	r := op.buf.output(prealloc, ts[0].Dtype(), op.shape())
	if r.Dtype() == tensor.Float32 {
		linearGrad(op, data[float32](r), data[float32](ts[0]), data[float32](ts[1]))
	} else {
		linearGrad(op, data[float64](r), data[float64](ts[0]), data[float64](ts[1]))
	}
	return r, nil
}

// linearGrad overwrites r with dy·w (n, in) or dyᵀ·x (out, in), as op says.
func linearGrad[T float](op linearGradOp, r, dy, m []T) {
	if op.wrtWeight {
		gemm(true, false, op.out, op.in, op.n, 1, dy, op.out, m, op.in, 0, r, op.in)
		return
	}
	gemm(false, false, op.n, op.in, op.out, 1, dy, op.out, m, op.in, 0, r, op.in)
}

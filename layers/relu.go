package layers

import (
	"hash"
	"io"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReLU returns max(x, 0) elementwise; x has any shape. As in PyTorch, the
// gradient at exactly 0 is 0.
func ReLU(x *G.Node) (*G.Node, error) {
	return G.ApplyOp(reluOp{}, x)
}

// reluOp is y = max(x, 0).
type reluOp struct{ opBase }

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

func (reluOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("ReLU", in...)
	if err != nil {
		return nil, err
	}
	x := ts[0]
	y := output(prealloc, x.Dtype(), x.Shape())
	if x.Dtype() == tensor.Float32 {
		relu(data[float32](y), data[float32](x))
	} else {
		relu(data[float64](y), data[float64](x))
	}
	return y, nil
}

func (reluOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(reluGradOp{}, output, grad)
	return G.Nodes{dx}, err
}

func relu[T float](y, x []T) {
	for i, v := range x {
		y[i] = max(v, 0)
	}
}

// reluGradOp is dx = dy where y > 0, else 0; inputs (y, dy).
type reluGradOp struct{ opBase }

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

func (reluGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("ReLUGrad", in...)
	if err != nil {
		return nil, err
	}
	y, dy := ts[0], ts[1]
	dx := output(prealloc, y.Dtype(), y.Shape())
	if y.Dtype() == tensor.Float32 {
		reluGrad(data[float32](dx), data[float32](y), data[float32](dy))
	} else {
		reluGrad(data[float64](dx), data[float64](y), data[float64](dy))
	}
	return dx, nil
}

func reluGrad[T float](dx, y, dy []T) {
	for i, v := range y {
		if v > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
	}
}

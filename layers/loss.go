package layers

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CrossEntropy is PyTorch's nn.CrossEntropyLoss(label_smoothing=smoothing)
// with mean reduction, fused with log-softmax (numerically stable: subtract
// each row's max). logits is (N, K); labels is (N) of the same float dtype
// holding class indices 0..K−1 (exact below 2^24). Returns a scalar node.
// Differentiable in logits. A label outside 0..K−1 is an error at run time.
//
// With smoothing ε each row's loss is (1−ε)·(−log p[label]) + ε·mean_k(−log p[k]).
func CrossEntropy(logits, labels *G.Node, smoothing float64) (*G.Node, error) {
	if err := checkNotNil("CrossEntropy", []string{"logits", "labels"}, logits, labels); err != nil {
		return nil, err
	}
	ls, ys := logits.Shape(), labels.Shape()
	if len(ls) != 2 || ls[0] < 1 || ls[1] < 1 {
		return nil, fmt.Errorf("layers: CrossEntropy: logits have shape %v; want (N, K) with N, K ≥ 1", ls)
	}
	if !ys.Eq(tensor.Shape{ls[0]}) {
		return nil, fmt.Errorf("layers: CrossEntropy: labels have shape %v; want (%d), one class index per row of logits %v", ys, ls[0], ls)
	}
	if dt := logits.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("layers: CrossEntropy: logits have dtype %v; only float32 and float64 are supported", dt)
	}
	if labels.Dtype() != logits.Dtype() {
		return nil, fmt.Errorf("layers: CrossEntropy: labels have dtype %v, logits %v; store the class indices in the logits' dtype", labels.Dtype(), logits.Dtype())
	}
	if !(smoothing >= 0 && smoothing <= 1) {
		return nil, fmt.Errorf("layers: CrossEntropy: label smoothing %g is outside [0, 1]", smoothing)
	}
	return G.ApplyOp(xentOp{smoothing: smoothing}, logits, labels)
}

// xentOp is the mean smoothed cross-entropy; inputs (logits (N, K), labels
// (N)), output a scalar (*G.F32 or *G.F64).
type xentOp struct {
	opBase
	smoothing float64
}

func (xentOp) Arity() int { return 2 }
func (xentOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: a}, a)
}
func (xentOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op xentOp) Do(in ...G.Value) (G.Value, error)           { return op.UsePreallocDo(nil, in...) }
func (op xentOp) WriteHash(h hash.Hash)                       { fmt.Fprintf(h, "layers.CrossEntropy(%g)", op.smoothing) }
func (op xentOp) Hashcode() uint32                            { return hashOf(op) }
func (op xentOp) String() string                              { return fmt.Sprintf("CrossEntropy(%g)", op.smoothing) }
func (xentOp) DiffWRT(int) []bool                             { return []bool{true, false} }

func (op xentOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("CrossEntropy", in...)
	if err != nil {
		return nil, err
	}
	z, y := ts[0], ts[1]
	n, k := z.Shape()[0], z.Shape()[1]
	var loss float64
	if z.Dtype() == tensor.Float32 {
		loss, err = xentForward(data[float32](z), data[float32](y), n, k, op.smoothing)
		if err != nil {
			return nil, err
		}
		if p, ok := prealloc.(*G.F32); ok {
			*p = G.F32(loss)
			return p, nil
		}
		return G.NewF32(float32(loss)), nil
	}
	loss, err = xentForward(data[float64](z), data[float64](y), n, k, op.smoothing)
	if err != nil {
		return nil, err
	}
	if p, ok := prealloc.(*G.F64); ok {
		*p = G.F64(loss)
		return p, nil
	}
	return G.NewF64(loss), nil
}

func (op xentOp) SymDiff(in G.Nodes, _, dout *G.Node) (G.Nodes, error) {
	dz, err := G.ApplyOp(xentGradOp{smoothing: op.smoothing, buf: newBuffer()}, in[0], in[1], dout)
	return G.Nodes{dz, nil}, err
}

// xentLabel returns row i's label as a class index, or an error when it is
// not an integer in 0..k−1.
func xentLabel[T float](labels []T, i, k int) (int, error) {
	v := float64(labels[i])
	if !(v >= 0 && v < float64(k)) || v != math.Trunc(v) {
		return 0, fmt.Errorf("layers: CrossEntropy: label %g of row %d is not a class index in 0..%d; check the data set's labels and the number of classes", v, i, k-1)
	}
	return int(v), nil
}

// xentLogSumExp returns log Σ_k exp(z_k) for one row, shifted by its max.
func xentLogSumExp[T float](row []T) float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = max(mx, float64(v))
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(sum)
}

// xentForward returns the mean over rows of (1−ε)·(lse − z[label]) +
// ε·(lse − mean_k z_k); z is (n, k).
func xentForward[T float](z, labels []T, n, k int, eps float64) (float64, error) {
	var total float64
	for i := range n {
		label, err := xentLabel(labels, i, k)
		if err != nil {
			return 0, err
		}
		row := z[i*k : (i+1)*k]
		lse := xentLogSumExp(row)
		loss := (1 - eps) * (lse - float64(row[label]))
		if eps != 0 {
			var sum float64
			for _, v := range row {
				sum += float64(v)
			}
			loss += eps * (lse - sum/float64(k))
		}
		total += loss
	}
	return total / float64(n), nil
}

// xentGradOp is dz = dout/N·(softmax(z) − (1−ε)·onehot(label) − ε/K); inputs
// (logits, labels, dout), dout a scalar.
type xentGradOp struct {
	opBase
	smoothing float64
	buf       *ownBuffer
}

func (xentGradOp) Arity() int { return 3 }
func (xentGradOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: a}, a, G.TensorType{Dims: 2, Of: a})
}
func (xentGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op xentGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op xentGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "layers.CrossEntropyGrad(%g)", op.smoothing)
}
func (op xentGradOp) Hashcode() uint32 { return hashOf(op) }
func (op xentGradOp) String() string   { return fmt.Sprintf("CrossEntropyGrad(%g)", op.smoothing) }

func (op xentGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("CrossEntropyGrad", in[0], in[1])
	if err != nil {
		return nil, err
	}
	g, err := xentScalar(in[2])
	if err != nil {
		return nil, err
	}
	z, y := ts[0], ts[1]
	n, k := z.Shape()[0], z.Shape()[1]
	dz := op.buf.output(prealloc, z.Dtype(), z.Shape())
	if z.Dtype() == tensor.Float32 {
		err = xentBackward(data[float32](dz), data[float32](z), data[float32](y), n, k, op.smoothing, g)
	} else {
		err = xentBackward(data[float64](dz), data[float64](z), data[float64](y), n, k, op.smoothing, g)
	}
	if err != nil {
		return nil, err
	}
	return dz, nil
}

// xentScalar returns the value of a scalar gradient, which Gorgonia passes
// as *F32, *F64 or a one-element dense tensor.
func xentScalar(v G.Value) (float64, error) {
	switch v := v.(type) {
	case *G.F32:
		return float64(*v), nil
	case *G.F64:
		return float64(*v), nil
	case *tensor.Dense:
		if v.Shape().TotalSize() == 1 {
			switch d := v.Data().(type) {
			case float32:
				return float64(d), nil
			case float64:
				return d, nil
			case []float32:
				return float64(d[0]), nil
			case []float64:
				return d[0], nil
			}
		}
	}
	return 0, fmt.Errorf("layers: CrossEntropyGrad: the output gradient is %T %v, want a float scalar", v, v)
}

func xentBackward[T float](dz, z, labels []T, n, k int, eps, g float64) error {
	scale := g / float64(n)
	uniform := eps / float64(k)
	for i := range n {
		label, err := xentLabel(labels, i, k)
		if err != nil {
			return err
		}
		row, drow := z[i*k:(i+1)*k], dz[i*k:(i+1)*k]
		lse := xentLogSumExp(row)
		for j, v := range row {
			d := math.Exp(float64(v)-lse) - uniform
			if j == label {
				d -= 1 - eps
			}
			drow[j] = T(scale * d)
		}
	}
	return nil
}

package ops

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// base gives every op of this package its shared methods: pure from
// Gorgonia's view, never overwriting an input, hashed by identity (ops hold
// state, so Gorgonia's hash-consing must never merge two of them).
type base struct{ name string }

func (base) ReturnsPtr() bool     { return false }
func (base) CallsExtern() bool    { return false }
func (base) OverwritesInput() int { return -1 }
func (o *base) String() string    { return o.name }
func (o *base) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "ops.%s@%p", o.name, o)
}
func (o *base) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// deviceOp marks the ops Check accepts.
func (*base) deviceOp() {}

// hostInput reports whether input node n may hold a host value; none by
// default.
func (*base) hostInput(*G.Node) bool { return false }

// fixed is the shape and type side of an op: its inputs' dimensions and its
// output shape, known when the graph is built.
type fixed struct {
	in  []int // dimensions of each input (0: scalar)
	out tensor.Shape
}

func (f fixed) Arity() int { return len(f.in) }
func (f fixed) Type() hm.Type {
	ts := make([]hm.Type, 0, len(f.in)+1)
	for _, d := range f.in {
		ts = append(ts, typeOf(d))
	}
	return hm.NewFnType(append(ts, typeOf(len(f.out)))...)
}
func (f fixed) InferShape(...G.DimSizer) (tensor.Shape, error) { return f.out.Clone(), nil }

// wrap returns a backend tensor as a value of shape.
func wrap[T any](b Backend[T], t T, err error) (G.Value, error) {
	if err != nil {
		return nil, err
	}
	return NewValue(t, b.ShapeOf(t)), nil
}

// inputs returns the device tensors of vals.
func inputs[T any](op string, vals []G.Value) ([]T, error) {
	ts := make([]T, len(vals))
	for i, v := range vals {
		var err error
		if ts[i], err = device[T](op, i, v); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

// grads holds the gradients a backward op computes together (dx, dw, db),
// handed out one per node by pick ops.
type grads[T any] struct{ t [3]T }

// pickOp returns gradient i of a backward op; its input is that op's first
// output node, so it runs after it.
type pickOp[T any] struct {
	base
	fixed
	g *grads[T]
	i int
}

func (op *pickOp[T]) Do(...G.Value) (G.Value, error) { return NewValue(op.g.t[op.i], op.out), nil }

// backward adds a backward op computing g.t[0..2] from ins and returns its
// three gradient nodes, the first being the op's own output.
func backward[T any](op G.Op, g *grads[T], ins G.Nodes, shapes ...tensor.Shape) (G.Nodes, error) {
	dx, err := G.ApplyOp(op, ins...)
	if err != nil {
		return nil, err
	}
	out := G.Nodes{dx}
	for i := 1; i < len(shapes); i++ {
		n, err := G.ApplyOp(&pickOp[T]{base: base{fmt.Sprintf("pick%d", i)}, fixed: fixed{[]int{len(shapes[0])}, shapes[i]}, g: g, i: i}, dx)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// shapes4 returns a node's 4-D shape or an error.
func shape4(op string, n *G.Node) (tensor.Shape, error) {
	if n == nil {
		return nil, fmt.Errorf("ops: %s: nil node", op)
	}
	s := n.Shape()
	if len(s) != 4 {
		return nil, fmt.Errorf("ops: %s: input has shape %v; want (N, C, H, W)", op, s)
	}
	return s, nil
}

// ---- Conv2d ----

type convOp[T any] struct {
	base
	fixed
	b              Backend[T]
	stride, pad    int
	wShape, bShape tensor.Shape
}

// Conv2d is layers.Conv2d on the device: x (N, C, H, W), w (O, C, k, k),
// bias (O); y (N, O, H', W').
func Conv2d[T any](b Backend[T], x, w, bias *G.Node, stride, pad int) (*G.Node, error) {
	xs, err := shape4("Conv2d", x)
	if err != nil {
		return nil, err
	}
	if w == nil || bias == nil || len(w.Shape()) != 4 || w.Shape()[1] != xs[1] || stride < 1 || pad < 0 {
		return nil, fmt.Errorf("ops: Conv2d: x %v with weight %v, a bias, stride %d, padding %d do not fit", xs, shapeOf(w), stride, pad)
	}
	ws := w.Shape()
	oh, ow := (xs[2]+2*pad-ws[2])/stride+1, (xs[3]+2*pad-ws[3])/stride+1
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("ops: Conv2d: a %v kernel does not fit a %v input with padding %d", ws, xs, pad)
	}
	return G.ApplyOp(&convOp[T]{base: base{"Conv2d"}, fixed: fixed{[]int{4, 4, 1}, tensor.Shape{xs[0], ws[0], oh, ow}},
		b: b, stride: stride, pad: pad, wShape: ws.Clone(), bShape: bias.Shape().Clone()}, x, w, bias)
}

func shapeOf(n *G.Node) tensor.Shape {
	if n == nil {
		return nil
	}
	return n.Shape()
}

func (op *convOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("Conv2d", vals)
	if err != nil {
		return nil, err
	}
	y, err := op.b.Conv2d(t[0], t[1], t[2], op.stride, op.pad)
	return wrap(op.b, y, err)
}

func (*convOp[T]) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *convOp[T]) SymDiff(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
	g := &grads[T]{}
	xs := in[0].Shape().Clone()
	return backward(&convGradOp[T]{base: base{"Conv2dGrad"}, fixed: fixed{[]int{4, 4, 4}, xs}, fwd: op, g: g}, g,
		G.Nodes{in[0], in[1], dy}, xs, op.wShape, op.bShape)
}

type convGradOp[T any] struct {
	base
	fixed
	fwd *convOp[T]
	g   *grads[T]
}

func (op *convGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("Conv2dGrad", vals)
	if err != nil {
		return nil, err
	}
	dx, dw, db, err := op.fwd.b.Conv2dBackward(t[0], t[1], t[2], op.fwd.stride, op.fwd.pad)
	op.g.t = [3]T{dx, dw, db}
	return wrap(op.fwd.b, dx, err)
}

// ---- Linear ----

type linearOp[T any] struct {
	base
	fixed
	b              Backend[T]
	wShape, bShape tensor.Shape
}

// Linear is layers.Linear on the device: x (N, in), w (out, in), bias
// (out); y (N, out).
func Linear[T any](b Backend[T], x, w, bias *G.Node) (*G.Node, error) {
	if x == nil || w == nil || bias == nil || len(x.Shape()) != 2 || len(w.Shape()) != 2 || x.Shape()[1] != w.Shape()[1] {
		return nil, fmt.Errorf("ops: Linear: x %v, weight %v and a bias do not fit; want (N, in), (out, in), (out)", shapeOf(x), shapeOf(w))
	}
	return G.ApplyOp(&linearOp[T]{base: base{"Linear"}, fixed: fixed{[]int{2, 2, 1}, tensor.Shape{x.Shape()[0], w.Shape()[0]}},
		b: b, wShape: w.Shape().Clone(), bShape: bias.Shape().Clone()}, x, w, bias)
}

func (op *linearOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("Linear", vals)
	if err != nil {
		return nil, err
	}
	y, err := op.b.Linear(t[0], t[1], t[2])
	return wrap(op.b, y, err)
}

func (*linearOp[T]) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *linearOp[T]) SymDiff(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
	g := &grads[T]{}
	xs := in[0].Shape().Clone()
	return backward(&linearGradOp[T]{base: base{"LinearGrad"}, fixed: fixed{[]int{2, 2, 2}, xs}, fwd: op, g: g}, g,
		G.Nodes{in[0], in[1], dy}, xs, op.wShape, op.bShape)
}

type linearGradOp[T any] struct {
	base
	fixed
	fwd *linearOp[T]
	g   *grads[T]
}

func (op *linearGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("LinearGrad", vals)
	if err != nil {
		return nil, err
	}
	dx, dw, db, err := op.fwd.b.LinearBackward(t[0], t[1], t[2])
	op.g.t = [3]T{dx, dw, db}
	return wrap(op.fwd.b, dx, err)
}

// ---- BatchNorm2d ----

// BNState is a BatchNorm2d layer's running statistics on the device (C
// values each, kept by the backend) and its training-pass count.
type BNState[T any] struct {
	Mean, Var         T
	Eps, Momentum     float64
	NumBatchesTracked int64
}

type bnOp[T any] struct {
	base
	fixed
	b            Backend[T]
	s            *BNState[T]
	train        bool
	mean, invStd T // what the last forward pass used
	cShape       tensor.Shape
}

// BatchNorm2d is layers.BatchNorm2d on the device: x (N, C, H, W), gamma and
// beta (C). With train it normalises with the batch's statistics and updates
// s; else it uses s.
func BatchNorm2d[T any](b Backend[T], x, gamma, beta *G.Node, s *BNState[T], train bool) (*G.Node, error) {
	xs, err := shape4("BatchNorm2d", x)
	if err != nil {
		return nil, err
	}
	if gamma == nil || beta == nil || s == nil || !gamma.Shape().Eq(tensor.Shape{xs[1]}) || !beta.Shape().Eq(tensor.Shape{xs[1]}) {
		return nil, fmt.Errorf("ops: BatchNorm2d: x %v needs gamma, beta (%d) and running statistics", xs, xs[1])
	}
	return G.ApplyOp(&bnOp[T]{base: base{"BatchNorm2d"}, fixed: fixed{[]int{4, 1, 1}, xs.Clone()}, b: b, s: s, train: train, cShape: tensor.Shape{xs[1]}}, x, gamma, beta)
}

func (op *bnOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("BatchNorm2d", vals)
	if err != nil {
		return nil, err
	}
	y, mean, invStd, err := op.b.BatchNorm2d(t[0], t[1], t[2], op.s.Mean, op.s.Var, op.s.Eps, op.s.Momentum, op.train)
	if err != nil {
		return nil, err
	}
	op.mean, op.invStd = mean, invStd
	if op.train {
		op.s.NumBatchesTracked++
	}
	return wrap(op.b, y, nil)
}

func (*bnOp[T]) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *bnOp[T]) SymDiff(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
	g := &grads[T]{}
	xs := in[0].Shape().Clone()
	return backward(&bnGradOp[T]{base: base{"BatchNorm2dGrad"}, fixed: fixed{[]int{4, 1, 4}, xs}, fwd: op, g: g}, g,
		G.Nodes{in[0], in[1], dy}, xs, op.cShape, op.cShape)
}

type bnGradOp[T any] struct {
	base
	fixed
	fwd *bnOp[T]
	g   *grads[T]
}

func (op *bnGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("BatchNorm2dGrad", vals)
	if err != nil {
		return nil, err
	}
	f := op.fwd
	dx, dg, db, err := f.b.BatchNorm2dBackward(t[0], t[1], t[2], f.mean, f.invStd, f.train)
	op.g.t = [3]T{dx, dg, db}
	return wrap(f.b, dx, err)
}

// ---- ReLU ----

type reluOp[T any] struct {
	base
	fixed
	b Backend[T]
}

// ReLU is layers.ReLU on the device; any shape.
func ReLU[T any](b Backend[T], x *G.Node) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("ops: ReLU: nil node")
	}
	s := x.Shape().Clone()
	return G.ApplyOp(&reluOp[T]{base: base{"ReLU"}, fixed: fixed{[]int{len(s)}, s}, b: b}, x)
}

func (op *reluOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("ReLU", vals)
	if err != nil {
		return nil, err
	}
	y, err := op.b.ReLU(t[0])
	return wrap(op.b, y, err)
}

func (*reluOp[T]) DiffWRT(int) []bool { return []bool{true} }

func (op *reluOp[T]) SymDiff(_ G.Nodes, y, dy *G.Node) (G.Nodes, error) {
	n, err := G.ApplyOp(&reluGradOp[T]{base: base{"ReLUGrad"}, fixed: fixed{[]int{len(op.out), len(op.out)}, op.out}, b: op.b}, y, dy)
	return G.Nodes{n}, err
}

type reluGradOp[T any] struct {
	base
	fixed
	b Backend[T]
}

func (op *reluGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("ReLUGrad", vals)
	if err != nil {
		return nil, err
	}
	dx, err := op.b.ReLUGrad(t[0], t[1])
	return wrap(op.b, dx, err)
}

// ---- MaxPool2d ----

type maxPoolOp[T any] struct {
	base
	fixed
	b       Backend[T]
	k, s, p int
	argmax  T
}

// MaxPool2d is layers.MaxPool2d on the device: x (N, C, H, W).
func MaxPool2d[T any](b Backend[T], x *G.Node, k, s, p int) (*G.Node, error) {
	xs, err := shape4("MaxPool2d", x)
	if err != nil {
		return nil, err
	}
	oh, ow := (xs[2]+2*p-k)/s+1, (xs[3]+2*p-k)/s+1
	if k < 1 || s < 1 || p < 0 || 2*p > k || oh < 1 || ow < 1 {
		return nil, fmt.Errorf("ops: MaxPool2d: kernel %d, stride %d, padding %d do not fit x %v", k, s, p, xs)
	}
	return G.ApplyOp(&maxPoolOp[T]{base: base{"MaxPool2d"}, fixed: fixed{[]int{4}, tensor.Shape{xs[0], xs[1], oh, ow}}, b: b, k: k, s: s, p: p}, x)
}

func (op *maxPoolOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("MaxPool2d", vals)
	if err != nil {
		return nil, err
	}
	y, am, err := op.b.MaxPool2d(t[0], op.k, op.s, op.p)
	op.argmax = am
	return wrap(op.b, y, err)
}

func (*maxPoolOp[T]) DiffWRT(int) []bool { return []bool{true} }

func (op *maxPoolOp[T]) SymDiff(in G.Nodes, y, dy *G.Node) (G.Nodes, error) {
	xs := in[0].Shape().Clone()
	n, err := G.ApplyOp(&maxPoolGradOp[T]{base: base{"MaxPool2dGrad"}, fixed: fixed{[]int{4, 4}, xs}, fwd: op}, y, dy)
	return G.Nodes{n}, err
}

type maxPoolGradOp[T any] struct {
	base
	fixed
	fwd *maxPoolOp[T]
}

func (op *maxPoolGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("MaxPool2dGrad", vals)
	if err != nil {
		return nil, err
	}
	f := op.fwd
	dx, err := f.b.MaxPool2dGrad(t[1], f.argmax, op.out[2], op.out[3], f.k, f.s, f.p)
	return wrap(f.b, dx, err)
}

// ---- AdaptiveAvgPool2d ----

type avgPoolOp[T any] struct {
	base
	fixed
	b Backend[T]
}

// AdaptiveAvgPool2d is layers.AdaptiveAvgPool2d on the device.
func AdaptiveAvgPool2d[T any](b Backend[T], x *G.Node, oh, ow int) (*G.Node, error) {
	xs, err := shape4("AdaptiveAvgPool2d", x)
	if err != nil {
		return nil, err
	}
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("ops: AdaptiveAvgPool2d: output %d×%d", oh, ow)
	}
	return G.ApplyOp(&avgPoolOp[T]{base: base{"AdaptiveAvgPool2d"}, fixed: fixed{[]int{4}, tensor.Shape{xs[0], xs[1], oh, ow}}, b: b}, x)
}

func (op *avgPoolOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("AdaptiveAvgPool2d", vals)
	if err != nil {
		return nil, err
	}
	y, err := op.b.AdaptiveAvgPool2d(t[0], op.out[2], op.out[3])
	return wrap(op.b, y, err)
}

func (*avgPoolOp[T]) DiffWRT(int) []bool { return []bool{true} }

func (op *avgPoolOp[T]) SymDiff(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
	n, err := G.ApplyOp(&avgPoolGradOp[T]{base: base{"AdaptiveAvgPool2dGrad"}, fixed: fixed{[]int{4}, in[0].Shape().Clone()}, b: op.b}, dy)
	return G.Nodes{n}, err
}

type avgPoolGradOp[T any] struct {
	base
	fixed
	b Backend[T]
}

func (op *avgPoolGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("AdaptiveAvgPool2dGrad", vals)
	if err != nil {
		return nil, err
	}
	dx, err := op.b.AdaptiveAvgPool2dGrad(t[0], op.out[2], op.out[3])
	return wrap(op.b, dx, err)
}

// ---- Flatten ----

type reshapeOp[T any] struct {
	base
	fixed
	b Backend[T]
}

// Flatten is layers.Flatten on the device: (N, d1, …) to (N, d1·…), a view.
func Flatten[T any](b Backend[T], x *G.Node) (*G.Node, error) {
	if x == nil || len(x.Shape()) < 2 {
		return nil, fmt.Errorf("ops: Flatten: x has shape %v; want rank 2 or more", shapeOf(x))
	}
	s := x.Shape()
	return reshape(b, x, tensor.Shape{s[0], s[1:].TotalSize()})
}

func reshape[T any](b Backend[T], x *G.Node, to tensor.Shape) (*G.Node, error) {
	return G.ApplyOp(&reshapeOp[T]{base: base{"Reshape"}, fixed: fixed{[]int{len(x.Shape())}, to}, b: b}, x)
}

func (op *reshapeOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("Reshape", vals)
	if err != nil {
		return nil, err
	}
	y, err := op.b.Reshape(t[0], op.out...)
	return wrap(op.b, y, err)
}

func (*reshapeOp[T]) DiffWRT(int) []bool { return []bool{true} }

func (op *reshapeOp[T]) SymDiff(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
	n, err := reshape(op.b, dy, in[0].Shape().Clone())
	return G.Nodes{n}, err
}

// ---- Dropout ----

type dropoutOp[T any] struct {
	base
	fixed
	b    Backend[T]
	p    float64
	rng  *rand.Rand
	keep []bool
	mask T
}

// Dropout is layers.Dropout on the device: the mask is drawn on the host
// from src exactly as the CPU op draws it (one Float64 per element, kept
// when ≥ p), so both paths drop the same elements, and uploaded. Without
// train, or with p = 0, it returns x.
func Dropout[T any](b Backend[T], x *G.Node, p float64, src *rand.PCG, train bool) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("ops: Dropout: nil node")
	}
	if !(p >= 0 && p < 1) {
		return nil, fmt.Errorf("ops: Dropout: probability %g is outside [0, 1)", p)
	}
	if !train || p == 0 {
		return x, nil
	}
	if src == nil {
		return nil, fmt.Errorf("ops: Dropout: nil random source")
	}
	s := x.Shape().Clone()
	return G.ApplyOp(&dropoutOp[T]{base: base{"Dropout"}, fixed: fixed{[]int{len(s)}, s}, b: b, p: p, rng: rand.New(src), keep: make([]bool, s.TotalSize())}, x)
}

func (op *dropoutOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("Dropout", vals)
	if err != nil {
		return nil, err
	}
	for i := range op.keep {
		op.keep[i] = op.rng.Float64() >= op.p
	}
	if op.mask, err = op.b.UploadMask(op.keep); err != nil {
		return nil, err
	}
	y, err := op.b.Dropout(t[0], op.mask, op.p)
	return wrap(op.b, y, err)
}

func (*dropoutOp[T]) DiffWRT(int) []bool { return []bool{true} }

func (op *dropoutOp[T]) SymDiff(_ G.Nodes, y, dy *G.Node) (G.Nodes, error) {
	n, err := G.ApplyOp(&dropoutGradOp[T]{base: base{"DropoutGrad"}, fixed: fixed{[]int{len(op.out), len(op.out)}, op.out}, fwd: op}, y, dy)
	return G.Nodes{n}, err
}

type dropoutGradOp[T any] struct {
	base
	fixed
	fwd *dropoutOp[T]
}

func (op *dropoutGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	t, err := inputs[T]("DropoutGrad", vals)
	if err != nil {
		return nil, err
	}
	dx, err := op.fwd.b.Dropout(t[1], op.fwd.mask, op.fwd.p)
	return wrap(op.fwd.b, dx, err)
}

// ---- CrossEntropy ----

type xentOp[T any] struct {
	base
	fixed
	b         Backend[T]
	smoothing float64
	labels    T
	labelNode *G.Node
}

// CrossEntropy is layers.CrossEntropy on the device: logits (N, K) on the
// device, labels (N) class indices as a host float32 tensor (an input node
// bound to a *tensor.Dense); the loss is a device scalar.
func CrossEntropy[T any](b Backend[T], logits, labels *G.Node, smoothing float64) (*G.Node, error) {
	if logits == nil || labels == nil || len(logits.Shape()) != 2 || !labels.Shape().Eq(tensor.Shape{logits.Shape()[0]}) {
		return nil, fmt.Errorf("ops: CrossEntropy: logits %v and labels %v; want (N, K) and (N)", shapeOf(logits), shapeOf(labels))
	}
	if !(smoothing >= 0 && smoothing < 1) {
		return nil, fmt.Errorf("ops: CrossEntropy: label smoothing %g is outside [0, 1)", smoothing)
	}
	return G.ApplyOp(&xentOp[T]{base: base{"CrossEntropy"}, fixed: fixed{[]int{2, 1}, tensor.ScalarShape()}, b: b, smoothing: smoothing, labelNode: labels}, logits, labels)
}

func (op *xentOp[T]) hostInput(n *G.Node) bool { return n == op.labelNode }

func (op *xentOp[T]) Do(vals ...G.Value) (G.Value, error) {
	z, err := device[T]("CrossEntropy", 0, vals[0])
	if err != nil {
		return nil, err
	}
	lab, ok := vals[1].Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("ops: CrossEntropy: labels are %T; want a float32 host tensor", vals[1])
	}
	loss, l, err := op.b.CrossEntropy(z, lab, op.smoothing)
	if err != nil {
		return nil, err
	}
	op.labels = l
	return NewValue(loss, nil), nil
}

func (*xentOp[T]) DiffWRT(int) []bool { return []bool{true, false} }

func (op *xentOp[T]) SymDiff(in G.Nodes, _, dout *G.Node) (G.Nodes, error) {
	dz, err := G.ApplyOp(&xentGradOp[T]{base: base{"CrossEntropyGrad"}, fixed: fixed{[]int{2, 0}, in[0].Shape().Clone()}, fwd: op, dout: dout}, in[0], dout)
	return G.Nodes{dz, nil}, err
}

type xentGradOp[T any] struct {
	base
	fixed
	fwd  *xentOp[T]
	dout *G.Node
}

// hostInput: the output gradient may be G.Grad's host constant 1.
func (op *xentGradOp[T]) hostInput(n *G.Node) bool { return n == op.dout }

func (op *xentGradOp[T]) Do(vals ...G.Value) (G.Value, error) {
	z, err := device[T]("CrossEntropyGrad", 0, vals[0])
	if err != nil {
		return nil, err
	}
	var g float64
	switch v := vals[1].(type) {
	case *G.F32:
		g = float64(*v)
	case *Value[T]:
		d, err := op.fwd.b.Download(v.T)
		if err != nil {
			return nil, err
		}
		g = float64(d[0])
	default:
		return nil, fmt.Errorf("ops: CrossEntropyGrad: output gradient is a %T; want a float32 scalar", vals[1])
	}
	dz, err := op.fwd.b.CrossEntropyGrad(z, op.fwd.labels, op.fwd.smoothing, g)
	return wrap(op.fwd.b, dz, err)
}

// ---- Check ----

// Check refuses, before anything runs, a graph that would send a device
// value through an op that cannot take it: every op must be one of this
// package's, and a host input or constant may only feed an argument that
// takes host values (CrossEntropy's labels, its backward op's output
// gradient). Gorgonia's own ops (the Add that G.Grad inserts where a value
// feeds two ops, arithmetic, G.Read's print op) are named in the error.
func Check(g *G.ExprGraph) error {
	for _, n := range g.AllNodes() {
		if isLeaf(n) {
			if isDevice(n.Value()) {
				continue
			}
			for it := g.To(n.ID()); it.Next(); {
				p := it.Node().(*G.Node)
				op, ok := p.Op().(interface{ hostInput(*G.Node) bool })
				if ok && !op.hostInput(n) {
					return fmt.Errorf("ops: %v (node %q) takes %q, which is not a device value: upload it (ops.NewValue) before the run", p.Op(), p.Name(), n.Name())
				}
			}
			continue
		}
		if _, ok := n.Op().(interface{ deviceOp() }); !ok {
			return fmt.Errorf("ops: node %q runs Gorgonia's %v, which cannot take device tensors; the run is refused before it starts: build device graphs from package ops' layers only (docs/cuda.md)", n.Name(), n.Op())
		}
	}
	return nil
}

// isLeaf reports whether n is an input or a constant (an op of no inputs).
func isLeaf(n *G.Node) bool { return n.Op() == nil || n.Op().Arity() == 0 }

func isDevice(v G.Value) bool {
	_, ok := v.(interface{ deviceValue() })
	return ok
}

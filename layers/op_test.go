package layers

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bufferNet is a small network of this file's ops (BatchNorm2d, ReLU,
// MaxPool2d, AdaptiveAvgPool2d, Dropout, Linear, CrossEntropy) with its
// gradients, run the way zoo/vgg runs a graph: Reset, RunAll, copy out.
type bufferNet struct {
	x       *tensor.Dense
	machine G.VM
	outs    []*G.Value // loss, then ∂loss/∂(x, gamma, beta, w)
}

func newBufferNet(t *testing.T) *bufferNet {
	t.Helper()
	const n, c, h, w = 4, 8, 32, 32 // 32K float32 per activation
	g := G.NewGraph()
	net := &bufferNet{x: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(n, c, h, w))}
	x := G.NodeFromAny(g, net.x, G.WithName("x"))
	gamma := G.NewTensor(g, tensor.Float32, 1, G.WithShape(c), G.WithName("gamma"), G.WithInit(G.Ones()))
	beta := G.NewTensor(g, tensor.Float32, 1, G.WithShape(c), G.WithName("beta"), G.WithInit(G.Zeroes()))
	wt := G.NewMatrix(g, tensor.Float32, G.WithShape(3, c), G.WithName("w"), G.WithInit(G.Gaussian(0, 0.5)))
	labels := G.NodeFromAny(g, tensor.New(tensor.WithBacking([]float32{0, 1, 2, 1})), G.WithName("labels"))
	y := G.Must(BatchNorm2d(x, gamma, beta, NewBNStats(tensor.Float32, c), true))
	y = G.Must(ReLU(y))
	y = G.Must(MaxPool2d(y, 2, 2, 0))
	y = G.Must(AdaptiveAvgPool2d(y, 1, 1))
	y = G.Must(G.Reshape(y, tensor.Shape{n, c}))
	y = G.Must(Dropout(y, 0, rand.NewPCG(1, 2), true))
	y = G.Must(Linear(y, wt, nil))
	loss := G.Must(CrossEntropy(y, labels, 0))
	grads, err := G.Grad(loss, x, gamma, beta, wt)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	for _, nd := range append(G.Nodes{loss}, grads...) {
		v := new(G.Value)
		G.Read(nd, v)
		net.outs = append(net.outs, v)
	}
	net.machine = G.NewTapeMachine(g)
	t.Cleanup(func() { net.machine.Close() })
	return net
}

// fill sets x to normal values drawn from seed.
func (net *bufferNet) fill(seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	x := data[float32](net.x)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
}

// runOnly runs the graph once, as zoo/vgg's Graph.Run does.
func (net *bufferNet) runOnly(t *testing.T) {
	t.Helper()
	net.machine.Reset()
	if err := net.machine.RunAll(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// run fills x from seed, runs the graph and returns copies of the loss and
// the gradients.
func (net *bufferNet) run(t *testing.T, seed uint64) [][]float32 {
	t.Helper()
	net.fill(seed)
	net.runOnly(t)
	var got [][]float32
	for _, v := range net.outs {
		switch v := (*v).(type) {
		case *tensor.Dense:
			got = append(got, slices.Clone(data[float32](v)))
		case *G.F32:
			got = append(got, []float32{float32(*v)})
		default:
			t.Fatalf("unexpected value %T", v)
		}
	}
	return got
}

// TestOpsReuseBuffers checks that reusing each op's output across runs
// changes no result (a repeated input gives bit-identical values and
// gradients: nothing accumulates, nothing stale is read) and that a run
// after the first allocates less than one activation.
func TestOpsReuseBuffers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // allocation counts without goroutine noise
	net := newBufferNet(t)
	first := net.run(t, 1)
	other := net.run(t, 2)
	again := net.run(t, 1)
	names := []string{"loss", "dx", "dgamma", "dbeta", "dw"}
	for i, name := range names {
		if !slices.Equal(again[i], first[i]) {
			t.Errorf("%s: a rerun of the same input differs from the first run", name)
		}
		if slices.Equal(other[i], first[i]) {
			t.Errorf("%s: another input gives the same values", name)
		}
	}

	var before, after runtime.MemStats
	net.fill(3)
	runtime.ReadMemStats(&before)
	net.runOnly(t)
	runtime.ReadMemStats(&after)
	const activation = 4 * 8 * 32 * 32 * 4 // bytes of x
	if got := after.TotalAlloc - before.TotalAlloc; got >= activation {
		t.Errorf("a warm run allocated %d bytes, want less than one activation (%d)", got, activation)
	}
}

// TestOwnBufferOutput pins the buffer's choices: a fitting prealloc first,
// else its own tensor, kept while it fits and replaced when it does not.
func TestOwnBufferOutput(t *testing.T) {
	b := newBuffer()
	s := tensor.Shape{2, 3}
	own := b.output(nil, tensor.Float32, s)
	if got := b.output(nil, tensor.Float32, s); got != own {
		t.Errorf("second call without prealloc: got a new tensor, want the buffer's own")
	}
	pre := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(2, 3))
	if got := b.output(pre, tensor.Float32, s); got != pre {
		t.Errorf("fitting prealloc: not used")
	}
	if got := b.output(pre, tensor.Float64, s); got == pre || got == own || got.Dtype() != tensor.Float64 {
		t.Errorf("prealloc of another dtype: got %p (%v), want a new float64 tensor", got, got.Dtype())
	}
	if got := b.output(nil, tensor.Float32, tensor.Shape{3, 2}); !got.Shape().Eq(tensor.Shape{3, 2}) || got == own {
		t.Errorf("new shape: got %v, want a new (3, 2) tensor", got.Shape())
	}
	var none *ownBuffer
	if a, c := none.output(nil, tensor.Float32, s), none.output(nil, tensor.Float32, s); a == c {
		t.Errorf("nil buffer: two calls returned one tensor, want fresh ones")
	}
}

// TestInPlace checks where ops write over their input: a ReLU after a
// training BatchNorm shares its buffer (nothing else reads the BatchNorm's
// output), but never when the BatchNorm's output is also read out, and a
// ReLU straight on a caller's tensor never writes into it.
func TestInPlace(t *testing.T) {
	neg := func(seed uint64) *tensor.Dense {
		x := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(2, 3, 4, 4))
		r := rand.New(rand.NewPCG(seed, 9))
		for i := range data[float32](x) {
			data[float32](x)[i] = float32(r.NormFloat64())
		}
		return x
	}
	for _, tc := range []struct {
		name        string
		readBN      bool // copy the BatchNorm's output out
		onInput     bool // ReLU straight on the input
		wantInPlace bool
	}{
		{name: "bn-relu", wantInPlace: true},
		{name: "bn-relu, bn read", readBN: true},
		{name: "relu on input", onInput: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := G.NewGraph()
			xv := neg(1)
			orig := slices.Clone(data[float32](xv))
			x := G.NodeFromAny(g, xv, G.WithName("x"))
			gamma := G.NewTensor(g, tensor.Float32, 1, G.WithShape(3), G.WithName("gamma"), G.WithInit(G.Ones()))
			beta := G.NewTensor(g, tensor.Float32, 1, G.WithShape(3), G.WithName("beta"), G.WithInit(G.Zeroes()))
			pre := x
			if !tc.onInput {
				pre = G.Must(BatchNorm2d(x, gamma, beta, NewBNStats(tensor.Float32, 3), true))
			}
			y := G.Must(ReLU(pre))
			var bnCopy, yCopy G.Value
			if tc.readBN {
				G.Read(pre, &bnCopy)
			}
			G.Read(y, &yCopy)
			m := G.NewTapeMachine(g)
			defer m.Close()
			for run := range 2 {
				m.Reset()
				if err := m.RunAll(); err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
			}
			if got := pre.Value().Uintptr() == y.Value().Uintptr(); got != tc.wantInPlace {
				t.Errorf("ReLU shares its input's buffer: %t, want %t", got, tc.wantInPlace)
			}
			if !slices.Equal(data[float32](xv), orig) {
				t.Errorf("the caller's input tensor was overwritten")
			}
			if tc.readBN && !slices.ContainsFunc(data[float32](bnCopy.(*tensor.Dense)), func(v float32) bool { return v < 0 }) {
				t.Errorf("the BatchNorm output read out has no negative value: the ReLU overwrote it first")
			}
			for i, v := range data[float32](yCopy.(*tensor.Dense)) {
				if v < 0 {
					t.Fatalf("ReLU output %d is %g < 0", i, v)
				}
			}
		})
	}
}

// TestNilNodes checks that every layer returns an error, not a panic, when
// given a nil node.
func TestNilNodes(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 4, 4), G.WithName("x"))
	c := G.NewVector(g, tensor.Float32, G.WithShape(3), G.WithName("c"))
	logits := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 3), G.WithName("logits"))
	src := rand.NewPCG(1, 2)
	stats := NewBNStats(tensor.Float32, 3)
	for _, tc := range []struct {
		name  string
		build func() (*G.Node, error)
	}{
		{"BatchNorm2d x", func() (*G.Node, error) { return BatchNorm2d(nil, c, c, stats, true) }},
		{"BatchNorm2d gamma", func() (*G.Node, error) { return BatchNorm2d(x, nil, c, stats, true) }},
		{"BatchNorm2d beta", func() (*G.Node, error) { return BatchNorm2d(x, c, nil, stats, false) }},
		{"AdaptiveAvgPool2d", func() (*G.Node, error) { return AdaptiveAvgPool2d(nil, 1, 1) }},
		{"ReLU", func() (*G.Node, error) { return ReLU(nil) }},
		{"Dropout", func() (*G.Node, error) { return Dropout(nil, 0.5, src, true) }},
		{"Dropout eval", func() (*G.Node, error) { return Dropout(nil, 0.5, src, false) }},
		{"CrossEntropy logits", func() (*G.Node, error) { return CrossEntropy(nil, c, 0) }},
		{"CrossEntropy labels", func() (*G.Node, error) { return CrossEntropy(logits, nil, 0) }},
		{"Conv2d", func() (*G.Node, error) { return Conv2d(nil, nil, nil, 1, 1) }},
		{"Linear", func() (*G.Node, error) { return Linear(logits, nil, nil) }},
		{"MaxPool2d", func() (*G.Node, error) { return MaxPool2d(nil, 2, 2, 0) }},
		{"Flatten", func() (*G.Node, error) { return Flatten(nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y, err := tc.build()
			if err == nil || !strings.Contains(err.Error(), "is nil") {
				t.Errorf("got (%v, %v), want an error saying a node is nil", y, err)
			}
		})
	}
}

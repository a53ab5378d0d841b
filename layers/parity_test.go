package layers

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/safetensors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The parity tests run every fixture under testdata/parity (written by
// testdata/gen/layers.py with PyTorch 1.13) through our layer and compare,
// tensor by tensor, with the criterion
//
//	max_i |got_i − want_i| ≤ tol · max(max_i |want_i|, 1e-6)
//
// that is, the largest error relative to the tensor's largest magnitude,
// with tol = 1e-5 for outputs and running statistics and 1e-4 for
// gradients (both computed in float32 by PyTorch and by us). Each check
// logs its max difference, as llm.c's test_gpt2 does.
const (
	outputTol = 1e-5
	gradTol   = 1e-4
)

// parityOp says how to build one PyTorch op ("op" in a fixture's metadata)
// with our layers.
type parityOp struct {
	// inputs are the fixture tensors bound to graph nodes, in order; a
	// trailing "?" marks an optional one (a nil node when absent).
	inputs []string
	// build returns the op's output node.
	build func(c *parityCase) (*G.Node, error)
	// check replaces the default comparison of output and gradients (used
	// where PyTorch's random numbers cannot be reproduced).
	check func(t *testing.T, c *parityCase, got parityResult)
}

// parityCase is one fixture being built and checked.
type parityCase struct {
	t  *testing.T
	fx *safetensors.File
	in map[string]*G.Node
	// afterRun holds extra checks to run once the machine has run (a
	// layer's side effects, such as BatchNorm's running statistics).
	afterRun []func(t *testing.T)
}

// parityResult is what our graph computed: the output and the gradient of
// sum(output ⊙ dy) for each input that has a "grad.<name>" in the fixture.
type parityResult struct {
	y     []float32
	grads map[string][]float32
}

var parityOps = map[string]parityOp{
	"Conv2d": {inputs: []string{"x", "w", "b?"}, build: func(c *parityCase) (*G.Node, error) {
		return Conv2d(c.in["x"], c.in["w"], c.in["b"], c.metaInt("stride"), c.metaInt("padding"))
	}},
	"Linear": {inputs: []string{"x", "w", "b?"}, build: func(c *parityCase) (*G.Node, error) {
		return Linear(c.in["x"], c.in["w"], c.in["b"])
	}},
	"ReLU": {inputs: []string{"x"}, build: func(c *parityCase) (*G.Node, error) {
		return ReLU(c.in["x"])
	}},
	"MaxPool2d": {inputs: []string{"x"}, build: func(c *parityCase) (*G.Node, error) {
		return MaxPool2d(c.in["x"], c.metaInt("kernel"), c.metaInt("stride"), c.metaInt("padding"))
	}},
	"AdaptiveAvgPool2d": {inputs: []string{"x"}, build: func(c *parityCase) (*G.Node, error) {
		return AdaptiveAvgPool2d(c.in["x"], c.metaInt("out_h"), c.metaInt("out_w"))
	}},
	"Flatten": {inputs: []string{"x"}, build: func(c *parityCase) (*G.Node, error) {
		return Flatten(c.in["x"])
	}},
	"BatchNorm2d": {inputs: []string{"x", "gamma", "beta"}, build: buildBatchNorm},
	"CrossEntropy": {inputs: []string{"logits", "labels"}, build: func(c *parityCase) (*G.Node, error) {
		return CrossEntropy(c.in["logits"], c.in["labels"], c.metaFloat("smoothing"))
	}},
	"Dropout": {inputs: []string{"x"}, build: func(c *parityCase) (*G.Node, error) {
		return Dropout(c.in["x"], c.metaFloat("p"), rand.NewPCG(1, 2), c.meta("mode") == "train")
	}, check: checkDropout},
}

func TestParityWithPyTorch(t *testing.T) {
	paths, err := filepath.Glob("testdata/parity/*.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no fixtures under testdata/parity; run /usr/bin/python3 layers/testdata/gen/layers.py")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".safetensors"), func(t *testing.T) {
			fx, err := safetensors.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			op, ok := parityOps[fx.Metadata["op"]]
			if !ok {
				t.Fatalf("fixture op %q has no entry in parityOps", fx.Metadata["op"])
			}
			runParity(t, fx, op)
		})
	}
}

// runParity builds op on the fixture's inputs, runs output and gradients
// in one TapeMachine pass, and checks them.
func runParity(t *testing.T, fx *safetensors.File, op parityOp) {
	c := &parityCase{t: t, fx: fx, in: map[string]*G.Node{}}
	g := G.NewGraph()
	var wrt G.Nodes
	var wrtNames []string
	for _, name := range op.inputs {
		name, optional := strings.CutSuffix(name, "?")
		if _, ok := fx.Tensors[name]; !ok && optional {
			continue
		}
		c.in[name] = G.NodeFromAny(g, fixtureDense(t, fx, name), G.WithName(name))
		if _, ok := fx.Tensors["grad."+name]; ok {
			wrt = append(wrt, c.in[name])
			wrtNames = append(wrtNames, name)
		}
	}
	y, err := op.build(c)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	var loss *G.Node
	if y.IsScalar() {
		dy := G.NodeFromAny(g, fixtureFloats(t, fx, "dy")[0], G.WithName("dy"))
		loss, err = G.Mul(y, dy)
	} else {
		dy := G.NodeFromAny(g, fixtureDense(t, fx, "dy"), G.WithName("dy"))
		var prod *G.Node
		if prod, err = G.HadamardProd(y, dy); err == nil {
			loss, err = G.Sum(prod)
		}
	}
	if err != nil {
		t.Fatalf("sum(y ⊙ dy): %v", err)
	}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}

	got := parityResult{y: values(t, y.Value()), grads: map[string][]float32{}}
	for i, name := range wrtNames {
		got.grads[name] = values(t, grads[i].Value())
	}
	if op.check != nil {
		op.check(t, c, got)
	} else {
		out := "y"
		if y.IsScalar() {
			out = "loss"
		}
		compare(t, out, got.y, fixtureFloats(t, fx, out), outputTol)
		for _, name := range wrtNames {
			compare(t, "grad."+name, got.grads[name], fixtureFloats(t, fx, "grad."+name), gradTol)
		}
	}
	for _, check := range c.afterRun {
		check(t)
	}
}

// buildBatchNorm starts from the fixture's running statistics and checks
// them against PyTorch's after the run.
func buildBatchNorm(c *parityCase) (*G.Node, error) {
	stats := &BNStats{
		Mean:              fixtureDense(c.t, c.fx, "running_mean"),
		Var:               fixtureDense(c.t, c.fx, "running_var"),
		NumBatchesTracked: fixtureInt(c.t, c.fx, "num_batches_tracked"),
		Momentum:          c.metaFloat("momentum"),
		Eps:               c.metaFloat("eps"),
	}
	c.afterRun = append(c.afterRun, func(t *testing.T) {
		compare(t, "after.running_mean", data[float32](stats.Mean), fixtureFloats(t, c.fx, "after.running_mean"), outputTol)
		compare(t, "after.running_var", data[float32](stats.Var), fixtureFloats(t, c.fx, "after.running_var"), outputTol)
		if got, want := stats.NumBatchesTracked, fixtureInt(t, c.fx, "after.num_batches_tracked"); got != want {
			t.Errorf("NumBatchesTracked = %d, want %d", got, want)
		}
	})
	return BatchNorm2d(c.in["x"], c.in["gamma"], c.in["beta"], stats, c.meta("mode") == "train")
}

// checkDropout checks a Dropout fixture. In eval mode Dropout is the
// identity. In train mode PyTorch's random mask cannot be reproduced, so it
// checks that PyTorch's output and ours are each made of zeros and
// x/(1−p), that each gradient is dy·y/x (x has no zeros), and that we drop
// a plausible fraction of the elements.
func checkDropout(t *testing.T, c *parityCase, got parityResult) {
	x := fixtureFloats(t, c.fx, "x")
	dy := fixtureFloats(t, c.fx, "dy")
	if c.meta("mode") != "train" {
		compare(t, "y", got.y, fixtureFloats(t, c.fx, "y"), outputTol)
		compare(t, "grad.x", got.grads["x"], fixtureFloats(t, c.fx, "grad.x"), gradTol)
		return
	}
	p := c.metaFloat("p")
	scale := 1 / (1 - p)
	for _, side := range []struct {
		name  string
		y, dx []float32
	}{
		{"PyTorch", fixtureFloats(t, c.fx, "y"), fixtureFloats(t, c.fx, "grad.x")},
		{"ours", got.y, got.grads["x"]},
	} {
		dropped, worst := 0, 0.0
		for i := range x {
			want := float64(x[i]) * scale
			if side.y[i] == 0 {
				dropped++
				want = 0
			}
			worst = max(worst, math.Abs(float64(side.y[i])-want)/math.Abs(float64(x[i])*scale))
			gradWant := float64(dy[i]) * float64(side.y[i]) / float64(x[i])
			if d := math.Abs(float64(side.dx[i]) - gradWant); d > gradTol*math.Max(1, math.Abs(gradWant)) {
				t.Errorf("%s: grad.x[%d] = %g, want dy·y/x = %g", side.name, i, side.dx[i], gradWant)
			}
		}
		t.Logf("%s: %d of %d dropped (p = %g); worst relative error of a kept element against x/(1−p): %.2g", side.name, dropped, len(x), p, worst)
		if worst > outputTol {
			t.Errorf("%s: kept elements differ from x/(1−p) by up to %.2g relative, want ≤ %g", side.name, worst, outputTol)
		}
		// 200 elements at p = 0.3: 60 dropped on average, standard
		// deviation 6.5; [20, 100] fails once in ~10^9 runs.
		lo, hi := int(float64(len(x))*p/3), int(float64(len(x))*p*5/3)
		if dropped < lo || dropped > hi {
			t.Errorf("%s: %d of %d elements dropped at p = %g; want between %d and %d", side.name, dropped, len(x), p, lo, hi)
		}
	}
}

// compare checks got against want with the criterion at the top of this
// file and logs the max difference.
func compare(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", name, len(got), len(want))
		return
	}
	maxDiff, maxWant, at := 0.0, 0.0, 0
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > maxDiff || math.IsNaN(d) {
			maxDiff, at = d, i
		}
		maxWant = max(maxWant, math.Abs(float64(want[i])))
	}
	t.Logf("%-20s max |diff| %.3g (max |want| %.3g, %d values)", name, maxDiff, maxWant, len(want))
	if !(maxDiff <= tol*math.Max(maxWant, 1e-6)) {
		t.Errorf("%s: max |diff| %.3g at element %d (got %g, want %g) exceeds %g × max |want| %.3g", name, maxDiff, at, got[at], want[at], tol, maxWant)
	}
}

// values returns a float32 node value (a tensor or a scalar) as a slice.
func values(t *testing.T, v G.Value) []float32 {
	t.Helper()
	switch d := v.Data().(type) {
	case []float32:
		return d
	case float32:
		return []float32{d}
	}
	t.Fatalf("value %v has data of type %T, want float32", v, v.Data())
	return nil
}

// fixtureDense returns a fixture tensor as a float32 *tensor.Dense.
func fixtureDense(t *testing.T, fx *safetensors.File, name string) *tensor.Dense {
	t.Helper()
	v := fixtureFloats(t, fx, name)
	return tensor.New(tensor.WithShape(fx.Tensors[name].Shape...), tensor.WithBacking(v))
}

// fixtureFloats returns a fixture tensor's values as float32 (I64 tensors,
// such as class labels, are converted).
func fixtureFloats(t *testing.T, fx *safetensors.File, name string) []float32 {
	t.Helper()
	tt, ok := fx.Tensors[name]
	if !ok {
		t.Fatalf("fixture has no tensor %q; regenerate it with /usr/bin/python3 layers/testdata/gen/layers.py", name)
	}
	if tt.DType != safetensors.I64 {
		v, err := tt.Float32s()
		if err != nil {
			t.Fatalf("fixture tensor %q: %v", name, err)
		}
		return v
	}
	ints := fixtureInts(t, fx, name)
	v := make([]float32, len(ints))
	for i, n := range ints {
		v[i] = float32(n)
	}
	return v
}

func fixtureInts(t *testing.T, fx *safetensors.File, name string) []int64 {
	t.Helper()
	v, err := fx.Tensors[name].Int64s()
	if err != nil {
		t.Fatalf("fixture tensor %q: %v", name, err)
	}
	return v
}

// fixtureInt returns a fixture's integer scalar.
func fixtureInt(t *testing.T, fx *safetensors.File, name string) int64 {
	t.Helper()
	v := fixtureInts(t, fx, name)
	if len(v) != 1 {
		t.Fatalf("fixture tensor %q has %d values, want a scalar", name, len(v))
	}
	return v[0]
}

// meta returns a fixture's metadata value, failing the test when missing.
func (c *parityCase) meta(key string) string {
	c.t.Helper()
	v, ok := c.fx.Metadata[key]
	if !ok {
		c.t.Fatalf("fixture metadata has no %q", key)
	}
	return v
}

func (c *parityCase) metaInt(key string) int {
	c.t.Helper()
	n, err := strconv.Atoi(c.meta(key))
	if err != nil {
		c.t.Fatalf("fixture metadata %q: %v", key, err)
	}
	return n
}

func (c *parityCase) metaFloat(key string) float64 {
	c.t.Helper()
	f, err := strconv.ParseFloat(c.meta(key), 64)
	if err != nil {
		c.t.Fatalf("fixture metadata %q: %v", key, err)
	}
	return f
}

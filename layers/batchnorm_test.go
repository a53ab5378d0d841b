package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bnTestStats returns float64 statistics for c channels with non-trivial
// running mean and variance.
func bnTestStats(c int) *BNStats {
	s := NewBNStats(tensor.Float64, c)
	for i := range c {
		data[float64](s.Mean)[i] = 0.1*float64(i) - 0.2
		data[float64](s.Var)[i] = 0.5 + 0.3*float64(i)
	}
	return s
}

func TestBatchNorm2dGradient(t *testing.T) {
	for _, train := range []bool{true, false} {
		name := map[bool]string{true: "train", false: "eval"}[train]
		t.Run(name, func(t *testing.T) {
			x := randDense(1, 3, 4, 3, 2)
			gamma, beta := randDense(2, 4), randDense(3, 4)
			stats := bnTestStats(4)
			gradCheck(t, func(xs []*G.Node) (*G.Node, error) {
				return BatchNorm2d(xs[0], xs[1], xs[2], stats, train)
			}, []*tensor.Dense{x, gamma, beta}, []int{0, 1, 2}, 1e-6)
		})
	}
}

// bnRun builds BatchNorm2d on x with fresh gamma = 1 + 0.1·c and beta =
// 0.2·c, runs it once and returns y.
func bnRun(t *testing.T, x *tensor.Dense, stats *BNStats, train bool) *tensor.Dense {
	t.Helper()
	c := x.Shape()[1]
	gv, bv := make([]float64, c), make([]float64, c)
	for i := range c {
		gv[i], bv[i] = 1+0.1*float64(i), 0.2*float64(i)
	}
	g := G.NewGraph()
	xn := G.NodeFromAny(g, x, G.WithName("x"))
	gn := G.NodeFromAny(g, bnCast(tensor.New(tensor.WithShape(c), tensor.WithBacking(gv)), x.Dtype()), G.WithName("gamma"))
	bn := G.NodeFromAny(g, bnCast(tensor.New(tensor.WithShape(c), tensor.WithBacking(bv)), x.Dtype()), G.WithName("beta"))
	y, err := BatchNorm2d(xn, gn, bn, stats, train)
	if err != nil {
		t.Fatalf("BatchNorm2d: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	return y.Value().(*tensor.Dense)
}

// bnCast returns a float64 tensor converted to dt.
func bnCast(d *tensor.Dense, dt tensor.Dtype) *tensor.Dense {
	if dt == tensor.Float64 {
		return d
	}
	return toFloat32(d)
}

// bnWant computes BatchNorm2d's output in float64 from the given per-channel
// mean and variance, with bnRun's gamma and beta.
func bnWant(x []float64, shape tensor.Shape, mean, variance []float64, eps float64) []float64 {
	n, c, hw := shape[0], shape[1], shape[2]*shape[3]
	y := make([]float64, len(x))
	for i := range n {
		for ch := range c {
			for j := range hw {
				k := (i*c+ch)*hw + j
				y[k] = (x[k]-mean[ch])/math.Sqrt(variance[ch]+eps)*(1+0.1*float64(ch)) + 0.2*float64(ch)
			}
		}
	}
	return y
}

// bnBatchMoments returns each channel's mean, biased and unbiased variance.
func bnBatchMoments(x []float64, shape tensor.Shape) (mean, biased, unbiased []float64) {
	n, c, hw := shape[0], shape[1], shape[2]*shape[3]
	mean, biased, unbiased = make([]float64, c), make([]float64, c), make([]float64, c)
	m := float64(n * hw)
	for ch := range c {
		for i := range n {
			for j := range hw {
				mean[ch] += x[(i*c+ch)*hw+j] / m
			}
		}
		for i := range n {
			for j := range hw {
				d := x[(i*c+ch)*hw+j] - mean[ch]
				biased[ch] += d * d / m
			}
		}
		unbiased[ch] = biased[ch] * m / (m - 1)
	}
	return mean, biased, unbiased
}

func bnAssertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("%s[%d]: got %.9g, want %.9g", what, i, got[i], want[i])
		}
	}
}

func TestBatchNorm2dTrainForwardAndRunningStats(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			x64 := randDense(4, 2, 3, 4, 5)
			x64v := data[float64](x64)
			for i := range x64v {
				x64v[i] = 3*x64v[i] + 1 // a mean away from 0
			}
			x := bnCast(x64, dt)
			xv := bnLoad(x) // the values the op sees
			stats := bnTestStats(3)
			if dt == tensor.Float32 {
				stats.Mean, stats.Var = bnCast(stats.Mean, dt), bnCast(stats.Var, dt)
			}
			oldMean, oldVar := bnLoad(stats.Mean), bnLoad(stats.Var)
			mean, biased, unbiased := bnBatchMoments(xv, x.Shape())

			y := bnRun(t, x, stats, true)
			tol := map[tensor.Dtype]float64{tensor.Float64: 1e-12, tensor.Float32: 1e-6}[dt]
			bnAssertClose(t, "y", bnLoad(y), bnWant(xv, x.Shape(), mean, biased, 1e-5), tol)

			wantMean, wantVar := make([]float64, 3), make([]float64, 3)
			for c := range 3 {
				wantMean[c] = 0.9*oldMean[c] + 0.1*mean[c]
				wantVar[c] = 0.9*oldVar[c] + 0.1*unbiased[c]
			}
			bnAssertClose(t, "running mean", bnLoad(stats.Mean), wantMean, tol)
			bnAssertClose(t, "running var", bnLoad(stats.Var), wantVar, tol)
			if stats.NumBatchesTracked != 1 {
				t.Errorf("NumBatchesTracked: got %d, want 1", stats.NumBatchesTracked)
			}
		})
	}
}

func TestBatchNorm2dEvalUsesAndKeepsRunningStats(t *testing.T) {
	x := randDense(5, 2, 3, 2, 2)
	stats := bnTestStats(3)
	stats.NumBatchesTracked = 7
	oldMean, oldVar := bnLoad(stats.Mean), bnLoad(stats.Var)
	y := bnRun(t, x, stats, false)
	bnAssertClose(t, "y", data[float64](y), bnWant(data[float64](x), x.Shape(), oldMean, oldVar, 1e-5), 1e-12)
	bnAssertClose(t, "running mean", bnLoad(stats.Mean), oldMean, 0)
	bnAssertClose(t, "running var", bnLoad(stats.Var), oldVar, 0)
	if stats.NumBatchesTracked != 7 {
		t.Errorf("NumBatchesTracked: got %d, want 7", stats.NumBatchesTracked)
	}
}

// TestBatchNorm2dStatsSurviveMachines guards against Gorgonia's defect where
// NewTapeMachine calls SetTraining on ops and BatchNormOp resets its running
// statistics: building and running more machines, in either mode, on
// graphs sharing one *BNStats must only ever apply the momentum update.
func TestBatchNorm2dStatsSurviveMachines(t *testing.T) {
	x := randDense(6, 4, 2, 3, 3)
	stats := NewBNStats(tensor.Float64, 2)
	mean, _, unbiased := bnBatchMoments(data[float64](x), x.Shape())

	build := func(train bool) (*G.ExprGraph, *G.Node) {
		g := G.NewGraph()
		xn := G.NodeFromAny(g, x, G.WithName("x"))
		gn := G.NodeFromAny(g, tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 1})), G.WithName("gamma"))
		bn := G.NodeFromAny(g, tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{0, 0})), G.WithName("beta"))
		y, err := BatchNorm2d(xn, gn, bn, stats, train)
		if err != nil {
			t.Fatalf("BatchNorm2d: %v", err)
		}
		if train {
			if _, err := G.Grad(G.Must(G.Sum(y)), xn, gn, bn); err != nil {
				t.Fatalf("Grad: %v", err)
			}
		}
		return g, y
	}
	run := func(m G.VM) {
		t.Helper()
		if err := m.RunAll(); err != nil {
			t.Fatalf("RunAll: %v", err)
		}
		m.Reset()
	}

	// updated returns the statistics after k training updates from (0, 1).
	updated := func(k int) (wantMean, wantVar []float64) {
		wantMean, wantVar = make([]float64, 2), make([]float64, 2)
		for c := range 2 {
			m, v := 0.0, 1.0
			for range k {
				m = 0.9*m + 0.1*mean[c]
				v = 0.9*v + 0.1*unbiased[c]
			}
			wantMean[c], wantVar[c] = m, v
		}
		return wantMean, wantVar
	}
	check := func(what string, k int) {
		t.Helper()
		wantMean, wantVar := updated(k)
		bnAssertClose(t, what+": running mean", bnLoad(stats.Mean), wantMean, 1e-12)
		bnAssertClose(t, what+": running var", bnLoad(stats.Var), wantVar, 1e-12)
		if stats.NumBatchesTracked != int64(k) {
			t.Fatalf("%s: NumBatchesTracked: got %d, want %d", what, stats.NumBatchesTracked, k)
		}
	}

	trainG, _ := build(true)
	evalG, _ := build(false)
	trainM := G.NewTapeMachine(trainG, G.BindDualValues())
	defer trainM.Close()
	run(trainM)
	check("one training run", 1)

	for range 2 {
		m := G.NewTapeMachine(evalG)
		run(m)
		m.Close()
	}
	check("two evaluation-graph machines", 1)

	// An EvalMode machine on the training graph: building it must not touch
	// the statistics; running it trains, because the mode is fixed when
	// the node is built.
	em := G.NewTapeMachine(trainG, G.EvalMode())
	defer em.Close()
	check("EvalMode machine built on the training graph", 1)
	run(em)
	check("EvalMode machine run on the training graph", 2)

	run(trainM)
	check("second run of the training machine", 3)
}

func TestBatchNorm2dBuildErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 4, 4), G.WithName("x"))
	x1 := G.NewTensor(g, tensor.Float64, 4, G.WithShape(1, 3, 1, 1), G.WithName("x1"))
	x3 := G.NewTensor(g, tensor.Float64, 3, G.WithShape(3, 4, 4), G.WithName("x3"))
	v3 := G.NewVector(g, tensor.Float64, G.WithShape(3), G.WithName("v3"))
	v4 := G.NewVector(g, tensor.Float64, G.WithShape(4), G.WithName("v4"))
	v3f32 := G.NewVector(g, tensor.Float32, G.WithShape(3), G.WithName("v3f32"))
	wrongStats := NewBNStats(tensor.Float64, 4)
	badMomentum := NewBNStats(tensor.Float64, 3)
	badMomentum.Momentum = 1.5
	for _, tc := range []struct {
		name         string
		x, gam, beta *G.Node
		stats        *BNStats
		train        bool
		want         string
	}{
		{"rank 3 x", x3, v3, v3, NewBNStats(tensor.Float64, 3), true, "want (N, C, H, W)"},
		{"gamma size", x, v4, v3, NewBNStats(tensor.Float64, 3), true, "gamma has shape"},
		{"beta dtype", x, v3, v3f32, NewBNStats(tensor.Float64, 3), true, "beta has dtype"},
		{"nil stats", x, v3, v3, nil, false, "nil *BNStats"},
		{"stats size", x, v3, v3, wrongStats, false, "stats.Mean has shape"},
		{"momentum", x, v3, v3, badMomentum, true, "momentum"},
		{"one value per channel", x1, v3, v3, NewBNStats(tensor.Float64, 3), true, "more than 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BatchNorm2d(tc.x, tc.gam, tc.beta, tc.stats, tc.train)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := BatchNorm2d(x1, v3, v3, NewBNStats(tensor.Float64, 3), false); err != nil {
		t.Errorf("eval mode with one value per channel: got %v, want no error", err)
	}
}

// float32Parity runs build's graph on inputs (float64) and on their float32
// copies, with loss = Σ output ⊙ R, and checks that the float32 output and
// gradients of the inputs listed in wrt match the float64 ones within tol,
// relative to each tensor's largest magnitude.
func float32Parity(t *testing.T, build func(xs []*G.Node) (*G.Node, error), inputs []*tensor.Dense, wrt []int, tol float64) {
	t.Helper()
	results := make(map[tensor.Dtype][][]float64)
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		g := G.NewGraph()
		xs := make([]*G.Node, len(inputs))
		for i, in := range inputs {
			xs[i] = G.NodeFromAny(g, bnCast(in.Clone().(*tensor.Dense), dt), G.WithName(string(rune('a'+i))))
		}
		y, err := build(xs)
		if err != nil {
			t.Fatalf("%v: build: %v", dt, err)
		}
		r := G.NodeFromAny(g, bnCast(randDense(98, y.Shape()...), dt), G.WithName("R"))
		loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, r))))
		wrtNodes := make(G.Nodes, len(wrt))
		for i, w := range wrt {
			wrtNodes[i] = xs[w]
		}
		grads, err := G.Grad(loss, wrtNodes...)
		if err != nil {
			t.Fatalf("%v: Grad: %v", dt, err)
		}
		m := G.NewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			t.Fatalf("%v: RunAll: %v", dt, err)
		}
		m.Close()
		res := [][]float64{bnLoad(y.Value().(*tensor.Dense))}
		for _, gn := range grads {
			res = append(res, bnLoad(gn.Value().(*tensor.Dense)))
		}
		results[dt] = res
	}
	for i, want := range results[tensor.Float64] {
		got := results[tensor.Float32][i]
		scale := 0.0
		for _, v := range want {
			scale = max(scale, math.Abs(v))
		}
		what := "output"
		if i > 0 {
			what = fmt.Sprintf("gradient of input %d", wrt[i-1])
		}
		for j := range want {
			if math.Abs(got[j]-want[j]) > tol*max(scale, 1e-30) {
				t.Fatalf("%s element %d: float32 %.8g, float64 %.8g", what, j, got[j], want[j])
			}
		}
	}
}

func TestBatchNorm2dFloat32(t *testing.T) {
	for _, train := range []bool{true, false} {
		x := randDense(31, 4, 3, 5, 5)
		for i, v := range data[float64](x) {
			data[float64](x)[i] = 10*v + 5 // large mean: float32 accumulation must hold up
		}
		stats := NewBNStats(tensor.Float32, 3)
		float32Parity(t, func(xs []*G.Node) (*G.Node, error) {
			return BatchNorm2d(xs[0], xs[1], xs[2], stats, train)
		}, []*tensor.Dense{x, randDense(32, 3), randDense(33, 3)}, []int{0, 1, 2}, 1e-5)
	}
}

func ExampleBatchNorm2d() {
	// One *BNStats serves the training graph and the evaluation graph.
	stats := NewBNStats(tensor.Float64, 1)
	x := tensor.New(tensor.WithShape(2, 1, 1, 2), tensor.WithBacking([]float64{1, 2, 3, 4}))
	for _, train := range []bool{true, false} {
		g := G.NewGraph()
		xn := G.NodeFromAny(g, x, G.WithName("x"))
		gamma := G.NodeFromAny(g, tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{1})), G.WithName("gamma"))
		beta := G.NodeFromAny(g, tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{0})), G.WithName("beta"))
		y, err := BatchNorm2d(xn, gamma, beta, stats, train)
		if err != nil {
			fmt.Println(err)
			return
		}
		m := G.NewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			fmt.Println(err)
			return
		}
		m.Close()
		fmt.Printf("train=%v: y %.3f, running mean %.3f, var %.4f, batches %d\n",
			train, y.Value().Data(), stats.Mean.Data(), stats.Var.Data(), stats.NumBatchesTracked)
	}
	// Output:
	// train=true: y [-1.342 -0.447 0.447 1.342], running mean [0.250], var [1.0667], batches 1
	// train=false: y [0.726 1.694 2.663 3.631], running mean [0.250], var [1.0667], batches 1
}

// TestBatchNorm2dTrainForwardMatchesTwoPasses checks the one-pass training
// forward (bnTrainForward: statistics and normalisation per channel)
// against the statistics of every channel first and bnForward after, bit
// for bit, in both dtypes, on one goroutine and split, and in place.
func TestBatchNorm2dTrainForwardMatchesTwoPasses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int // × 5 channels × 4099: 3 is under parallelMin, 6 above
		procs   int
		inPlace bool
	}{
		{"serial", 3, 1, false},
		{"split", 6, 2, false},
		{"split in place", 6, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tc.procs))
			r := rand.New(rand.NewPCG(5, 9))
			x := make([]float64, tc.n*5*4099)
			for i := range x {
				x[i] = 3 + 2*r.NormFloat64()
			}
			if err := bnOnePassVsTwo(x, tc.n, tc.inPlace); err != nil {
				t.Errorf("float64: %v", err)
			}
			x32 := make([]float32, len(x))
			for i, v := range x {
				x32[i] = float32(v)
			}
			if err := bnOnePassVsTwo(x32, tc.n, tc.inPlace); err != nil {
				t.Errorf("float32: %v", err)
			}
		})
	}
}

// bnOnePassVsTwo runs bnTrainForward on x (n, 5, 4099) and the two-pass
// reference, and returns an error naming the first thing that differs.
func bnOnePassVsTwo[T float](x []T, n int, inPlace bool) error {
	const c, hw, eps = 5, 4099, 1e-5
	gamma, beta := []T{1, 0.5, -2, 3, 0}, []T{0, 1, -1, 0.25, 2}
	wantMean, wantVar, wantInv := make([]float64, c), make([]float64, c), make([]float64, c)
	for ch := range c {
		var sum, sq float64
		for i := range n {
			sum += sum4(x[(i*c+ch)*hw : (i*c+ch+1)*hw])
		}
		wantMean[ch] = sum / float64(n*hw)
		for i := range n {
			sq += sqDev4(x[(i*c+ch)*hw:(i*c+ch+1)*hw], wantMean[ch])
		}
		wantVar[ch] = sq / float64(n*hw)
		wantInv[ch] = 1 / math.Sqrt(wantVar[ch]+eps)
	}
	want := make([]T, len(x))
	bnForward(want, x, gamma, beta, wantMean, wantInv, n, c, hw)

	mean, variance, invstd := make([]float64, c), make([]float64, c), make([]float64, c)
	y := make([]T, len(x))
	if inPlace {
		copy(y, x)
		x = y
	}
	bnTrainForward(y, x, gamma, beta, mean, variance, invstd, eps, n, c, hw)
	for _, v := range []struct {
		name      string
		got, want []float64
	}{{"mean", mean, wantMean}, {"variance", variance, wantVar}, {"invstd", invstd, wantInv}} {
		if !slices.Equal(v.got, v.want) {
			return fmt.Errorf("%s %v, want %v", v.name, v.got, v.want)
		}
	}
	if !slices.Equal(y, want) {
		return fmt.Errorf("y differs from the two-pass result")
	}
	return nil
}

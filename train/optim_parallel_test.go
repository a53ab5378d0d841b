package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

// TestRunUpdatesCovers checks that runUpdates updates every element of every parameter
// exactly once, on one goroutine or several, with sizes on both sides of parallelMin and
// of chunkMax.
func TestRunUpdatesCovers(t *testing.T) {
	for _, tc := range []struct {
		sizes   []int
		workers int
	}{
		{[]int{10, 0, 3}, 2},
		{[]int{parallelMin - 1}, 2},
		{[]int{parallelMin}, 1},
		{[]int{parallelMin}, 2},
		{[]int{3*chunkMax + 7, 1, 0, chunkMax}, 2},
		{[]int{3*chunkMax + 7, 1, 0, chunkMax}, 3},
		{[]int{5, 2*parallelMin + 1, 9}, 8},
	} {
		seen := make([][]int, len(tc.sizes))
		ups := make([]update, len(tc.sizes))
		for i, n := range tc.sizes {
			seen[i] = make([]int, n)
			ups[i] = update{n: n, fn: func(lo, hi int) {
				for j := lo; j < hi; j++ {
					seen[i][j]++ // each element once: no two goroutines write the same one
				}
			}}
		}
		runUpdates(ups, tc.workers)
		for i, s := range seen {
			if j := slices.IndexFunc(s, func(k int) bool { return k != 1 }); j >= 0 {
				t.Errorf("sizes %v, %d workers: parameter %d element %d updated %d times, want 1", tc.sizes, tc.workers, i, j, s[j])
			}
		}
	}
}

// TestStepParallelMatchesSerial runs every optimizer for three steps on parameters large
// enough to be split (one over several chunks, a float64 one, a tiny one, one without a
// gradient) with GOMAXPROCS 1, 2 and 3: weights and state buffers must be identical bit
// for bit, since each element's update is the same arithmetic whoever runs it.
func TestStepParallelMatchesSerial(t *testing.T) {
	adamAMS := DefaultAdamConfig()
	adamAMS.AMSGrad, adamAMS.WeightDecay = true, 1e-2
	for _, tc := range []struct {
		name string
		opt  func() (Optimizer, error)
	}{
		{"sgd", func() (Optimizer, error) { return NewSGD(SGDConfig{}) }},
		{"sgd-momentum", func() (Optimizer, error) {
			return NewSGD(SGDConfig{Momentum: 0.9, Dampening: 0.1, WeightDecay: 5e-4})
		}},
		{"sgd-nesterov", func() (Optimizer, error) { return NewSGD(SGDConfig{Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4}) }},
		{"adam", func() (Optimizer, error) { return NewAdam(DefaultAdamConfig()) }},
		{"adam-amsgrad-l2", func() (Optimizer, error) { return NewAdam(adamAMS) }},
		{"adamw", func() (Optimizer, error) { return NewAdamW(DefaultAdamWConfig()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(procs int) OptimizerState {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				opt, err := tc.opt()
				if err != nil {
					t.Fatal(err)
				}
				r := rand.New(rand.NewPCG(1, 2))
				params := []Param{
					{Name: "big", Value: randDense(r, tensor.Float32, 3*chunkMax+5)},
					{Name: "f64", Value: randDense(r, tensor.Float64, parallelMin+3)},
					{Name: "tiny", Value: randDense(r, tensor.Float32, 3)},
					{Name: "frozen", Value: randDense(r, tensor.Float32, 7)},
				}
				for step := range 3 {
					for i := range params[:3] {
						params[i].Grad = randDense(r, params[i].Value.Dtype(), params[i].Value.Shape()[0])
					}
					if err := opt.Step(params, 0.01*float64(step+1)); err != nil {
						t.Fatal(err)
					}
				}
				st, err := opt.State()
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range params {
					st.Tensors[p.Name+".value"] = p.Value
				}
				return st
			}
			want := run(1)
			for _, procs := range []int{2, 3} {
				got := run(procs)
				for _, k := range keys(want.Tensors) {
					if !sameBits(got.Tensors[k], want.Tensors[k]) {
						t.Errorf("GOMAXPROCS %d: %s differs from GOMAXPROCS 1", procs, k)
					}
				}
				if len(got.Tensors) != len(want.Tensors) {
					t.Errorf("GOMAXPROCS %d: %d state tensors, want %d", procs, len(got.Tensors), len(want.Tensors))
				}
			}
		})
	}
}

// randDense returns a vector of n standard normal values of dtype dt.
func randDense(r *rand.Rand, dt tensor.Dtype, n int) *tensor.Dense {
	d := tensor.New(tensor.Of(dt), tensor.WithShape(n))
	switch v := d.Data().(type) {
	case []float32:
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
	case []float64:
		for i := range v {
			v[i] = r.NormFloat64()
		}
	}
	return d
}

// sameBits reports whether a and b hold the same float bit patterns (NaNs included).
func sameBits(a, b *tensor.Dense) bool {
	if a == nil || b == nil {
		return a == b
	}
	switch x := a.Data().(type) {
	case []float32:
		y, ok := b.Data().([]float32)
		return ok && slices.EqualFunc(x, y, func(p, q float32) bool { return math.Float32bits(p) == math.Float32bits(q) })
	case []float64:
		y, ok := b.Data().([]float64)
		return ok && slices.EqualFunc(x, y, func(p, q float64) bool { return math.Float64bits(p) == math.Float64bits(q) })
	}
	return false
}

// BenchmarkOptimizerStep times one Step over parameters shaped as vgg16_bn's (CIFAR head:
// 14.7M elements in 54 tensors), on one and on two goroutines.
func BenchmarkOptimizerStep(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	var params []Param
	add := func(name string, n int) {
		params = append(params, Param{Name: name, Value: randDense(r, tensor.Float32, n), Grad: randDense(r, tensor.Float32, n)})
	}
	in := 3
	for i, out := range []int{64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512} {
		add(fmt.Sprintf("conv%d.weight", i), out*in*9)
		add(fmt.Sprintf("conv%d.bias", i), out)
		add(fmt.Sprintf("bn%d.weight", i), out)
		add(fmt.Sprintf("bn%d.bias", i), out)
		in = out
	}
	add("fc.weight", 512*10)
	add("fc.bias", 10)
	for _, tc := range []struct {
		name string
		opt  func() (Optimizer, error)
	}{
		{"sgd-momentum", func() (Optimizer, error) { return NewSGD(SGDConfig{Momentum: 0.9, WeightDecay: 5e-4}) }},
		{"adamw", func() (Optimizer, error) { return NewAdamW(DefaultAdamWConfig()) }},
	} {
		for _, procs := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/procs=%d", tc.name, procs), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				opt, err := tc.opt()
				if err != nil {
					b.Fatal(err)
				}
				if err := opt.Step(params, 1e-3); err != nil { // creates the buffers
					b.Fatal(err)
				}
				for b.Loop() {
					if err := opt.Step(params, 1e-3); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestSGDUsualStepBitExact checks the branch-free loop of the usual SGD step
// (momentum and weight decay, not Nesterov) against the general formula
// written out in the parameter's dtype, bit for bit, over three steps (the
// first one creates the momentum buffer), in float32 and float64, on both
// sides of the parallel threshold.
func TestSGDUsualStepBitExact(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{7, 3 << 16} {
		if err := sgdUsualStepBitExact[float32](r, tensor.Float32, n); err != nil {
			t.Errorf("float32: %v", err)
		}
		if err := sgdUsualStepBitExact[float64](r, tensor.Float64, n); err != nil {
			t.Errorf("float64: %v", err)
		}
	}
}

// sgdUsualStepBitExact runs three SGD steps with momentum, dampening and weight
// decay on n random elements of dtype dt (T) and returns an error naming the
// first element that differs from the formula computed in T.
func sgdUsualStepBitExact[T float](r *rand.Rand, dt tensor.Dtype, n int) error {
	const lr, wd, mom, damp = 0.05, 5e-4, 0.9, 0.1
	p := Param{Name: "w", Value: randDense(r, dt, n), Grad: randDense(r, dt, n)}
	w := slices.Clone(data[T](p.Value))
	g := data[T](p.Grad)
	buf := make([]T, n)
	opt, err := NewSGD(SGDConfig{Momentum: mom, WeightDecay: wd, Dampening: damp})
	if err != nil {
		return err
	}
	for step := range 3 {
		if err := opt.Step([]Param{p}, lr); err != nil {
			return err
		}
		for i := range w {
			d := g[i] + T(wd)*w[i]
			if step == 0 {
				buf[i] = d
			} else {
				buf[i] = buf[i]*T(mom) + T(1-damp)*d
			}
			w[i] += T(-lr) * buf[i]
		}
		got := data[T](p.Value)
		for i := range w {
			if !sameFloatBits(got[i], w[i]) {
				return fmt.Errorf("n %d, step %d: w[%d] = %g, want %g bit for bit", n, step+1, i, got[i], w[i])
			}
		}
	}
	return nil
}

// sameFloatBits reports whether a and b have the same bit pattern.
func sameFloatBits[T float](a, b T) bool {
	switch a := any(a).(type) {
	case float32:
		return math.Float32bits(a) == math.Float32bits(any(b).(float32))
	}
	return math.Float64bits(float64(a)) == math.Float64bits(float64(b))
}

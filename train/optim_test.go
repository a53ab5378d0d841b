package train

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// optimFixture is testdata/optim.json, written by testdata/gen/optim.py: a least-squares
// problem, loss = mean((x·Wᵀ + b − y)²) with W (4, 3), b (4), x (8, 3), y (8, 4), a new
// batch each step, and the weights and buffers PyTorch produced after every step.
type optimFixture struct {
	X     [][]float64 `json:"x"` // per step, x (8, 3) row-major
	Y     [][]float64 `json:"y"` // per step, y (8, 4)
	W     []float64   `json:"fc.weight"`
	B     []float64   `json:"fc.bias"`
	Cases []optimCase `json:"cases"`
}

type optimCase struct {
	Name  string `json:"name"`
	Steps []struct {
		LR    float64              `json:"lr"`
		Loss  float64              `json:"loss"`
		W     []float64            `json:"fc.weight"`
		B     []float64            `json:"fc.bias"`
		State map[string][]float64 `json:"state"`
	} `json:"steps"`
}

// loadFixture decodes testdata/name, a JSON file that
// testdata/gen/optim.py writes.
func loadFixture[T any](t *testing.T, name string) T {
	t.Helper()
	var f T
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture (regenerate with /usr/bin/python3 train/testdata/gen/optim.py): %v", err)
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return f
}

// newOptimizer builds the Go optimizer matching each fixture case.
func newOptimizer(t *testing.T, name string) Optimizer {
	t.Helper()
	var (
		opt Optimizer
		err error
	)
	switch name {
	case "sgd_plain":
		opt, err = NewSGD(SGDConfig{})
	case "sgd_momentum_wd", "sgd_momentum_steplr":
		opt, err = NewSGD(SGDConfig{Momentum: 0.9, WeightDecay: 5e-4})
	case "sgd_nesterov_wd":
		opt, err = NewSGD(SGDConfig{Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true})
	case "sgd_dampening":
		opt, err = NewSGD(SGDConfig{Momentum: 0.9, Dampening: 0.1})
	case "adam_wd":
		cfg := DefaultAdamConfig()
		cfg.WeightDecay = 1e-4
		opt, err = NewAdam(cfg)
	case "adam_amsgrad":
		opt, err = NewAdam(AdamConfig{Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, AMSGrad: true})
	case "adamw":
		opt, err = NewAdamW(DefaultAdamWConfig())
	case "adamw_steplr":
		cfg := DefaultAdamWConfig()
		cfg.WeightDecay = 0.1
		opt, err = NewAdamW(cfg)
	default:
		t.Fatalf("fixture case %q has no Go optimizer: add it to newOptimizer", name)
	}
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return opt
}

// lsq is the least-squares problem in float32, with hand-written gradients.
type lsq struct {
	w, b, gw, gb, frozen *tensor.Dense
}

func newLSQ(f optimFixture) *lsq {
	return &lsq{
		w:      tensor.New(tensor.WithShape(4, 3), tensor.WithBacking(f32s(f.W))),
		b:      tensor.New(tensor.WithShape(4), tensor.WithBacking(f32s(f.B))),
		gw:     tensor.New(tensor.WithShape(4, 3), tensor.Of(tensor.Float32)),
		gb:     tensor.New(tensor.WithShape(4), tensor.Of(tensor.Float32)),
		frozen: tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2})),
	}
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// grad sets the gradients of mean((x·Wᵀ + b − y)²) and returns the loss; x is (8, 3), y (8, 4).
func (p *lsq) grad(x, y []float64) float64 {
	w, b := p.w.Float32s(), p.b.Float32s()
	gw, gb := p.gw.Float32s(), p.gb.Float32s()
	clear(gw)
	clear(gb)
	const n, in, out = 8, 3, 4
	var loss float64
	for r := 0; r < n; r++ {
		for o := 0; o < out; o++ {
			pred := b[o]
			for i := 0; i < in; i++ {
				pred += float32(x[r*in+i]) * w[o*in+i]
			}
			diff := pred - float32(y[r*out+o])
			loss += float64(diff * diff)
			d := 2 * diff / (n * out) // ∂loss/∂pred
			gb[o] += d
			for i := 0; i < in; i++ {
				gw[o*in+i] += d * float32(x[r*in+i])
			}
		}
	}
	return loss / (n * out)
}

// params lists W and b, and a frozen-by-nil-grad parameter that must never change.
func (p *lsq) params() []Param {
	return []Param{
		{Name: "fc.weight", Value: p.w, Grad: p.gw},
		{Name: "fc.bias", Value: p.b, Grad: p.gb},
		{Name: "head.unused", Value: p.frozen},
	}
}

// closeRel reports whether got is within tol of want, relative to max(|want|, floor).
func closeRel(got, want, tol, floor float64) bool {
	return math.Abs(got-want) <= tol*math.Max(math.Abs(want), floor)
}

// compare checks got against torch's want element by element, within tol relative to
// max(|want[i]|, floor).
func compare(t *testing.T, what string, got []float32, want []float64, tol, floor float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		if !closeRel(float64(got[i]), want[i], tol, floor) {
			t.Errorf("%s[%d] = %.9g, want %.9g (torch)", what, i, got[i], want[i])
		}
		worst = max(worst, math.Abs(float64(got[i])-want[i]))
	}
	t.Logf("%s: max |Go − torch| = %.3g", what, worst)
}

func TestOptimizersMatchTorch(t *testing.T) {
	f := loadFixture[optimFixture](t, "optim.json")
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			opt := newOptimizer(t, c.Name)
			p := newLSQ(f)
			for s, want := range c.Steps {
				loss := p.grad(f.X[s], f.Y[s])
				if !closeRel(loss, want.Loss, 1e-5, 0) {
					t.Errorf("step %d: loss %.9g, want %.9g (torch)", s, loss, want.Loss)
				}
				if err := opt.Step(p.params(), want.LR); err != nil {
					t.Fatalf("step %d: %v", s, err)
				}
				// Weights are O(0.1–1): 1e-5 relative, with a floor for entries near 0.
				compare(t, "fc.weight", p.w.Float32s(), want.W, 1e-5, 1e-3)
				compare(t, "fc.bias", p.b.Float32s(), want.B, 1e-5, 1e-3)
				st, err := opt.State()
				if err != nil {
					t.Fatal(err)
				}
				if len(st.Tensors) != len(want.State) {
					t.Errorf("step %d: state has %d tensors, want %d (%v)", s, len(st.Tensors), len(want.State), keys(want.State))
				}
				for k, v := range want.State {
					buf, ok := st.Tensors[k]
					if !ok {
						t.Fatalf("step %d: state lacks %q", s, k)
					}
					// Buffers accumulate gradients, whose entries are sums that
					// cancel (float32 summation order differs from torch's):
					// 1e-5 relative to the buffer's largest entry.
					compare(t, k, buf.Float32s(), v, 1e-5, maxAbs(v))
				}
			}
			if got := p.frozen.Float32s(); got[0] != 1 || got[1] != 2 {
				t.Errorf("parameter without gradient changed to %v, want [1 2]", got)
			}
		})
	}
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(x))
	}
	return m
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestOptimizerResume runs five steps straight, and again with State→JSON→LoadState into
// a fresh optimizer after step 2: the weights must be bit-identical.
func TestOptimizerResume(t *testing.T) {
	f := loadFixture[optimFixture](t, "optim.json")
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			straight, resumed := newLSQ(f), newLSQ(f)
			a := newOptimizer(t, c.Name)
			b := newOptimizer(t, c.Name)
			for s, want := range c.Steps {
				straight.grad(f.X[s], f.Y[s])
				resumed.grad(f.X[s], f.Y[s])
				if err := a.Step(straight.params(), want.LR); err != nil {
					t.Fatal(err)
				}
				if err := b.Step(resumed.params(), want.LR); err != nil {
					t.Fatal(err)
				}
				if s == 2 {
					st, err := b.State()
					if err != nil {
						t.Fatal(err)
					}
					// The checkpoint writes the tensors apart and the rest as JSON.
					raw, err := json.Marshal(st)
					if err != nil {
						t.Fatalf("marshal state: %v", err)
					}
					var back OptimizerState
					if err := json.Unmarshal(raw, &back); err != nil {
						t.Fatalf("unmarshal %s: %v", raw, err)
					}
					back.Tensors = st.Tensors
					b = newOptimizer(t, c.Name)
					if err := b.LoadState(back); err != nil {
						t.Fatalf("LoadState: %v", err)
					}
				}
			}
			for i, w := range straight.w.Float32s() {
				if got := resumed.w.Float32s()[i]; got != w {
					t.Errorf("resumed fc.weight[%d] = %v, want %v (uninterrupted run)", i, got, w)
				}
			}
			for i, w := range straight.b.Float32s() {
				if got := resumed.b.Float32s()[i]; got != w {
					t.Errorf("resumed fc.bias[%d] = %v, want %v (uninterrupted run)", i, got, w)
				}
			}
			sa, _ := a.State()
			sb, _ := b.State()
			if sa.Step != len(c.Steps) || sb.Step != sa.Step {
				t.Errorf("Step after %d steps: straight %d, resumed %d", len(c.Steps), sa.Step, sb.Step)
			}
		})
	}
}

func TestOptimizerFloat64(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  func() (Optimizer, error)
		want []float64
	}{
		// p = 1, g = 0.5, lr = 0.1: two SGD momentum steps: b = 0.5, then 0.9·0.5 + 0.5.
		{"sgd", func() (Optimizer, error) { return NewSGD(SGDConfig{Momentum: 0.9}) }, []float64{1 - 0.05, 1 - 0.05 - 0.095}},
		// Adam's first steps move by lr·g/(|g|+eps') ≈ lr for a constant gradient.
		{"adam", func() (Optimizer, error) { return NewAdam(AdamConfig{Beta1: 0.9, Beta2: 0.999}) }, []float64{0.9, 0.8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt, err := tc.opt()
			if err != nil {
				t.Fatal(err)
			}
			p := Param{Name: "p", Value: tensor.New(tensor.WithBacking([]float64{1})), Grad: tensor.New(tensor.WithBacking([]float64{0.5}))}
			for i, want := range tc.want {
				if err := opt.Step([]Param{p}, 0.1); err != nil {
					t.Fatal(err)
				}
				if got := p.Value.Float64s()[0]; math.Abs(got-want) > 1e-12 {
					t.Errorf("step %d: p = %.15g, want %.15g", i, got, want)
				}
			}
		})
	}
}

func TestOptimizerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"negative momentum", second(NewSGD(SGDConfig{Momentum: -0.1})), "momentum -0.1"},
		{"negative weight decay", second(NewSGD(SGDConfig{WeightDecay: -1})), "weight decay -1"},
		{"nesterov without momentum", second(NewSGD(SGDConfig{Nesterov: true})), "nesterov needs momentum > 0"},
		{"nesterov with dampening", second(NewSGD(SGDConfig{Nesterov: true, Momentum: 0.9, Dampening: 0.1})), "dampening 0.1"},
		{"beta1 of 1", second(NewAdam(AdamConfig{Beta1: 1, Beta2: 0.999})), "beta1 1"},
		{"negative beta2", second(NewAdamW(AdamConfig{Beta1: 0.9, Beta2: -0.5})), "adamw: beta2 -0.5"},
		{"zero-value adam is valid", second(NewAdam(AdamConfig{})), ""},
		{"negative eps", second(NewAdam(AdamConfig{Eps: -1e-8})), "eps -1e-08"},
		{"NaN weight decay", second(NewAdam(AdamConfig{WeightDecay: math.NaN()})), "weight decay NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switch {
			case tc.want == "" && tc.err != nil:
				t.Errorf("got error %v, want none", tc.err)
			case tc.want != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.want)):
				t.Errorf("got error %v, want one containing %q", tc.err, tc.want)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }

func TestOptimizerStepErrors(t *testing.T) {
	f32 := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	ok := Param{Name: "w", Value: f32(2, 2), Grad: f32(2, 2)}
	for _, tc := range []struct {
		name   string
		params []Param
		lr     float64
		want   string
	}{
		{"negative lr", []Param{ok}, -0.1, "learning rate -0.1"},
		{"NaN lr", []Param{ok}, math.NaN(), "learning rate NaN"},
		{"shape mismatch", []Param{{Name: "w", Value: f32(2, 2), Grad: f32(4)}}, 0.1, "(2, 2) but its gradient is (4)"},
		{"dtype mismatch", []Param{{Name: "w", Value: f32(2), Grad: tensor.New(tensor.WithShape(2), tensor.Of(tensor.Float64))}}, 0.1, "float32 but its gradient is float64"},
		{"int tensor", []Param{{Name: "w", Value: tensor.New(tensor.WithShape(2), tensor.Of(tensor.Int)), Grad: tensor.New(tensor.WithShape(2), tensor.Of(tensor.Int))}}, 0.1, "want float32 or float64"},
		{"duplicate name", []Param{ok, ok}, 0.1, `"w" passed twice`},
		{"no name", []Param{{Value: f32(1), Grad: f32(1)}}, 0.1, "without a name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, opt := range []Optimizer{mustSGD(t), mustAdamW(t)} {
				err := opt.Step(tc.params, tc.lr)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%T: got error %v, want one containing %q", opt, err, tc.want)
				}
			}
		})
	}
}

func mustSGD(t *testing.T) *SGD {
	s, err := NewSGD(SGDConfig{Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustAdamW(t *testing.T) *Adam {
	a, err := NewAdamW(DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoadStateRefuses(t *testing.T) {
	f32 := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	trained := func(opt Optimizer) OptimizerState {
		t.Helper()
		if err := opt.Step([]Param{{Name: "w", Value: f32(2, 3), Grad: f32(2, 3)}}, 0.1); err != nil {
			t.Fatal(err)
		}
		st, err := opt.State()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	sgdState, adamwState := trained(mustSGD(t)), trained(mustAdamW(t))
	adamState := trained(func() Optimizer { a, _ := NewAdam(DefaultAdamConfig()); return a }())

	t.Run("load", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opt  Optimizer
			st   OptimizerState
			want string
		}{
			{"adamw into sgd", mustSGD(t), adamwState, `cannot load "adamw"`},
			{"adam into adamw", mustAdamW(t), adamState, `cannot load "adam"`},
			{"other momentum", func() Optimizer { s, _ := NewSGD(SGDConfig{Momentum: 0.5}); return s }(), sgdState, "saved with"},
			{"foreign buffer", mustSGD(t), OptimizerState{Kind: KindSGD, SGD: &SGDConfig{Momentum: 0.9}, Tensors: map[string]*tensor.Dense{"w.exp_avg": f32(2, 3)}}, `"w.exp_avg" is not one of`},
			{"adam buffer without count", mustAdamW(t), OptimizerState{Kind: KindAdamW, Adam: ptr(DefaultAdamWConfig()), Tensors: adamwState.Tensors}, "no step count"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.opt.LoadState(tc.st)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got error %v, want one containing %q", err, tc.want)
				}
			})
		}
	})
	t.Run("step after load", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			st     OptimizerState
			opt    Optimizer
			params []Param
			want   string
		}{
			{"sgd other shape", sgdState, mustSGD(t), []Param{{Name: "w", Value: f32(3, 2), Grad: f32(3, 2)}}, "the checkpoint belongs to another model"},
			{"adamw other shape", adamwState, mustAdamW(t), []Param{{Name: "w", Value: f32(6), Grad: f32(6)}}, `is float32 (2, 3) but parameter "w" is float32 (6)`},
			{"unknown name", adamwState, mustAdamW(t), []Param{{Name: "v", Value: f32(2, 3), Grad: f32(2, 3)}}, `no parameter "w" was passed`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.opt.LoadState(tc.st); err != nil {
					t.Fatal(err)
				}
				err := tc.opt.Step(tc.params, 0.1)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got error %v, want one containing %q", err, tc.want)
				}
			})
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestStateIsCopy checks that State returns buffers the optimizer no longer writes to.
func TestStateIsCopy(t *testing.T) {
	opt := mustSGD(t)
	p := Param{Name: "w", Value: tensor.New(tensor.WithBacking([]float32{1})), Grad: tensor.New(tensor.WithBacking([]float32{1}))}
	if err := opt.Step([]Param{p}, 0.1); err != nil {
		t.Fatal(err)
	}
	st, _ := opt.State()
	if err := opt.Step([]Param{p}, 0.1); err != nil {
		t.Fatal(err)
	}
	if got := st.Tensors["w.momentum_buffer"].Float32s()[0]; got != 1 {
		t.Errorf("saved momentum buffer = %v after another step, want 1 (a copy)", got)
	}
}

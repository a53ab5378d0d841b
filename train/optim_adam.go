package train

import (
	"fmt"
	"math"
	"runtime"

	"gorgonia.org/tensor"
)

// AdamConfig holds the hyper-parameters of torch.optim.Adam and torch.optim.AdamW (the
// learning rate comes from the schedule at each Step). Start from DefaultAdamConfig or
// DefaultAdamWConfig: the zero value has Beta1 = Beta2 = 0.
type AdamConfig struct {
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`
	WeightDecay float64 `json:"weight_decay"` // Adam: L2, added to the gradient; AdamW: decoupled
	AMSGrad     bool    `json:"amsgrad"`
}

// DefaultAdamConfig returns torch.optim.Adam's defaults: betas (0.9, 0.999), eps 1e-8,
// no weight decay.
func DefaultAdamConfig() AdamConfig { return AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

// DefaultAdamWConfig returns torch.optim.AdamW's defaults: as Adam with weight decay 1e-2.
func DefaultAdamWConfig() AdamConfig {
	c := DefaultAdamConfig()
	c.WeightDecay = 1e-2
	return c
}

// Adam is torch.optim.Adam or, built by NewAdamW, torch.optim.AdamW. With g the gradient
// (plus WeightDecay·p for Adam) and k the number of updates the parameter has had:
//
//	m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1ᵏ) · m / (√v/√(1−β2ᵏ) + eps)
//
// AdamW first decays the weights, p ← p·(1 − lr·WeightDecay); AMSGrad uses the running
// maximum of v in the denominator.
type Adam struct {
	cfg       AdamConfig
	decoupled bool
	step      int
	steps     map[string]int
	bufs      map[string]*tensor.Dense
	checked   bool
}

var _ Optimizer = (*Adam)(nil)

// NewAdam returns an Adam solver, or an error for betas outside [0, 1) or a negative or
// non-finite eps or weight decay.
func NewAdam(cfg AdamConfig) (*Adam, error) { return newAdam(cfg, false) }

// NewAdamW returns an AdamW solver (decoupled weight decay), or an error as NewAdam.
func NewAdamW(cfg AdamConfig) (*Adam, error) { return newAdam(cfg, true) }

func newAdam(cfg AdamConfig, decoupled bool) (*Adam, error) {
	a := &Adam{cfg: cfg, decoupled: decoupled, steps: map[string]int{}, bufs: map[string]*tensor.Dense{}, checked: true}
	if err := cfg.validate(a.kind()); err != nil {
		return nil, err
	}
	return a, nil
}

func (c AdamConfig) validate(who string) error {
	for _, b := range []struct {
		name string
		v    float64
	}{{"beta1", c.Beta1}, {"beta2", c.Beta2}} {
		if !(b.v >= 0 && b.v < 1) {
			return fmt.Errorf("%s: %s %v: want a value in [0, 1), e.g. 0.9 and 0.999", who, b.name, b.v)
		}
	}
	if c.Eps < 0 || math.IsNaN(c.Eps) || math.IsInf(c.Eps, 0) {
		return fmt.Errorf("%s: eps %v: want a finite value >= 0, e.g. 1e-8", who, c.Eps)
	}
	if c.WeightDecay < 0 || math.IsNaN(c.WeightDecay) || math.IsInf(c.WeightDecay, 0) {
		return fmt.Errorf("%s: weight decay %v: want a finite value >= 0", who, c.WeightDecay)
	}
	return nil
}

func (a *Adam) kind() string {
	if a.decoupled {
		return KindAdamW
	}
	return KindAdam
}

// Config returns the solver's hyper-parameters.
func (a *Adam) Config() AdamConfig { return a.cfg }

// Step applies one Adam (or AdamW) update with learning rate lr to every parameter that has
// a gradient. It checks all parameters before changing any.
func (a *Adam) Step(params []Param, lr float64) error {
	who := a.kind()
	if err := checkParams(who, params, lr); err != nil {
		return err
	}
	if err := checkState(who, a.bufs, params, &a.checked); err != nil {
		return err
	}
	ups := make([]update, 0, len(params))
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		a.steps[p.Name]++
		if p.Value.Dtype() == tensor.Float32 {
			ups = append(ups, adamUpdate[float32](a, p, lr))
		} else {
			ups = append(ups, adamUpdate[float64](a, p, lr))
		}
	}
	runUpdates(ups, runtime.GOMAXPROCS(0))
	a.step++
	return nil
}

// adamUpdate is torch 1.13's _single_tensor_adam (and _single_tensor_adamw) for one
// parameter: bias corrections in float64, element arithmetic in T. It creates the moment
// buffers now and returns the elementwise update, to be run by runUpdates.
func adamUpdate[T float](a *Adam, p Param, lr float64) update {
	w, g := data[T](p.Value), data[T](p.Grad)
	m, _ := buffer[T](a.bufs, p.Name+".exp_avg", p.Value, nil)
	v, _ := buffer[T](a.bufs, p.Name+".exp_avg_sq", p.Value, nil)
	var vmax []T
	if a.cfg.AMSGrad {
		vmax, _ = buffer[T](a.bufs, p.Name+".max_exp_avg_sq", p.Value, nil)
	}
	k := float64(a.steps[p.Name])
	stepSize := lr / (1 - math.Pow(a.cfg.Beta1, k))
	bc2Sqrt := T(math.Sqrt(1 - math.Pow(a.cfg.Beta2, k)))
	b1, c1 := T(a.cfg.Beta1), T(1-a.cfg.Beta1)
	b2, c2 := T(a.cfg.Beta2), T(1-a.cfg.Beta2)
	eps, negStep := T(a.cfg.Eps), T(-stepSize)
	wd := T(a.cfg.WeightDecay)
	decay := T(1 - lr*a.cfg.WeightDecay)
	return update{n: len(w), fn: func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gi := g[i]
			switch {
			case a.decoupled:
				w[i] *= decay
			case a.cfg.WeightDecay != 0:
				gi += wd * w[i]
			}
			m[i] = m[i]*b1 + c1*gi
			v[i] = v[i]*b2 + c2*gi*gi
			vi := v[i]
			if vmax != nil {
				vmax[i] = max(vmax[i], vi)
				vi = vmax[i]
			}
			denom := T(math.Sqrt(float64(vi)))/bc2Sqrt + eps
			w[i] += negStep * (m[i] / denom)
		}
	}}
}

// State returns the step counts, the configuration and copies of the moment buffers.
func (a *Adam) State() (OptimizerState, error) {
	cfg := a.cfg
	steps := make(map[string]int, len(a.steps))
	for k, v := range a.steps {
		steps[k] = v
	}
	return OptimizerState{Kind: a.kind(), Step: a.step, ParamSteps: steps, Adam: &cfg, Tensors: copyTensors(a.bufs)}, nil
}

// LoadState replaces the solver's state with st, which must come from an optimizer of the
// same kind (Adam or AdamW) and configuration. Buffers are checked against the parameters
// at the next Step.
func (a *Adam) LoadState(st OptimizerState) error {
	who := a.kind()
	if st.Kind != who {
		return fmt.Errorf("%s: cannot load %q optimizer state: build the optimizer the checkpoint was saved with", who, st.Kind)
	}
	if st.Adam == nil {
		return fmt.Errorf("%s: state has no adam configuration", who)
	}
	if *st.Adam != a.cfg {
		return fmt.Errorf("%s: state was saved with %+v but this optimizer has %+v: build it with the saved configuration (OptimizerState.Adam)", who, *st.Adam, a.cfg)
	}
	if st.Step < 0 {
		return fmt.Errorf("%s: state step %d is negative", who, st.Step)
	}
	suffixes := []string{"exp_avg", "exp_avg_sq"}
	if a.cfg.AMSGrad {
		suffixes = append(suffixes, "max_exp_avg_sq")
	}
	bufs, err := loadTensors(who, st.Tensors, suffixes...)
	if err != nil {
		return err
	}
	steps := make(map[string]int, len(st.ParamSteps))
	for name, k := range st.ParamSteps {
		if k <= 0 {
			return fmt.Errorf("%s: state step count %d for %q: want > 0", who, k, name)
		}
		for _, s := range suffixes {
			if _, ok := bufs[name+"."+s]; !ok {
				return fmt.Errorf("%s: state counts %d steps for %q but has no %q buffer", who, k, name, name+"."+s)
			}
		}
		steps[name] = k
	}
	for key := range bufs {
		if name := key[:len(key)-len(suffixOf(key, suffixes))-1]; steps[name] == 0 {
			return fmt.Errorf("%s: state has buffer %q but no step count for %q", who, key, name)
		}
	}
	a.step, a.steps, a.bufs, a.checked = st.Step, steps, bufs, false
	return nil
}

// suffixOf returns the longest of suffixes that key ends with (after a dot).
func suffixOf(key string, suffixes []string) string {
	best := ""
	for _, s := range suffixes {
		if hasBufferSuffix(key, []string{s}) && len(s) > len(best) {
			best = s
		}
	}
	return best
}

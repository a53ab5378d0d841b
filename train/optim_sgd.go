package train

import (
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"

	"gorgonia.org/tensor"
)

// SGDConfig holds torch.optim.SGD's hyper-parameters (the learning rate comes from the
// schedule at each Step). The zero value is plain SGD.
type SGDConfig struct {
	Momentum    float64 `json:"momentum"`
	Dampening   float64 `json:"dampening"`
	WeightDecay float64 `json:"weight_decay"` // L2 penalty, added to the gradient
	Nesterov    bool    `json:"nesterov"`
}

// SGD is torch.optim.SGD: with g the gradient plus WeightDecay·p, the momentum buffer
// starts as g on a parameter's first update and is then b ← Momentum·b + (1 − Dampening)·g;
// the step is g + Momentum·b with Nesterov, b otherwise (g without momentum), and
// p ← p − lr·step.
type SGD struct {
	cfg     SGDConfig
	step    int
	bufs    map[string]*tensor.Dense
	checked bool // state names checked against the parameters since the last LoadState
}

var _ Optimizer = (*SGD)(nil)

// NewSGD returns an SGD solver, or an error for negative or non-finite hyper-parameters
// and for Nesterov without momentum or with dampening (as PyTorch refuses them).
func NewSGD(cfg SGDConfig) (*SGD, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &SGD{cfg: cfg, bufs: map[string]*tensor.Dense{}, checked: true}, nil
}

func (c SGDConfig) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"momentum", c.Momentum}, {"dampening", c.Dampening}, {"weight decay", c.WeightDecay}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("sgd: %s %v: want a finite value >= 0", f.name, f.v)
		}
	}
	if c.Nesterov && (c.Momentum <= 0 || c.Dampening != 0) {
		return fmt.Errorf("sgd: nesterov needs momentum > 0 and dampening 0 (got momentum %v, dampening %v)", c.Momentum, c.Dampening)
	}
	return nil
}

// Config returns the solver's hyper-parameters.
func (s *SGD) Config() SGDConfig { return s.cfg }

// Step applies one SGD update with learning rate lr to every parameter that has a gradient.
// It checks all parameters before changing any.
func (s *SGD) Step(params []Param, lr float64) error {
	if err := checkParams("sgd", params, lr); err != nil {
		return err
	}
	if err := checkState("sgd", s.bufs, params, &s.checked); err != nil {
		return err
	}
	ups := make([]update, 0, len(params))
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		if p.Value.Dtype() == tensor.Float32 {
			ups = append(ups, sgdUpdate[float32](s, p, lr))
		} else {
			ups = append(ups, sgdUpdate[float64](s, p, lr))
		}
	}
	runUpdates(ups, runtime.GOMAXPROCS(0))
	s.step++
	return nil
}

// sgdUpdate is torch 1.13's _single_tensor_sgd for one parameter, with its scalar
// coefficients rounded to T as PyTorch's CPU kernels do. It creates the momentum buffer
// now and returns the elementwise update, to be run by runUpdates.
func sgdUpdate[T float](s *SGD, p Param, lr float64) update {
	w, g := data[T](p.Value), data[T](p.Grad)
	wd, mom, damp := T(s.cfg.WeightDecay), T(s.cfg.Momentum), T(1-s.cfg.Dampening)
	negLR := T(-lr)
	var buf []T
	fresh := false
	if s.cfg.Momentum != 0 {
		buf, fresh = buffer[T](s.bufs, p.Name+".momentum_buffer", p.Value, nil)
	}
	if buf != nil && !fresh && !s.cfg.Nesterov && s.cfg.WeightDecay != 0 {
		// The usual step (momentum, weight decay) without the branches of
		// the general loop below: the same operations in the same order.
		return update{n: len(w), fn: func(lo, hi int) {
			w, g, buf := w[lo:hi], g[lo:hi], buf[lo:hi]
			g, buf = g[:len(w)], buf[:len(w)]
			for i := range w {
				d := g[i] + wd*w[i]
				b := buf[i]*mom + damp*d
				buf[i] = b
				w[i] += negLR * b
			}
		}}
	}
	return update{n: len(w), fn: func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d := g[i]
			if s.cfg.WeightDecay != 0 {
				d += wd * w[i]
			}
			if buf != nil {
				if fresh {
					buf[i] = d
				} else {
					buf[i] = buf[i]*mom + damp*d
				}
				if s.cfg.Nesterov {
					d += mom * buf[i]
				} else {
					d = buf[i]
				}
			}
			w[i] += negLR * d
		}
	}}
}

// State returns the step count, the configuration and copies of the momentum buffers.
func (s *SGD) State() (OptimizerState, error) {
	cfg := s.cfg
	return OptimizerState{Kind: KindSGD, Step: s.step, SGD: &cfg, Tensors: copyTensors(s.bufs)}, nil
}

// LoadState replaces the solver's state with st, which must come from an SGD with the same
// configuration. Buffers are checked against the parameters at the next Step.
func (s *SGD) LoadState(st OptimizerState) error {
	if st.Kind != KindSGD {
		return fmt.Errorf("sgd: cannot load %q optimizer state: build the optimizer the checkpoint was saved with", st.Kind)
	}
	if st.SGD == nil {
		return fmt.Errorf("sgd: state has no sgd configuration")
	}
	if *st.SGD != s.cfg {
		return fmt.Errorf("sgd: state was saved with %+v but this optimizer has %+v: build it with the saved configuration (OptimizerState.SGD)", *st.SGD, s.cfg)
	}
	if st.Step < 0 {
		return fmt.Errorf("sgd: state step %d is negative", st.Step)
	}
	bufs, err := loadTensors("sgd", st.Tensors, "momentum_buffer")
	if err != nil {
		return err
	}
	s.step, s.bufs, s.checked = st.Step, bufs, false
	return nil
}

// checkState verifies, before any update, that the existing buffers fit the parameters
// and, on the first Step after LoadState (*checked false), that every buffer belongs to
// one of the parameters passed.
func checkState(who string, bufs map[string]*tensor.Dense, params []Param, checked *bool) error {
	byName := make(map[string]Param, len(params))
	for _, p := range params {
		byName[p.Name] = p
	}
	for _, k := range slices.Sorted(maps.Keys(bufs)) {
		name := k[:strings.LastIndexByte(k, '.')]
		p, ok := byName[name]
		if !ok {
			if *checked {
				continue
			}
			return fmt.Errorf("%s: state has buffer %q but no parameter %q was passed: the checkpoint belongs to another model", who, k, name)
		}
		if err := checkBuffer(who, k, bufs[k], p); err != nil {
			return err
		}
	}
	*checked = true
	return nil
}

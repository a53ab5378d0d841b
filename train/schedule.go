package train

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// Schedule gives the learning rate for a 0-based index t: an epoch when the loop steps the
// schedule once per epoch (as torchvision's reference recipes do with StepLR and
// CosineAnnealingLR), an iteration when it steps it once per batch (OneCycleLR). LR(t) is
// the rate used for the t-th epoch or iteration, the value torch's
// optimizer.param_groups[0]["lr"] holds after t calls to scheduler.step(). A negative t is
// treated as 0.
type Schedule interface {
	LR(t int) float64
}

// MetricSchedule is a schedule driven by a validation metric instead of the index:
// ReduceLROnPlateau. The loop calls Step once per evaluation and uses LR (whose argument it
// ignores) for the following updates.
type MetricSchedule interface {
	Schedule
	Step(metric float64) float64
}

// checkRate returns an error unless v is finite and >= 0.
func checkRate(who, what string, v float64) error {
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("schedule %s: %s %v: want a finite value >= 0", who, what, v)
	}
	return nil
}

type constant float64

func (c constant) LR(int) float64 { return float64(c) }

// Constant returns a schedule that always gives lr, for any index.
func Constant(lr float64) (Schedule, error) {
	if err := checkRate("constant", "lr", lr); err != nil {
		return nil, err
	}
	return constant(lr), nil
}

type stepLR struct {
	base, gamma float64
	stepSize    int
}

func (s stepLR) LR(t int) float64 {
	return s.base * math.Pow(s.gamma, float64(max(t, 0)/s.stepSize))
}

// StepLR returns torch's StepLR: base·gamma^⌊t/stepSize⌋, t usually the epoch.
func StepLR(base float64, stepSize int, gamma float64) (Schedule, error) {
	if err := checkRate("step", "lr", base); err != nil {
		return nil, err
	}
	if err := checkRate("step", "gamma", gamma); err != nil {
		return nil, err
	}
	if stepSize <= 0 {
		return nil, fmt.Errorf("schedule step: step size %d: want > 0 epochs (or steps) between decays", stepSize)
	}
	return stepLR{base: base, gamma: gamma, stepSize: stepSize}, nil
}

type multiStepLR struct {
	base, gamma float64
	milestones  []int // sorted, repeats allowed
}

func (s multiStepLR) LR(t int) float64 {
	k := sort.SearchInts(s.milestones, max(t, 0)+1) // milestones <= t, as bisect_right
	return s.base * math.Pow(s.gamma, float64(k))
}

// MultiStepLR returns torch's MultiStepLR: base·gamma^k, k the number of milestones <= t
// (t usually the epoch). A milestone listed twice decays twice, as in torch.
func MultiStepLR(base float64, milestones []int, gamma float64) (Schedule, error) {
	if err := checkRate("multistep", "lr", base); err != nil {
		return nil, err
	}
	if err := checkRate("multistep", "gamma", gamma); err != nil {
		return nil, err
	}
	if len(milestones) == 0 {
		return nil, fmt.Errorf("schedule multistep: no milestones: give the epochs at which to decay, e.g. 30,60,90")
	}
	m := slices.Clone(milestones)
	slices.Sort(m)
	if m[0] < 0 {
		return nil, fmt.Errorf("schedule multistep: milestone %d: want >= 0", m[0])
	}
	return multiStepLR{base: base, gamma: gamma, milestones: m}, nil
}

type cosineLR struct {
	base, etaMin float64
	tMax         int
}

func (s cosineLR) LR(t int) float64 {
	return s.etaMin + (s.base-s.etaMin)*(1+math.Cos(math.Pi*float64(max(t, 0))/float64(s.tMax)))/2
}

// CosineAnnealingLR returns torch's CosineAnnealingLR in its closed form,
// etaMin + (base − etaMin)·(1 + cos(π·t/tMax))/2, t usually the epoch. Past tMax the rate
// rises again (period 2·tMax), as torch's does.
//
// torch computes each value recursively from the previous one (its "chainable" form);
// that recursion equals the closed form mathematically and its rounding drifts from it
// only by about 1e-14 relative over 70 steps (see TestSchedulesMatchTorch). The closed
// form is what torch itself uses when resuming with an explicit epoch, and it keeps LR a
// pure function of t.
func CosineAnnealingLR(base float64, tMax int, etaMin float64) (Schedule, error) {
	if err := checkRate("cosine", "lr", base); err != nil {
		return nil, err
	}
	if err := checkRate("cosine", "eta_min", etaMin); err != nil {
		return nil, err
	}
	if tMax <= 0 {
		return nil, fmt.Errorf("schedule cosine: t_max %d: want > 0, usually the number of epochs", tMax)
	}
	return cosineLR{base: base, etaMin: etaMin, tMax: tMax}, nil
}

type warmup struct {
	inner       Schedule
	steps       int
	startFactor float64
}

func (w warmup) LR(t int) float64 {
	t = max(t, 0)
	if t >= w.steps {
		return w.inner.LR(t - w.steps)
	}
	return w.inner.LR(0) * (w.startFactor + (1-w.startFactor)*float64(t)/float64(w.steps))
}

// Warmup returns a linear warmup of warmupSteps indices followed by inner: for
// t < warmupSteps the rate is inner.LR(0)·(startFactor + (1 − startFactor)·t/warmupSteps),
// then inner.LR(t − warmupSteps). inner starts after the warmup, so the whole schedule is
// warmupSteps longer than inner (size cosine's tMax accordingly).
//
// This is exactly torch's SequentialLR(opt, [LinearLR(opt, start_factor=startFactor,
// total_iters=warmupSteps), inner], milestones=[warmupSteps]), with LinearLR's closed
// form; startFactor 0 is allowed here although torch's chainable LinearLR divides by zero
// with it.
func Warmup(inner Schedule, warmupSteps int, startFactor float64) (Schedule, error) {
	if inner == nil {
		return nil, fmt.Errorf("schedule warmup: no schedule to warm up: pass Constant(lr) for a plain warmup")
	}
	if _, ok := inner.(MetricSchedule); ok {
		return nil, fmt.Errorf("schedule warmup: cannot warm up a metric-driven schedule (plateau)")
	}
	if warmupSteps <= 0 {
		return nil, fmt.Errorf("schedule warmup: %d warmup steps: want > 0", warmupSteps)
	}
	if !(startFactor >= 0 && startFactor <= 1) {
		return nil, fmt.Errorf("schedule warmup: start factor %v: want a value in [0, 1]", startFactor)
	}
	return warmup{inner: inner, steps: warmupSteps, startFactor: startFactor}, nil
}

// OneCycleConfig describes torch's OneCycleLR (without momentum cycling: the solvers keep
// their configured momentum).
type OneCycleConfig struct {
	MaxLR          float64 `json:"max_lr"`
	TotalSteps     int     `json:"total_steps"`      // iterations in the cycle
	PctStart       float64 `json:"pct_start"`        // fraction of the cycle spent rising; torch default 0.3
	DivFactor      float64 `json:"div_factor"`       // initial rate = MaxLR/DivFactor; torch default 25
	FinalDivFactor float64 `json:"final_div_factor"` // final rate = initial/FinalDivFactor; torch default 1e4
	Linear         bool    `json:"linear"`           // linear annealing instead of cosine
	ThreePhase     bool    `json:"three_phase"`      // rise, fall back to initial, then anneal to final
}

// DefaultOneCycleConfig returns torch's OneCycleLR defaults for maxLR and totalSteps.
func DefaultOneCycleConfig(maxLR float64, totalSteps int) OneCycleConfig {
	return OneCycleConfig{MaxLR: maxLR, TotalSteps: totalSteps, PctStart: 0.3, DivFactor: 25, FinalDivFactor: 1e4}
}

type oneCycle struct {
	cfg    OneCycleConfig
	phases []oneCyclePhase
}

type oneCyclePhase struct {
	end, startLR, endLR float64
}

// OneCycleLR returns torch's OneCycleLR, t the iteration (0 to TotalSteps−1). Past the
// cycle the rate stays at its final value (torch raises an error instead).
func OneCycleLR(cfg OneCycleConfig) (Schedule, error) {
	for _, f := range []struct {
		name string
		v    float64
	}{{"max_lr", cfg.MaxLR}, {"div_factor", cfg.DivFactor}, {"final_div_factor", cfg.FinalDivFactor}} {
		if err := checkRate("onecycle", f.name, f.v); err != nil {
			return nil, err
		}
	}
	if cfg.DivFactor == 0 || cfg.FinalDivFactor == 0 {
		return nil, fmt.Errorf("schedule onecycle: div_factor and final_div_factor must be > 0 (torch defaults 25 and 1e4)")
	}
	if cfg.TotalSteps <= 0 {
		return nil, fmt.Errorf("schedule onecycle: total steps %d: want > 0 (epochs × batches per epoch)", cfg.TotalSteps)
	}
	if !(cfg.PctStart >= 0 && cfg.PctStart <= 1) {
		return nil, fmt.Errorf("schedule onecycle: pct_start %v: want a value in [0, 1], e.g. 0.3", cfg.PctStart)
	}
	initial := cfg.MaxLR / cfg.DivFactor
	final := initial / cfg.FinalDivFactor
	total := float64(cfg.TotalSteps)
	// The phase ends of torch's _schedule_phases, computed with its operation order.
	phases := []oneCyclePhase{{cfg.PctStart*total - 1, initial, cfg.MaxLR}, {total - 1, cfg.MaxLR, final}}
	if cfg.ThreePhase {
		phases = []oneCyclePhase{
			{cfg.PctStart*total - 1, initial, cfg.MaxLR},
			{2*cfg.PctStart*total - 2, cfg.MaxLR, initial},
			{total - 1, initial, final},
		}
	}
	start := 0.0
	for _, p := range phases {
		if p.end == start {
			return nil, fmt.Errorf("schedule onecycle: pct_start %v with %d steps gives a phase of zero length (torch divides by zero too): change pct_start or the step count", cfg.PctStart, cfg.TotalSteps)
		}
		start = p.end
	}
	return oneCycle{cfg: cfg, phases: phases}, nil
}

// LR is torch's OneCycleLR.get_lr for step t, clamped to [0, TotalSteps−1].
func (s oneCycle) LR(t int) float64 {
	step := float64(min(max(t, 0), s.cfg.TotalSteps-1))
	i, start := 0, 0.0
	for i < len(s.phases)-1 && step > s.phases[i].end {
		start = s.phases[i].end
		i++
	}
	p := s.phases[i]
	pct := (step - start) / (p.end - start)
	if s.cfg.Linear {
		return (p.endLR-p.startLR)*pct + p.startLR
	}
	return p.endLR + (p.startLR-p.endLR)/2.0*(math.Cos(math.Pi*pct)+1)
}

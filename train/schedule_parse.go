package train

import (
	"fmt"
	"slices"
	"strings"
)

// ScheduleConfig describes a schedule from configuration or command-line flags; each
// schedule reads only its own fields. Start from DefaultScheduleConfig, which holds
// torch's defaults.
type ScheduleConfig struct {
	LR float64 `json:"lr"` // the base rate; the peak rate for onecycle

	StepSize   int     `json:"step_size,omitempty"`  // step
	Gamma      float64 `json:"gamma,omitempty"`      // step, multistep
	Milestones []int   `json:"milestones,omitempty"` // multistep
	TMax       int     `json:"t_max,omitempty"`      // cosine: usually epochs (minus warmup)
	EtaMin     float64 `json:"eta_min,omitempty"`    // cosine

	// WarmupSteps > 0 prepends a linear warmup (see Warmup) to constant, step, multistep
	// and cosine.
	WarmupSteps       int     `json:"warmup_steps,omitempty"`
	WarmupStartFactor float64 `json:"warmup_start_factor,omitempty"`

	OneCycle OneCycleConfig `json:"onecycle"` // onecycle; its MaxLR is taken from LR
	Plateau  PlateauConfig  `json:"plateau"`  // plateau
}

// DefaultScheduleConfig returns torch's defaults around base rate lr: gamma 0.1, step size
// 30 (torchvision's reference recipe), warmup start factor 1/3 (LinearLR), OneCycleLR's and
// ReduceLROnPlateau's defaults. TMax, Milestones and OneCycle.TotalSteps have no default.
func DefaultScheduleConfig(lr float64) ScheduleConfig {
	return ScheduleConfig{
		LR:                lr,
		StepSize:          30,
		Gamma:             0.1,
		WarmupStartFactor: 1.0 / 3,
		OneCycle:          DefaultOneCycleConfig(lr, 0),
		Plateau:           DefaultPlateauConfig(),
	}
}

// scheduleNames lists the names ParseSchedule accepts, sorted.
var scheduleNames = []string{"constant", "cosine", "multistep", "none", "onecycle", "plateau", "step"}

// ScheduleNames returns the names ParseSchedule accepts, for flag help.
func ScheduleNames() []string { return slices.Clone(scheduleNames) }

// ParseSchedule builds the schedule called name ("none" and "constant" are the same) from
// cfg. "plateau" returns a *ReduceLROnPlateau, which the loop must Step with a metric.
func ParseSchedule(name string, cfg ScheduleConfig) (Schedule, error) {
	if cfg.WarmupSteps < 0 {
		return nil, fmt.Errorf("schedule %s: %d warmup steps: want >= 0", name, cfg.WarmupSteps)
	}
	var (
		s   Schedule
		err error
	)
	switch name {
	case "none", "constant":
		s, err = Constant(cfg.LR)
	case "step":
		s, err = StepLR(cfg.LR, cfg.StepSize, cfg.Gamma)
	case "multistep":
		s, err = MultiStepLR(cfg.LR, cfg.Milestones, cfg.Gamma)
	case "cosine":
		s, err = CosineAnnealingLR(cfg.LR, cfg.TMax, cfg.EtaMin)
	case "onecycle", "plateau":
		if cfg.WarmupSteps > 0 {
			return nil, fmt.Errorf("schedule %s: warmup is not available (onecycle has its own): set warmup steps to 0", name)
		}
		if name == "plateau" {
			p, err := NewReduceLROnPlateau(cfg.LR, cfg.Plateau)
			if err != nil {
				return nil, err // not a nil *ReduceLROnPlateau inside a non-nil Schedule
			}
			return p, nil
		}
		oc := cfg.OneCycle
		oc.MaxLR = cfg.LR
		return OneCycleLR(oc)
	default:
		return nil, fmt.Errorf("unknown schedule %q: want one of %s", name, strings.Join(scheduleNames, ", "))
	}
	if err != nil || cfg.WarmupSteps <= 0 {
		return s, err
	}
	return Warmup(s, cfg.WarmupSteps, cfg.WarmupStartFactor)
}

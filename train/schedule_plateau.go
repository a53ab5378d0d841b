package train

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// PlateauConfig holds torch's ReduceLROnPlateau settings. Start from DefaultPlateauConfig.
type PlateauConfig struct {
	Mode          string  `json:"mode"`           // "min" (a loss) or "max" (an accuracy)
	Factor        float64 `json:"factor"`         // new rate = rate·Factor, in [0, 1)
	Patience      int     `json:"patience"`       // evaluations without improvement tolerated before reducing
	Threshold     float64 `json:"threshold"`      // smallest improvement that counts
	ThresholdMode string  `json:"threshold_mode"` // "rel" (best·(1∓Threshold)) or "abs" (best∓Threshold)
	Cooldown      int     `json:"cooldown"`       // evaluations ignored after a reduction
	MinLR         float64 `json:"min_lr"`         // the rate never goes below MinLR
	Eps           float64 `json:"eps"`            // reductions smaller than Eps are skipped
}

// DefaultPlateauConfig returns torch's defaults: min mode, factor 0.1, patience 10,
// threshold 1e-4 relative, no cooldown, min_lr 0, eps 1e-8.
func DefaultPlateauConfig() PlateauConfig {
	return PlateauConfig{Mode: "min", Factor: 0.1, Patience: 10, Threshold: 1e-4, ThresholdMode: "rel", Eps: 1e-8}
}

func (c PlateauConfig) validate() error {
	if c.Mode != "min" && c.Mode != "max" {
		return fmt.Errorf("schedule plateau: mode %q: want \"min\" (for a loss) or \"max\" (for an accuracy)", c.Mode)
	}
	if c.ThresholdMode != "rel" && c.ThresholdMode != "abs" {
		return fmt.Errorf("schedule plateau: threshold mode %q: want \"rel\" or \"abs\"", c.ThresholdMode)
	}
	if !(c.Factor >= 0 && c.Factor < 1) {
		return fmt.Errorf("schedule plateau: factor %v: want a value in [0, 1), e.g. 0.1", c.Factor)
	}
	if c.Patience < 0 || c.Cooldown < 0 {
		return fmt.Errorf("schedule plateau: patience %d, cooldown %d: want >= 0", c.Patience, c.Cooldown)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"threshold", c.Threshold}, {"min_lr", c.MinLR}, {"eps", c.Eps}} {
		if err := checkRate("plateau", f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

// ReduceLROnPlateau is torch's ReduceLROnPlateau: it multiplies the rate by Factor when
// the metric passed to Step has not improved for more than Patience evaluations. It is
// the one stateful schedule: checkpoint it with State and LoadState.
type ReduceLROnPlateau struct {
	cfg PlateauConfig
	st  PlateauState
}

var _ MetricSchedule = (*ReduceLROnPlateau)(nil)

// PlateauState is ReduceLROnPlateau's state, JSON-friendly (an infinite Best, the value
// before any finite metric, is written as the string "+Inf" or "-Inf").
type PlateauState struct {
	Config          PlateauConfig `json:"config"`
	LR              float64       `json:"lr"`
	Best            float64       `json:"best"`
	NumBadEpochs    int           `json:"num_bad_epochs"`
	CooldownCounter int           `json:"cooldown_counter"`
	LastEpoch       int           `json:"last_epoch"` // number of Step calls
}

// NewReduceLROnPlateau returns the schedule starting at rate lr.
func NewReduceLROnPlateau(lr float64, cfg PlateauConfig) (*ReduceLROnPlateau, error) {
	if err := checkRate("plateau", "lr", lr); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	best := math.Inf(1)
	if cfg.Mode == "max" {
		best = math.Inf(-1)
	}
	return &ReduceLROnPlateau{cfg: cfg, st: PlateauState{Config: cfg, LR: lr, Best: best}}, nil
}

// LR returns the current rate; t is ignored (the rate changes only through Step).
func (r *ReduceLROnPlateau) LR(int) float64 { return r.st.LR }

// Step records one evaluation's metric (a NaN metric counts as no improvement) and
// returns the rate to use from now on.
func (r *ReduceLROnPlateau) Step(metric float64) float64 {
	s := &r.st
	s.LastEpoch++
	if r.better(metric) {
		s.Best = metric
		s.NumBadEpochs = 0
	} else {
		s.NumBadEpochs++
	}
	if s.CooldownCounter > 0 {
		s.CooldownCounter--
		s.NumBadEpochs = 0
	}
	if s.NumBadEpochs > r.cfg.Patience {
		if lr := max(s.LR*r.cfg.Factor, r.cfg.MinLR); s.LR-lr > r.cfg.Eps {
			s.LR = lr
		}
		s.CooldownCounter = r.cfg.Cooldown
		s.NumBadEpochs = 0
	}
	return s.LR
}

// better is torch's is_better(a, best).
func (r *ReduceLROnPlateau) better(a float64) bool {
	best, th := r.st.Best, r.cfg.Threshold
	switch {
	case r.cfg.Mode == "min" && r.cfg.ThresholdMode == "rel":
		return a < best*(1-th)
	case r.cfg.Mode == "min":
		return a < best-th
	case r.cfg.ThresholdMode == "rel":
		return a > best*(th+1)
	default:
		return a > best+th
	}
}

// State returns the schedule's state, configuration included.
func (r *ReduceLROnPlateau) State() PlateauState { return r.st }

// LoadState replaces the state; it refuses a state saved with another configuration.
func (r *ReduceLROnPlateau) LoadState(st PlateauState) error {
	if st.Config != r.cfg {
		return fmt.Errorf("schedule plateau: state was saved with %+v but this schedule has %+v: build it with the saved configuration", st.Config, r.cfg)
	}
	if err := checkRate("plateau", "lr", st.LR); err != nil {
		return err
	}
	if st.NumBadEpochs < 0 || st.CooldownCounter < 0 || st.LastEpoch < 0 || math.IsNaN(st.Best) {
		return fmt.Errorf("schedule plateau: state %+v has negative counters or a NaN best", st)
	}
	r.st = st
	return nil
}

// MarshalJSON writes an infinite Best as a string, which JSON numbers cannot hold.
func (s PlateauState) MarshalJSON() ([]byte, error) {
	type plain PlateauState
	var best any = s.Best
	if math.IsInf(s.Best, 0) || math.IsNaN(s.Best) {
		best = strconv.FormatFloat(s.Best, 'g', -1, 64)
	}
	return json.Marshal(struct {
		plain
		Best any `json:"best"`
	}{plain(s), best})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *PlateauState) UnmarshalJSON(b []byte) error {
	type plain PlateauState
	aux := struct {
		*plain
		Best json.RawMessage `json:"best"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	var str string
	if err := json.Unmarshal(aux.Best, &str); err == nil {
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return fmt.Errorf("schedule plateau: best %q: %w", str, err)
		}
		s.Best = v
		return nil
	}
	return json.Unmarshal(aux.Best, &s.Best)
}

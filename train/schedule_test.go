package train

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// scheduleFixture is testdata/schedules.json, written by testdata/gen/optim.py: for each
// case the rates torch's optimizer held before each step (pure schedules), or after each
// ReduceLROnPlateau.step(metric[i]).
type scheduleFixture struct {
	Cases []struct {
		Name   string    `json:"name"`
		LR     []float64 `json:"lr"`
		Metric []float64 `json:"metric"`
	} `json:"cases"`
}

// torchSchedules builds the Go schedule for each pure fixture case, with the settings
// testdata/gen/optim.py gives torch (base rate 0.1).
var torchSchedules = map[string]func() (Schedule, error){
	"step":      func() (Schedule, error) { return StepLR(0.1, 7, 0.3) },
	"multistep": func() (Schedule, error) { return MultiStepLR(0.1, []int{30, 5, 12, 12}, 0.5) },
	"cosine":    func() (Schedule, error) { return CosineAnnealingLR(0.1, 30, 0) },
	"cosine_eta_min_past_tmax": func() (Schedule, error) {
		return CosineAnnealingLR(0.1, 20, 1e-3)
	},
	"warmup_cosine": func() (Schedule, error) {
		return ParseSchedule("cosine", ScheduleConfig{LR: 0.1, TMax: 25, EtaMin: 1e-4, WarmupSteps: 5, WarmupStartFactor: 0.1})
	},
	"warmup_step": func() (Schedule, error) {
		inner, err := StepLR(0.1, 5, 0.5)
		if err != nil {
			return nil, err
		}
		return Warmup(inner, 4, 0.25)
	},
	"onecycle_cos": func() (Schedule, error) { return OneCycleLR(DefaultOneCycleConfig(0.1, 50)) },
	"onecycle_linear": func() (Schedule, error) {
		return OneCycleLR(OneCycleConfig{MaxLR: 0.4, TotalSteps: 40, PctStart: 0.25, DivFactor: 10, FinalDivFactor: 100, Linear: true})
	},
	"onecycle_three_phase": func() (Schedule, error) {
		cfg := DefaultOneCycleConfig(0.1, 60)
		cfg.ThreePhase = true
		return OneCycleLR(cfg)
	},
}

// torchPlateaus holds the ReduceLROnPlateau settings of the fixture's plateau cases.
var torchPlateaus = map[string]PlateauConfig{
	"plateau_min_rel_cooldown": {Mode: "min", Factor: 0.5, Patience: 2, Threshold: 0.01, ThresholdMode: "rel", Cooldown: 2, MinLR: 1e-3, Eps: 1e-8},
	"plateau_min_abs":          {Mode: "min", Factor: 0.1, Patience: 1, Threshold: 0.02, ThresholdMode: "abs", Eps: 1e-8},
	"plateau_max_rel":          {Mode: "max", Factor: 0.3, Patience: 1, Threshold: 0.05, ThresholdMode: "rel", Cooldown: 1, Eps: 1e-8},
	"plateau_max_abs_eps":      {Mode: "max", Factor: 0.5, Patience: 0, Threshold: 0, ThresholdMode: "abs", MinLR: 0.01, Eps: 0.03},
}

// sameRate compares within 1e-12 relative; an exact 0 (cosine at tMax) must be 0 up to
// 1e-18, far below any rate that matters.
func sameRate(got, want float64) bool {
	return math.Abs(got-want) <= 1e-12*math.Abs(want) || math.Abs(got-want) <= 1e-18
}

func TestSchedulesMatchTorch(t *testing.T) {
	f := loadFixture[scheduleFixture](t, "schedules.json")
	covered := 0
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			if cfg, ok := torchPlateaus[c.Name]; ok {
				covered++
				p, err := NewReduceLROnPlateau(0.1, cfg)
				if err != nil {
					t.Fatal(err)
				}
				for i, m := range c.Metric {
					if got := p.Step(m); !sameRate(got, c.LR[i]) || p.LR(i) != got {
						t.Errorf("after Step(%v) #%d: LR %.17g (LR() %.17g), want %.17g (torch)", m, i, got, p.LR(i), c.LR[i])
					}
				}
				return
			}
			build, ok := torchSchedules[c.Name]
			if !ok {
				t.Fatalf("fixture case %q has no Go schedule: add it to torchSchedules", c.Name)
			}
			covered++
			s, err := build()
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i, want := range c.LR {
				got := s.LR(i)
				if !sameRate(got, want) {
					t.Errorf("LR(%d) = %.17g, want %.17g (torch)", i, got, want)
				}
				if want != 0 {
					worst = max(worst, math.Abs(got-want)/want)
				}
			}
			t.Logf("max relative difference from torch: %.3g", worst)
		})
	}
	if want := len(torchSchedules) + len(torchPlateaus); covered != want {
		t.Errorf("fixture covered %d Go schedules, want %d: regenerate testdata/schedules.json", covered, want)
	}
}

func TestScheduleClamps(t *testing.T) {
	oc, err := OneCycleLR(DefaultOneCycleConfig(0.1, 50))
	if err != nil {
		t.Fatal(err)
	}
	step, err := StepLR(0.1, 10, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    Schedule
		t    int
		want float64
	}{
		{"onecycle past the cycle keeps the final rate", oc, 500, oc.LR(49)},
		{"onecycle negative index is the start", oc, -3, 0.1 / 25},
		{"step negative index is the start", step, -1, 0.1},
	} {
		if got := tc.s.LR(tc.t); !sameRate(got, tc.want) {
			t.Errorf("%s: LR(%d) = %v, want %v", tc.name, tc.t, got, tc.want)
		}
	}
	if got, want := oc.LR(49), 0.1/25/1e4; !sameRate(got, want) {
		t.Errorf("onecycle final rate %v, want max_lr/div/final_div = %v", got, want)
	}
}

func TestWarmupFromZero(t *testing.T) {
	inner, err := Constant(0.4)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Warmup(inner, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{0, 0.1, 0.2, 0.3, 0.4, 0.4} {
		if got := s.LR(i); math.Abs(got-want) > 1e-15 {
			t.Errorf("LR(%d) = %v, want %v", i, got, want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	def := DefaultScheduleConfig(0.1)
	with := func(edit func(*ScheduleConfig)) ScheduleConfig {
		c := def
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     ScheduleConfig
		want    []float64 // LR(0), LR(1), … when no error
		wantErr string
	}{
		{"none", def, []float64{0.1, 0.1}, ""},
		{"constant", with(func(c *ScheduleConfig) { c.WarmupSteps = 2; c.WarmupStartFactor = 0.5 }), []float64{0.05, 0.075, 0.1}, ""},
		{"step", with(func(c *ScheduleConfig) { c.StepSize = 1 }), []float64{0.1, 0.1 * 0.1}, ""},
		{"multistep", with(func(c *ScheduleConfig) { c.Milestones = []int{1, 2} }), []float64{0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1}, ""},
		{"cosine", with(func(c *ScheduleConfig) { c.TMax = 2 }), []float64{0.1, 0.05, 0}, ""},
		{"onecycle", with(func(c *ScheduleConfig) { c.OneCycle.TotalSteps = 10 }), []float64{0.1 / 25}, ""},
		{"plateau", def, []float64{0.1}, ""},
		{"cosine", def, nil, "t_max 0: want > 0"},
		{"multistep", def, nil, "no milestones"},
		{"onecycle", def, nil, "total steps 0"},
		{"onecycle", with(func(c *ScheduleConfig) { c.OneCycle.TotalSteps = 10; c.WarmupSteps = 3 }), nil, "warmup is not available"},
		{"step", with(func(c *ScheduleConfig) { c.WarmupSteps = -1 }), nil, "-1 warmup steps"},
		{"step", with(func(c *ScheduleConfig) { c.LR = -1 }), nil, "lr -1"},
		{"step", with(func(c *ScheduleConfig) { c.WarmupSteps = 2; c.WarmupStartFactor = 2 }), nil, "start factor 2"},
		{"plateau", with(func(c *ScheduleConfig) { c.Plateau.Mode = "up" }), nil, `mode "up"`},
		{"plateau", with(func(c *ScheduleConfig) { c.Plateau.Factor = 1 }), nil, "factor 1"},
		{"cosine-restarts", def, nil, `unknown schedule "cosine-restarts": want one of constant, cosine, multistep, none, onecycle, plateau, step`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchedule(tc.name, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || s != nil {
					t.Fatalf("got (%v, %v), want nil and an error containing %q", s, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				if got := s.LR(i); math.Abs(got-want) > 1e-15 {
					t.Errorf("LR(%d) = %v, want %v", i, got, want)
				}
			}
		})
	}
	if _, ok := func() Schedule { s, _ := ParseSchedule("plateau", def); return s }().(MetricSchedule); !ok {
		t.Errorf("plateau schedule is not a MetricSchedule")
	}
}

func TestOneCycleZeroLengthPhase(t *testing.T) {
	cfg := DefaultOneCycleConfig(0.1, 10)
	cfg.PctStart = 0.1 // the rising phase ends at step 0.1·10 − 1 = 0
	if _, err := OneCycleLR(cfg); err == nil || !strings.Contains(err.Error(), "zero length") {
		t.Errorf("got error %v, want a zero-length phase error", err)
	}
}

// TestPlateauResume checks that a plateau schedule saved mid-run, through JSON, continues
// exactly, including the infinite best value before the first finite metric.
func TestPlateauResume(t *testing.T) {
	cfg := PlateauConfig{Mode: "max", Factor: 0.5, Patience: 1, Threshold: 0.01, ThresholdMode: "rel", Cooldown: 1, Eps: 1e-8}
	metrics := []float64{math.NaN(), 0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6}
	for cut := 0; cut < len(metrics); cut++ {
		straight, err := NewReduceLROnPlateau(1, cfg)
		if err != nil {
			t.Fatal(err)
		}
		resumed, _ := NewReduceLROnPlateau(1, cfg)
		for i, m := range metrics {
			if i == cut {
				raw, err := json.Marshal(resumed.State())
				if err != nil {
					t.Fatalf("cut %d: marshal: %v", cut, err)
				}
				var st PlateauState
				if err := json.Unmarshal(raw, &st); err != nil {
					t.Fatalf("cut %d: unmarshal %s: %v", cut, raw, err)
				}
				resumed, _ = NewReduceLROnPlateau(1, cfg)
				if err := resumed.LoadState(st); err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
			}
			if a, b := straight.Step(m), resumed.Step(m); a != b {
				t.Fatalf("cut %d, step %d: resumed LR %v, want %v", cut, i, b, a)
			}
		}
		if a, b := straight.State(), resumed.State(); a != b {
			t.Errorf("cut %d: resumed state %+v, want %+v", cut, b, a)
		}
	}
	other, _ := NewReduceLROnPlateau(1, DefaultPlateauConfig())
	p, _ := NewReduceLROnPlateau(1, cfg)
	if err := other.LoadState(p.State()); err == nil || !strings.Contains(err.Error(), "saved with") {
		t.Errorf("loading a state saved with another configuration: got %v, want an error", err)
	}
}

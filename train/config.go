package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Config is a training run's configuration, with the field names PyTorch
// recipes use. A JSON file may set any of them; an unknown key is an error.
// The effective configuration is printed when a run starts and saved in
// every checkpoint, and a resumed run rebuilds everything from it.
type Config struct {
	Model          string     `json:"model"`      // vgg11 … vgg19_bn
	BatchNorm      bool       `json:"batch_norm"` // with the model's base name: vgg16 + batch_norm = vgg16_bn
	Width          float64    `json:"width"`      // channel multiplier
	NumClasses     int        `json:"num_classes"`
	ClassNames     []string   `json:"class_names,omitempty"` // filled from the data when training starts
	DropoutRate    float64    `json:"dropout_rate"`          // imagenet head only
	Head           string     `json:"head"`                  // cifar or imagenet
	Dataset        string     `json:"dataset"`               // cifar10 or cifar100
	Data           string     `json:"data"`                  // folder, tarball, "sample", or "" (the cache)
	Download       bool       `json:"download"`
	SkipChecksum   bool       `json:"skip_checksum"` // custom data in the official layout
	Epochs         int        `json:"epochs"`
	BatchSize      int        `json:"batch_size"`
	LearningRate   float64    `json:"learning_rate"`
	Optimizer      string     `json:"optimizer"` // sgd, adam, adamw
	Momentum       float64    `json:"momentum"`
	Nesterov       bool       `json:"nesterov"`
	WeightDecay    float64    `json:"weight_decay"`
	Betas          [2]float64 `json:"betas"`     // adam, adamw
	Schedule       string     `json:"schedule"`  // none, step, multistep, cosine, onecycle, plateau
	StepSize       int        `json:"step_size"` // step: epochs
	Gamma          float64    `json:"gamma"`
	Milestones     []int      `json:"milestones"`    // multistep: epochs
	WarmupEpochs   int        `json:"warmup_epochs"` // linear warmup before step, multistep or cosine
	LabelSmoothing float64    `json:"label_smoothing"`
	GradAccum      int        `json:"grad_accum_steps"`
	Augment        bool       `json:"augment"` // random crop with padding 4 and horizontal flip
	// Mean and Std normalise each input channel: (pixel/255 − mean) / std.
	Mean     [3]float32 `json:"normalize_mean"`
	Std      [3]float32 `json:"normalize_std"`
	Freeze   []string   `json:"freeze"` // parameter names or prefixes that do not train
	Seed     uint64     `json:"seed"`
	SaveDir  string     `json:"save_dir"`
	KeepLast int        `json:"keep_last"`
	Workers  int        `json:"workers"` // goroutines preparing batches
}

// DefaultConfig returns the default recipe for a model: SGD with momentum
// 0.9 and weight decay 5e-4, batch 64, 30 epochs of cosine annealing, with
// the learning rate torchvision's reference recipe uses: 0.1 with batch
// norm, 0.01 without (plain VGG does not train at 0.1).
func DefaultConfig(model string, bn bool) Config {
	lr := 0.01
	if bn || strings.HasSuffix(model, "_bn") {
		lr = 0.1
	}
	return Config{
		Model: model, BatchNorm: bn, Width: 1, NumClasses: 10, DropoutRate: 0.5, Head: "cifar",
		Dataset: "cifar10", Data: "", Epochs: 30, BatchSize: 64, LearningRate: lr,
		Optimizer: "sgd", Momentum: 0.9, WeightDecay: 5e-4, Betas: [2]float64{0.9, 0.999},
		Schedule: "cosine", StepSize: 30, Gamma: 0.1, GradAccum: 1, Augment: true,
		Mean: [3]float32{0.4914, 0.4822, 0.4465}, Std: [3]float32{0.2470, 0.2435, 0.2616},
		Seed: 1, SaveDir: "runs/" + model, KeepLast: 3, Workers: 2,
	}
}

// ReadConfig reads a JSON configuration over base: keys present in the file
// replace base's values; an unknown key is an error naming it.
func ReadConfig(path string, base Config) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return base, fmt.Errorf("train: config: %w", err)
	}
	return ParseConfig(bytes.NewReader(b), base)
}

// ParseConfig is ReadConfig on a reader.
func ParseConfig(r io.Reader, base Config) (Config, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	cfg := base
	if err := dec.Decode(&cfg); err != nil {
		return base, fmt.Errorf("train: config: %w (the valid keys are %s)", err, strings.Join(configKeys(), ", "))
	}
	if dec.More() {
		return base, fmt.Errorf("train: config: more than one JSON object")
	}
	return cfg, nil
}

func configKeys() []string {
	b, _ := json.Marshal(Config{})
	var m map[string]any
	json.Unmarshal(b, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Validate reports the first setting that cannot work, saying which.
func (c Config) Validate() error {
	switch {
	case c.Model == "":
		return fmt.Errorf("train: config: no model")
	case c.Epochs < 1:
		return fmt.Errorf("train: config: epochs %d: want at least 1", c.Epochs)
	case c.BatchSize < 2:
		return fmt.Errorf("train: config: batch_size %d: want at least 2", c.BatchSize)
	case c.LearningRate <= 0:
		return fmt.Errorf("train: config: learning_rate %g: want > 0", c.LearningRate)
	case c.Width <= 0:
		return fmt.Errorf("train: config: width %g: want > 0", c.Width)
	case c.NumClasses < 1:
		return fmt.Errorf("train: config: num_classes %d: want at least 1", c.NumClasses)
	case c.Std[0] <= 0 || c.Std[1] <= 0 || c.Std[2] <= 0:
		return fmt.Errorf("train: config: normalize_std %v: want three positive values", c.Std)
	case c.GradAccum < 1:
		return fmt.Errorf("train: config: grad_accum_steps %d: want at least 1", c.GradAccum)
	case c.LabelSmoothing < 0 || c.LabelSmoothing > 1:
		return fmt.Errorf("train: config: label_smoothing %g: want 0..1", c.LabelSmoothing)
	case !slices.Contains([]string{"sgd", "adam", "adamw"}, c.Optimizer):
		return fmt.Errorf("train: config: optimizer %q: want sgd, adam or adamw", c.Optimizer)
	case !slices.Contains(ScheduleNames(), c.Schedule):
		return fmt.Errorf("train: config: schedule %q: want one of %s", c.Schedule, strings.Join(ScheduleNames(), ", "))
	}
	return nil
}

// NewOptimizer builds the configured solver.
func (c Config) NewOptimizer() (Optimizer, error) {
	switch c.Optimizer {
	case "sgd":
		return NewSGD(SGDConfig{Momentum: c.Momentum, WeightDecay: c.WeightDecay, Nesterov: c.Nesterov})
	case "adam", "adamw":
		a := DefaultAdamConfig()
		a.Beta1, a.Beta2, a.WeightDecay = c.Betas[0], c.Betas[1], c.WeightDecay
		if c.Optimizer == "adam" {
			return NewAdam(a)
		}
		return NewAdamW(a)
	}
	return nil, fmt.Errorf("train: optimizer %q: want sgd, adam or adamw", c.Optimizer)
}

// NewSchedule builds the configured schedule for stepsPerEpoch optimizer
// steps per epoch; perStep says whether it is indexed by step (onecycle) or
// by epoch.
func (c Config) NewSchedule(stepsPerEpoch int) (s Schedule, perStep bool, err error) {
	sc := DefaultScheduleConfig(c.LearningRate)
	sc.StepSize, sc.Gamma, sc.Milestones = c.StepSize, c.Gamma, c.Milestones
	sc.WarmupSteps = c.WarmupEpochs
	sc.TMax = max(1, c.Epochs-c.WarmupEpochs)
	if c.Schedule == "onecycle" {
		sc.OneCycle.TotalSteps = c.Epochs * stepsPerEpoch
		perStep = true
	}
	s, err = ParseSchedule(c.Schedule, sc)
	return s, perStep, err
}

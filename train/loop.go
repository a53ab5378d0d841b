package train

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/gozoo/gozoo/safetensors"
	"gorgonia.org/tensor"
)

// Batch is one mini-batch: Images is (N, C, H, W) row-major, normalised;
// Labels holds N class indices.
type Batch struct {
	Images []float32
	Labels []int
}

// Data is a source of batches. The batches of an epoch must be a pure
// function of the epoch (seeded shuffling and augmentation), so that a
// resumed run sees exactly the batches an uninterrupted one would.
type Data interface {
	NumBatches() int
	Epoch(ctx context.Context, epoch int) iter.Seq2[Batch, error]
}

// Output is what a forward pass returns: the mean loss over the batch and the
// logits, (N, classes) row-major.
type Output struct {
	Loss   float64
	Logits []float32
}

// Net is the model side of the loop.
type Net interface {
	// Forward runs a batch of any size. With training set it uses training
	// behaviour (batch statistics, dropout) and computes the gradients of
	// the mean loss, which Params then returns.
	Forward(images []float32, labels []int, training bool) (Output, error)
	// Params returns the trainable parameters with the gradients of the
	// last training Forward.
	Params() []Param
	// Classes is the number of outputs.
	Classes() int
	// State returns every tensor needed to continue (weights and buffers,
	// torchvision's names) and a description of the model for the file's
	// metadata; LoadState restores it all or nothing.
	State() (map[string]safetensors.Tensor, map[string]string)
	LoadState(map[string]safetensors.Tensor) error
	// RandState and SetRandState save and restore the net's random stream
	// (dropout).
	RandState() ([]byte, error)
	SetRandState([]byte) error
}

// Progress is where a training run stands; a checkpoint saves it, and a
// resumed run starts from it.
type Progress struct {
	Epoch        int     `json:"epoch"`          // epochs completed
	BatchInEpoch int     `json:"batch_in_epoch"` // batches done in the current epoch
	Step         int     `json:"step"`           // optimizer steps taken
	Best         float64 `json:"best_top1"`      // best test top-1 so far
	BestEpoch    int     `json:"best_epoch"`
	// Partial holds the running training metrics of an unfinished epoch.
	Partial Running `json:"partial"`
}

// Running accumulates training metrics over an epoch.
type Running struct {
	Images  int     `json:"images"`
	LossSum float64 `json:"loss_sum"` // Σ batch mean loss × batch size
	Top1    int     `json:"top1"`
	Top5    int     `json:"top5"`
	Seconds float64 `json:"seconds"`
}

func (r *Running) add(out Output, labels []int, classes int) {
	n := len(labels)
	r.Images += n
	r.LossSum += out.Loss * float64(n)
	t1, t5 := topK(out.Logits, labels, classes)
	r.Top1 += t1
	r.Top5 += t5
}

// StepInfo describes one optimizer step to the hooks.
type StepInfo struct {
	Epoch, Batch, NumBatches int // 0-based epoch, 1-based batch within it
	Step                     int // optimizer steps taken, this one included
	Loss                     float64
	LR                       float64
	Images                   int
	Duration                 time.Duration
	Run                      *Running // the epoch so far
	// Inputs is the batch just trained on; its slices may be reused after
	// the hook returns: copy what you keep.
	Inputs Batch
}

// EpochInfo describes a finished epoch to the hooks.
type EpochInfo struct {
	Epoch                      int // 0-based
	LR                         float64
	TrainLoss, TrainTop1, Top5 float64
	Test                       *Eval // nil without test data
	ImagesPerSec               float64
	Duration                   time.Duration
	Best                       bool // the best test top-1 so far
}

// StepHook is called after every optimizer step.
type StepHook interface {
	AfterStep(*Trainer, StepInfo) error
}

// EpochHook is called after every epoch (and its evaluation).
type EpochHook interface {
	AfterEpoch(*Trainer, EpochInfo) error
}

// Trainer runs the loop: Net learns from Train with Opt at the rates of
// Sched, is evaluated on Test after every epoch, and tells its Hooks.
type Trainer struct {
	Net   Net
	Opt   Optimizer
	Sched Schedule
	// PerStep: Sched is indexed by optimizer step (onecycle) rather than by
	// epoch (step, multistep, cosine, and their warmup).
	PerStep     bool
	Train, Test Data
	Epochs      int
	// Accumulate sums the gradients of this many batches (each scaled by
	// 1/Accumulate) before one optimizer step; 0 and 1 mean every batch.
	Accumulate int
	Hooks      []any // StepHook and/or EpochHook
	Progress   Progress

	acc []Param // accumulation buffers
}

// ErrInterrupted is returned by Run when its context is cancelled; the
// Progress then says where to resume.
var ErrInterrupted = errors.New("train: interrupted")

// LR returns the learning rate for the current progress.
func (t *Trainer) LR() float64 {
	if t.PerStep {
		return t.Sched.LR(t.Progress.Step)
	}
	return t.Sched.LR(t.Progress.Epoch)
}

// Run trains from t.Progress until t.Epochs epochs are done or ctx is
// cancelled (ErrInterrupted, between two steps). A loss that becomes NaN or
// infinite stops it with an error.
func (t *Trainer) Run(ctx context.Context) error {
	if t.Accumulate < 1 {
		t.Accumulate = 1
	}
	for t.Progress.Epoch < t.Epochs {
		if err := t.epoch(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (t *Trainer) epoch(ctx context.Context) error {
	p := &t.Progress
	epoch, skip := p.Epoch, p.BatchInEpoch
	nb := t.Train.NumBatches()
	start := time.Now()
	seconds0 := p.Partial.Seconds
	micro := 0 // batches accumulated since the last optimizer step
	b := 0
	for batch, err := range t.Train.Epoch(ctx, epoch) {
		if err != nil {
			if ctx.Err() != nil {
				return ErrInterrupted
			}
			return fmt.Errorf("train: epoch %d: %w", epoch+1, err)
		}
		b++
		if b <= skip {
			continue
		}
		t0 := time.Now()
		lr := t.LR()
		out, err := t.Net.Forward(batch.Images, batch.Labels, true)
		if err != nil {
			return fmt.Errorf("train: epoch %d batch %d: %w", epoch+1, b, err)
		}
		if math.IsNaN(out.Loss) || math.IsInf(out.Loss, 0) {
			return fmt.Errorf("train: the loss became %v at epoch %d, batch %d (learning rate %g): lower the learning rate (--lr), or check the data; training stopped", out.Loss, epoch+1, b, lr)
		}
		params := t.Net.Params()
		stepNow := true
		if t.Accumulate > 1 {
			if err := t.accumulate(params, micro == 0); err != nil {
				return err
			}
			micro++
			stepNow = micro == t.Accumulate || b == nb
			params = t.acc
		}
		if stepNow {
			if t.Accumulate > 1 && micro != t.Accumulate {
				rescale(t.acc, float64(t.Accumulate)/float64(micro)) // a short final group
			}
			if err := t.Opt.Step(params, lr); err != nil {
				return fmt.Errorf("train: optimizer step %d: %w", p.Step+1, err)
			}
			p.Step++
			micro = 0
		}
		p.Partial.add(out, batch.Labels, t.Net.Classes())
		p.Partial.Seconds = seconds0 + time.Since(start).Seconds()
		p.BatchInEpoch = b
		info := StepInfo{Epoch: epoch, Batch: b, NumBatches: nb, Step: p.Step, Loss: out.Loss, LR: lr, Images: len(batch.Labels), Duration: time.Since(t0), Run: &p.Partial, Inputs: batch}
		for _, h := range t.Hooks {
			if sh, ok := h.(StepHook); ok {
				if err := sh.AfterStep(t, info); err != nil {
					return err
				}
			}
		}
		if ctx.Err() != nil && b < nb {
			return ErrInterrupted
		}
	}
	if ctx.Err() != nil && p.BatchInEpoch < nb {
		return ErrInterrupted
	}
	run := p.Partial
	info := EpochInfo{Epoch: epoch, LR: t.LR(), Duration: time.Duration(run.Seconds * float64(time.Second))}
	if run.Images > 0 {
		info.TrainLoss = run.LossSum / float64(run.Images)
		info.TrainTop1 = float64(run.Top1) / float64(run.Images)
		info.Top5 = float64(run.Top5) / float64(run.Images)
		info.ImagesPerSec = float64(run.Images) / run.Seconds
	}
	if t.Test != nil {
		ev, err := Evaluate(context.WithoutCancel(ctx), t.Net, t.Test)
		if err != nil {
			return err
		}
		info.Test = ev
		if ev.Top1 > p.Best || p.BestEpoch == 0 {
			p.Best, p.BestEpoch, info.Best = ev.Top1, epoch+1, true
		}
		if pl, ok := t.Sched.(MetricSchedule); ok {
			pl.Step(ev.Loss)
		}
	}
	p.Epoch, p.BatchInEpoch, p.Partial = epoch+1, 0, Running{}
	for _, h := range t.Hooks {
		if eh, ok := h.(EpochHook); ok {
			if err := eh.AfterEpoch(t, info); err != nil {
				return err
			}
		}
	}
	return nil
}

// accumulate adds params' gradients, scaled by 1/Accumulate, into t.acc
// (overwriting when first).
func (t *Trainer) accumulate(params []Param, first bool) error {
	if len(t.acc) != len(params) {
		t.acc = make([]Param, len(params))
		for i, p := range params {
			t.acc[i] = Param{Name: p.Name, Value: p.Value, Grad: tensor.New(tensor.Of(p.Grad.Dtype()), tensor.WithShape(p.Grad.Shape()...))}
		}
	}
	k := 1 / float64(t.Accumulate)
	for i, p := range params {
		switch g := p.Grad.Data().(type) {
		case []float32:
			a := t.acc[i].Grad.Data().([]float32)
			for j, v := range g {
				if first {
					a[j] = float32(k) * v
				} else {
					a[j] += float32(k) * v
				}
			}
		case []float64:
			a := t.acc[i].Grad.Data().([]float64)
			for j, v := range g {
				if first {
					a[j] = k * v
				} else {
					a[j] += k * v
				}
			}
		default:
			return fmt.Errorf("train: gradient of %s has dtype %v", p.Name, p.Grad.Dtype())
		}
	}
	return nil
}

func rescale(ps []Param, f float64) {
	for _, p := range ps {
		switch g := p.Grad.Data().(type) {
		case []float32:
			for j := range g {
				g[j] *= float32(f)
			}
		case []float64:
			for j := range g {
				g[j] *= f
			}
		}
	}
}

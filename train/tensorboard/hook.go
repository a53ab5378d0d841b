package tensorboard

import (
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/gozoo/gozoo/train"
)

// Hook logs a training run to W as a StepHook and EpochHook of
// train.Trainer.
//
// After every optimizer step (x axis: the step): train/loss_step (the loss
// of the batch that completed the step) and lr.
// After every epoch (x axis: the 1-based epoch): train/loss,
// train/accuracy, test/loss, test/accuracy (accuracies are top-1
// fractions), epoch/lr, perf/images_per_sec, perf/epoch_seconds, the
// Monitor's figures (perf/cpu_percent, perf/rss_mib, perf/heap_inuse_mib,
// perf/gc_pause_ms), and a histogram of every parameter tensor
// (weights/<name>). Once per epoch, at its first step, a grid of that
// step's training images, de-normalized, as the image train/batch.
// The file is flushed after every epoch.
type Hook struct {
	W         *Writer
	Mean, Std [3]float32 // the normalization of the batches, undone for the grid
	// ImageShape is (C, H, W) of an image of a batch; zero: three channels
	// and a square image, inferred from the batch.
	ImageShape [3]int
	GridImages int // images in the grid: 0 means 64, <0 none
	Bins       int // buckets of each histogram: 0 means 30
	// Monitor, when set, supplies the per-epoch resource figures (the
	// MetricsLog's Monitor, so that both report the same interval).
	Monitor *train.Monitor

	gridEpoch int   // 1 + the last epoch whose grid was written
	lastStep  int64 // the last step logged
}

var (
	_ train.StepHook  = (*Hook)(nil)
	_ train.EpochHook = (*Hook)(nil)
)

// AfterStep logs the step's loss and learning rate, and the epoch's image
// grid at its first step.
func (h *Hook) AfterStep(t *train.Trainer, s train.StepInfo) error {
	step := int64(s.Step)
	if step != h.lastStep { // with gradient accumulation, several batches make one step
		h.lastStep = step
		if err := h.W.Scalar("train/loss_step", step, s.Loss); err != nil {
			return err
		}
		if err := h.W.Scalar("lr", step, s.LR); err != nil {
			return err
		}
	}
	if h.GridImages < 0 || h.gridEpoch > s.Epoch {
		return nil
	}
	h.gridEpoch = s.Epoch + 1
	n := h.GridImages
	if n == 0 {
		n = 64
	}
	img, err := h.Grid(s.Inputs, n)
	if err != nil {
		return err
	}
	return h.W.Image("train/batch", step, img)
}

type scalar struct {
	tag string
	v   float64
}

// AfterEpoch logs the epoch's metrics and parameter histograms, then
// flushes the file.
func (h *Hook) AfterEpoch(t *train.Trainer, e train.EpochInfo) error {
	x := int64(e.Epoch + 1)
	scalars := []scalar{
		{"train/loss", e.TrainLoss}, {"train/accuracy", e.TrainTop1}, {"epoch/lr", e.LR},
		{"perf/images_per_sec", e.ImagesPerSec}, {"perf/epoch_seconds", e.Duration.Seconds()},
	}
	if e.Test != nil {
		scalars = append(scalars, scalar{"test/loss", e.Test.Loss}, scalar{"test/accuracy", e.Test.Top1})
	}
	if h.Monitor != nil {
		r := h.Monitor.Epoch(e.Epoch)
		const mib = 1 << 20
		scalars = append(scalars, scalar{"perf/heap_inuse_mib", float64(r.HeapInuse) / mib}, scalar{"perf/gc_pause_ms", float64(r.GCPause) / 1e6})
		if r.Proc {
			scalars = append(scalars, scalar{"perf/cpu_percent", r.CPUPercent}, scalar{"perf/rss_mib", float64(r.RSS) / mib})
		}
	}
	for _, s := range scalars {
		if err := h.W.Scalar(s.tag, x, s.v); err != nil {
			return err
		}
	}
	bins := h.Bins
	if bins == 0 {
		bins = 30
	}
	for _, p := range t.Net.Params() {
		var hist Histogram
		var err error
		switch v := p.Value.Data().(type) {
		case []float32:
			hist, err = NewHistogram(v, bins)
		case []float64:
			hist, err = NewHistogram(v, bins)
		default:
			return fmt.Errorf("tensorboard: parameter %s has dtype %v, want float32 or float64: histograms take no other", p.Name, p.Value.Dtype())
		}
		if err != nil {
			continue // all NaN: the loop stops on a NaN loss anyway
		}
		if err := h.W.Histogram("weights/"+p.Name, x, hist); err != nil {
			return err
		}
	}
	return h.W.Flush()
}

// Grid lays out the first n images of b (at most), de-normalized with
// h.Mean and h.Std, in a square grid with 2-pixel black gaps.
func (h *Hook) Grid(b train.Batch, n int) (*image.RGBA, error) {
	if len(b.Labels) == 0 {
		return nil, fmt.Errorf("tensorboard: image grid of an empty batch")
	}
	per := len(b.Images) / len(b.Labels)
	c, ht, wd := h.ImageShape[0], h.ImageShape[1], h.ImageShape[2]
	if c == 0 {
		c = 3
		ht = int(math.Round(math.Sqrt(float64(per) / 3)))
		wd = ht
	}
	if c != 1 && c != 3 || c*ht*wd != per || per*len(b.Labels) != len(b.Images) {
		return nil, fmt.Errorf("tensorboard: image grid: %d values for %d images do not make (C, H, W) = (%d, %d, %d) images with 1 or 3 channels: set Hook.ImageShape", len(b.Images), len(b.Labels), c, ht, wd)
	}
	n = min(n, len(b.Labels))
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	const gap = 2
	img := image.NewRGBA(image.Rect(0, 0, cols*(wd+gap)+gap, rows*(ht+gap)+gap))
	for i := range img.Pix {
		img.Pix[i] = 0
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	for k := range n {
		x0, y0 := gap+(k%cols)*(wd+gap), gap+(k/cols)*(ht+gap)
		src := b.Images[k*per : (k+1)*per]
		for y := range ht {
			for x := range wd {
				var px [3]uint8
				for ch := range 3 {
					cc := min(ch, c-1)
					std, mean := h.Std[cc], h.Mean[cc]
					if std == 0 {
						std, mean = 1, 0
					}
					v := (src[(cc*ht+y)*wd+x]*std + mean) * 255
					px[ch] = uint8(math.Round(float64(min(max(v, 0), 255))))
				}
				img.SetRGBA(x0+x, y0+y, color.RGBA{px[0], px[1], px[2], 255})
			}
		}
	}
	return img, nil
}

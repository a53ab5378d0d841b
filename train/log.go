package train

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// MetricsLog is an EpochHook (and StepHook) appending to two files in Dir:
// metrics.csv, one row per epoch, and metrics.jsonl, one JSON object per
// epoch and one every StepEvery optimizer steps. A resumed run appends.
type MetricsLog struct {
	Dir       string
	StepEvery int // 0: no step records
}

var csvHeader = []string{"epoch", "step", "lr", "train_loss", "train_top1", "train_top5", "test_loss", "test_top1", "test_top5", "images_per_sec", "seconds", "best"}

// AfterEpoch appends the epoch's metrics.
func (l *MetricsLog) AfterEpoch(t *Trainer, e EpochInfo) error {
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return fmt.Errorf("train: metrics log: %w", err)
	}
	path := filepath.Join(l.Dir, "metrics.csv")
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("train: metrics log: %w", err)
	}
	w := csv.NewWriter(f)
	if statErr != nil {
		w.Write(csvHeader)
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	row := []string{strconv.Itoa(e.Epoch + 1), strconv.Itoa(t.Progress.Step), g(e.LR), g(e.TrainLoss), g(e.TrainTop1), g(e.Top5), "", "", "", g(e.ImagesPerSec), g(e.Duration.Seconds()), strconv.FormatBool(e.Best)}
	rec := map[string]any{"kind": "epoch", "epoch": e.Epoch + 1, "step": t.Progress.Step, "lr": e.LR, "train_loss": e.TrainLoss,
		"train_top1": e.TrainTop1, "train_top5": e.Top5, "images_per_sec": e.ImagesPerSec, "seconds": e.Duration.Seconds(), "best": e.Best}
	if e.Test != nil {
		row[6], row[7], row[8] = g(e.Test.Loss), g(e.Test.Top1), g(e.Test.Top5)
		rec["test_loss"], rec["test_top1"], rec["test_top5"], rec["test_per_class"] = e.Test.Loss, e.Test.Top1, e.Test.Top5, e.Test.PerClass
	}
	w.Write(row)
	w.Flush()
	err = w.Error()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("train: metrics log: %w", err)
	}
	return l.appendJSON(rec)
}

// AfterStep appends a step record every StepEvery steps.
func (l *MetricsLog) AfterStep(t *Trainer, s StepInfo) error {
	if l.StepEvery <= 0 || s.Step%l.StepEvery != 0 {
		return nil
	}
	return l.appendJSON(map[string]any{"kind": "step", "epoch": s.Epoch + 1, "batch": s.Batch, "step": s.Step, "loss": s.Loss, "lr": s.LR,
		"images_per_sec": float64(s.Images) / s.Duration.Seconds()})
}

func (l *MetricsLog) appendJSON(rec map[string]any) error {
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return fmt.Errorf("train: metrics log: %w", err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("train: metrics log: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(l.Dir, "metrics.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("train: metrics log: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("train: metrics log: %w", err)
	}
	return nil
}

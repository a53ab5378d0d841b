package train

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// MetricsLog is an EpochHook (and StepHook) appending to two files in Dir:
// metrics.csv, one row per epoch, and metrics.jsonl, one JSON object per
// epoch and one every StepEvery optimizer steps. A resumed run appends.
//
// With a Monitor, every record also holds the resources the process used
// since the previous record of its kind (the resource columns; empty
// without one, and CPU and RSS are empty where they are not measured).
type MetricsLog struct {
	Dir       string
	StepEvery int // 0: no step records
	Monitor   *Monitor
}

var csvHeader = []string{"epoch", "step", "lr", "train_loss", "train_top1", "train_top5", "test_loss", "test_top1", "test_top5", "images_per_sec", "seconds", "best",
	"wall_seconds", "cpu_percent", "rss_mib", "peak_rss_mib", "heap_inuse_mib", "gc_pause_ms", "num_gc"}

// upgradeCSV pads the rows of a metrics.csv written with fewer columns (by
// an older version, before a resume) to the current header.
func upgradeCSV(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) == 0 || slices.Equal(rows[0], csvHeader) {
		return err
	}
	if len(rows[0]) > len(csvHeader) || !slices.Equal(rows[0], csvHeader[:len(rows[0])]) {
		return fmt.Errorf("%s has the columns %v: move it away to start a new one", path, rows[0])
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(csvHeader)
	for _, r := range rows[1:] {
		w.Write(append(r, make([]string, len(csvHeader)-len(r))...))
	}
	w.Flush()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// AfterEpoch appends the epoch's metrics.
func (l *MetricsLog) AfterEpoch(t *Trainer, e EpochInfo) error {
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return fmt.Errorf("train: metrics log: %w", err)
	}
	path := filepath.Join(l.Dir, "metrics.csv")
	_, statErr := os.Stat(path)
	if statErr == nil {
		if err := upgradeCSV(path); err != nil {
			return fmt.Errorf("train: metrics log: %w", err)
		}
	}
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
	var res *Resources
	if l.Monitor != nil {
		r := l.Monitor.Epoch(e.Epoch)
		res = &r
	}
	row = append(row, resourceFields(res, rec)...)
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
	rec := map[string]any{"kind": "step", "epoch": s.Epoch + 1, "batch": s.Batch, "step": s.Step, "loss": s.Loss, "lr": s.LR,
		"images_per_sec": float64(s.Images) / s.Duration.Seconds()}
	if l.Monitor != nil {
		r := l.Monitor.Step(s.Step)
		resourceFields(&r, rec)
	}
	return l.appendJSON(rec)
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

package train

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestParseProcCPU(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want time.Duration
		err  bool
	}{
		{"plain", "4242 (zoo) R 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 8 0 100 0 0\n", 1750 * time.Millisecond, false},
		{"spaces and parens in the name", "7 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 3 4 0 0\n", 70 * time.Millisecond, false},
		{"no name", "7 a S 1 2 3", 0, true},
		{"short", "7 (a) S 1 2 3\n", 0, true},
		{"not a number", "7 (a) S 1 2 3 4 5 6 7 8 9 10 x 4\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcCPU([]byte(tt.stat))
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("parseProcCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseProcMemory(t *testing.T) {
	tests := []struct {
		name      string
		status    string
		rss, peak int64
		err       bool
	}{
		{"both", "Name:\tzoo\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n", 1024 << 10, 2048 << 10, false},
		{"no VmRSS", "VmHWM:\t 2048 kB\n", 0, 0, true},
		{"bad number", "VmHWM:\t 2x kB\nVmRSS:\t 1 kB\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, peak, err := parseProcMemory([]byte(tt.status))
			if (err != nil) != tt.err || rss != tt.rss || peak != tt.peak {
				t.Errorf("parseProcMemory = %d, %d, %v; want %d, %d, error %v", rss, peak, err, tt.rss, tt.peak, tt.err)
			}
		})
	}
}

func TestMonitor(t *testing.T) {
	m := NewMonitor()
	// Burn some CPU and allocate, so that every figure moves.
	deadline := time.Now().Add(100 * time.Millisecond)
	var keep [][]byte
	for x := 1.0; time.Now().Before(deadline); x = x*1.0000001 + 1 {
		keep = append(keep, make([]byte, 1<<10))
		if len(keep) > 1000 {
			keep = keep[:0]
		}
	}
	runtime.GC()
	r := m.Epoch(0)
	if r.Seconds < 0.1 || r.HeapInuse == 0 || r.NumGC < 1 || r.GCPause <= 0 {
		t.Errorf("resources %+v: want at least 0.1 s, a heap, one GC and its pause", r)
	}
	if runtime.GOOS == "linux" {
		if !r.Proc || r.RSS <= 0 || r.PeakRSS < r.RSS {
			t.Errorf("resources %+v: want RSS > 0 and peak ≥ RSS on Linux", r)
		}
		// A busy loop keeps one core busy; the clock ticks are 10 ms.
		if r.CPUPercent < 20 || r.CPUPercent > 100*float64(runtime.NumCPU())+20 {
			t.Errorf("CPU %.1f%% after a busy loop, want roughly 100%%", r.CPUPercent)
		}
	}
	if again := m.Epoch(0); again != r {
		t.Errorf("Epoch(0) again = %+v, want the same %+v", again, r)
	}
	if s := m.Step(5); s.NumGC < 1 {
		t.Errorf("Step(5) = %+v: want the GC since NewMonitor", s)
	}
	if s := m.Step(6); s.NumGC != 0 || s.Seconds > 1 {
		t.Errorf("Step(6) right after Step(5) = %+v: want a short interval without GC", s)
	}
}

func TestMetricsLogResources(t *testing.T) {
	dir := t.TempDir()
	tr := newToyTrainer(t, 2)
	mon := NewMonitor()
	tr.Hooks = []any{&MetricsLog{Dir: dir, StepEvery: 2, Monitor: mon}}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "metrics.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], csvHeader) {
		t.Fatalf("metrics.csv: %d rows, header %v; want 3 rows, header %v", len(rows), rows[0], csvHeader)
	}
	col := func(row []string, name string) float64 {
		t.Helper()
		v, err := strconv.ParseFloat(row[slices.Index(csvHeader, name)], 64)
		if err != nil {
			t.Fatalf("column %s: %v", name, err)
		}
		return v
	}
	for _, row := range rows[1:] {
		if col(row, "wall_seconds") <= 0 || col(row, "heap_inuse_mib") <= 0 || col(row, "gc_pause_ms") < 0 || col(row, "num_gc") < 0 {
			t.Errorf("row %v: want positive wall time and heap, GC figures ≥ 0", row)
		}
		if runtime.GOOS == "linux" && (col(row, "rss_mib") <= 0 || col(row, "peak_rss_mib") < col(row, "rss_mib") || col(row, "cpu_percent") < 0) {
			t.Errorf("row %v: want RSS > 0, peak ≥ RSS and CPU ≥ 0", row)
		}
	}

	f, err = os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kinds := map[string]int{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		kinds[rec["kind"].(string)]++
		for _, k := range []string{"wall_seconds", "heap_inuse_mib", "gc_pause_ms", "num_gc"} {
			if v, ok := rec[k].(float64); !ok || v < 0 {
				t.Errorf("%s record %v: %s = %v, want a number ≥ 0", rec["kind"], rec, k, rec[k])
			}
		}
		if rss, ok := rec["rss_mib"].(float64); runtime.GOOS == "linux" && (!ok || rss <= 0) {
			t.Errorf("%s record: rss_mib = %v, want > 0", rec["kind"], rec["rss_mib"])
		}
	}
	if kinds["epoch"] != 2 || kinds["step"] == 0 {
		t.Errorf("records %v, want 2 epochs and some steps", kinds)
	}
}

func TestMetricsLogUpgradesOldCSV(t *testing.T) {
	dir := t.TempDir()
	old := "epoch,step,lr,train_loss,train_top1,train_top5,test_loss,test_top1,test_top5,images_per_sec,seconds,best\n1,6,0.1,1,0.5,1,,,,100,1,false\n"
	path := filepath.Join(dir, "metrics.csv")
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := newToyTrainer(t, 2)
	tr.Progress.Epoch = 1
	tr.Hooks = []any{&MetricsLog{Dir: dir, Monitor: NewMonitor()}}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll() // fails on rows of unequal length
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], csvHeader) || rows[1][0] != "1" || rows[2][0] != "2" {
		t.Errorf("upgraded metrics.csv %v: want the new header, the old row and epoch 2", rows)
	}

	if err := os.WriteFile(path, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&MetricsLog{Dir: dir}).AfterEpoch(tr, EpochInfo{}); err == nil {
		t.Error("metrics.csv of unknown columns: no error")
	}
}

package train

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// countColor counts the pixels of img within 8 levels of c per channel.
func countColor(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	near := func(a uint32, b uint8) bool { d := int(a>>8) - int(b); return d > -8 && d < 8 }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, c.R) && near(g, c.G) && near(bl, c.B) {
				n++
			}
		}
	}
	return n
}

func TestDrawCurves(t *testing.T) {
	tests := []struct {
		name      string
		pts       []EpochPoint
		wantTest  bool
		wantError bool
	}{
		{"train and test", []EpochPoint{{1, 2.2, 0.2, true, 2.0, 0.25}, {2, 1.6, 0.4, true, 1.5, 0.45}, {3, 1.2, 0.55, true, 1.3, 0.5}}, true, false},
		{"one epoch", []EpochPoint{{1, 2.2, 0.2, true, 2.0, 0.25}}, true, false},
		{"no test data", []EpochPoint{{1, 2.2, 0.2, false, 0, 0}, {2, 1.9, 0.3, false, 0, 0}}, false, false},
		{"nothing", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := DrawCurves(&buf, tt.pts)
			if (err != nil) != tt.wantError {
				t.Fatalf("error %v, want error %v", err, tt.wantError)
			}
			if err != nil {
				return
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
			if got := img.Bounds().Size(); got != image.Pt(CurvesWidth, CurvesHeight) {
				t.Errorf("size %v, want %dx%d", got, CurvesWidth, CurvesHeight)
			}
			if n := countColor(img, TrainColor); n < 50 {
				t.Errorf("%d pixels of the training colour, want a curve (≥ 50)", n)
			}
			if n := countColor(img, TestColor); (n >= 50) != tt.wantTest {
				t.Errorf("%d pixels of the test colour; want a test curve: %v", n, tt.wantTest)
			}
		})
	}
}

func TestCurvesHook(t *testing.T) {
	dir := t.TempDir()
	tr := newToyTrainer(t, 2)
	tr.Hooks = []any{&MetricsLog{Dir: dir, StepEvery: 1}, &Curves{Dir: dir}}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	// An epoch logged twice (redone after a crash) counts once, the last.
	f, err := os.OpenFile(filepath.Join(dir, "metrics.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, `{"kind":"epoch","epoch":2,"train_loss":9,"train_top1":0.5,"test_loss":8,"test_top1":0.25}`)
	f.Close()
	pts, err := ReadEpochs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2 || pts[0].Epoch != 1 || !pts[0].HasTest || pts[1].TrainLoss != 9 || pts[1].TestTop1 != 0.25 {
		t.Errorf("ReadEpochs = %+v: want epochs 1 and 2 (the last record), with test figures", pts)
	}
	b, err := os.ReadFile(filepath.Join(dir, "curves.png"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || cfg.Width != CurvesWidth {
		t.Errorf("curves.png: %+v, %v", cfg, err)
	}
	if _, err := ReadEpochs(t.TempDir()); err == nil {
		t.Error("ReadEpochs of a folder without metrics.jsonl: no error")
	}
}

func ExampleDrawCurves() {
	var buf bytes.Buffer
	err := DrawCurves(&buf, []EpochPoint{
		{Epoch: 1, TrainLoss: 2.1, TrainTop1: 0.22, HasTest: true, TestLoss: 1.9, TestTop1: 0.30},
		{Epoch: 2, TrainLoss: 1.7, TrainTop1: 0.38, HasTest: true, TestLoss: 1.6, TestTop1: 0.41},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, _ := png.DecodeConfig(&buf)
	fmt.Println(cfg.Width, cfg.Height)
	// Output: 1000 400
}

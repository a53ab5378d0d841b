package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The size of curves.png in pixels, and the colours of its lines.
const (
	CurvesWidth  = 1000
	CurvesHeight = 400
)

var (
	// TrainColor draws the training curves, TestColor the test ones.
	TrainColor = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	TestColor  = color.RGBA{0xd6, 0x27, 0x28, 0xff}
)

// EpochPoint is one epoch of the training curves; the accuracies are top-1
// fractions.
type EpochPoint struct {
	Epoch                int // 1-based
	TrainLoss, TrainTop1 float64
	HasTest              bool
	TestLoss, TestTop1   float64
}

// Curves is an EpochHook that redraws Dir/curves.png after every epoch
// from the epoch records of Dir/metrics.jsonl, so a resumed run draws the
// whole history: put it after the MetricsLog writing them.
type Curves struct{ Dir string }

// AfterEpoch redraws the curves.
func (c *Curves) AfterEpoch(*Trainer, EpochInfo) error { return PlotCurves(c.Dir) }

// ReadEpochs returns the epoch records of dir/metrics.jsonl in epoch
// order; the last record of an epoch wins (an epoch redone after a crash).
func ReadEpochs(dir string) ([]EpochPoint, error) {
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("train: curves: %w", err)
	}
	defer f.Close()
	byEpoch := map[int]EpochPoint{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r struct {
			Kind      string   `json:"kind"`
			Epoch     int      `json:"epoch"`
			TrainLoss float64  `json:"train_loss"`
			TrainTop1 float64  `json:"train_top1"`
			TestLoss  *float64 `json:"test_loss"`
			TestTop1  *float64 `json:"test_top1"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("train: curves: metrics.jsonl line %d: %w", line, err)
		}
		if r.Kind != "epoch" {
			continue
		}
		p := EpochPoint{Epoch: r.Epoch, TrainLoss: r.TrainLoss, TrainTop1: r.TrainTop1}
		if r.TestLoss != nil && r.TestTop1 != nil {
			p.HasTest, p.TestLoss, p.TestTop1 = true, *r.TestLoss, *r.TestTop1
		}
		byEpoch[r.Epoch] = p
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train: curves: metrics.jsonl: %w", err)
	}
	var pts []EpochPoint
	for _, p := range byEpoch {
		pts = append(pts, p)
	}
	slices.SortFunc(pts, func(a, b EpochPoint) int { return a.Epoch - b.Epoch })
	return pts, nil
}

// PlotCurves draws the epochs of dir/metrics.jsonl into dir/curves.png,
// replacing it atomically.
func PlotCurves(dir string) error {
	pts, err := ReadEpochs(dir)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := DrawCurves(&buf, pts); err != nil {
		return err
	}
	path := filepath.Join(dir, "curves.png")
	if err := os.WriteFile(path+".tmp", buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("train: curves: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("train: curves: %w", err)
	}
	return nil
}

// DrawCurves writes a CurvesWidth × CurvesHeight PNG of two charts side
// by side: the loss and the top-1 accuracy (%) per epoch, training in
// TrainColor and test in TestColor.
func DrawCurves(w io.Writer, pts []EpochPoint) error {
	if len(pts) == 0 {
		return fmt.Errorf("train: curves: no epoch to draw")
	}
	var trainLoss, testLoss, trainAcc, testAcc plotter.XYs
	for _, p := range pts {
		x := float64(p.Epoch)
		trainLoss = append(trainLoss, plotter.XY{X: x, Y: p.TrainLoss})
		trainAcc = append(trainAcc, plotter.XY{X: x, Y: 100 * p.TrainTop1})
		if p.HasTest {
			testLoss = append(testLoss, plotter.XY{X: x, Y: p.TestLoss})
			testAcc = append(testAcc, plotter.XY{X: x, Y: 100 * p.TestTop1})
		}
	}
	// The loss falls and the accuracy rises: their legends go where the
	// curves are not, top right and bottom right.
	loss, err := chart("Loss", "cross-entropy", true, trainLoss, testLoss)
	if err != nil {
		return err
	}
	acc, err := chart("Top-1 accuracy", "%", false, trainAcc, testAcc)
	if err != nil {
		return err
	}
	const dpi = 96
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(CurvesWidth)*vg.Inch/dpi, vg.Length(CurvesHeight)*vg.Inch/dpi), vgimg.UseDPI(dpi))
	dc := draw.New(c)
	tiles := plot.Align([][]*plot.Plot{{loss, acc}}, draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}, dc)
	loss.Draw(tiles[0][0])
	acc.Draw(tiles[0][1])
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w); err != nil {
		return fmt.Errorf("train: curves: %w", err)
	}
	return nil
}

// chart is one panel: the training and (when any) test series.
func chart(title, ylabel string, legendTop bool, train, test plotter.XYs) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = legendTop
	for _, s := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
	}{{"train", train, TrainColor}, {"test", test, TestColor}} {
		if len(s.xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return nil, fmt.Errorf("train: curves: %s %s: %w", title, s.name, err)
		}
		l.Color, l.Width = s.c, vg.Points(2)
		pts.Color, pts.Shape, pts.Radius = s.c, draw.CircleGlyph{}, vg.Points(3)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	p.X.Tick.Marker = plot.TickerFunc(integerTicks)
	// Room around the curves for the points and the legend.
	pad := 0.15 * max(p.Y.Max-p.Y.Min, 0.01)
	p.Y.Min, p.Y.Max = p.Y.Min-pad, p.Y.Max+pad
	p.X.Min, p.X.Max = p.X.Min-0.25, p.X.Max+0.25
	return p, nil
}

// integerTicks labels whole epochs only.
func integerTicks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	step := max(1, int((hi-lo)/8)+1)
	for e := int(lo); float64(e) <= hi; e += step {
		if float64(e) >= lo {
			ticks = append(ticks, plot.Tick{Value: float64(e), Label: fmt.Sprint(e)})
		}
	}
	return ticks
}

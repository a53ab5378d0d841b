package tensorboard_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gozoo/gozoo/train/tensorboard"
)

func ExampleWriter() {
	dir, _ := os.MkdirTemp("", "tb")
	defer os.RemoveAll(dir)
	w, err := tensorboard.Create(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	for step, loss := range []float64{2.3, 1.9, 1.6} {
		w.Scalar("train/loss", int64(step+1), loss)
	}
	if h, err := tensorboard.NewHistogram([]float32{-0.5, 0, 0.1, 0.5}, 2); err == nil {
		w.Histogram("weights/fc.weight", 3, h)
	}
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.HasPrefix(filepath.Base(w.Path()), "events.out.tfevents."))
	// Output: true
}

func ExampleNewHistogram() {
	h, _ := tensorboard.NewHistogram([]float64{-1, 0, 0.25, 1}, 4)
	fmt.Println(h.Num, h.Min, h.Max, h.Limits, h.Counts)
	// Output: 4 -1 1 [-0.5 0 0.5 1] [1 0 2 1]
}

package bench_test

import (
	"fmt"

	"github.com/gozoo/gozoo/bench"
)

// Summarize turns per-iteration times into img/s, ms/step and GFLOP/s; it
// serves gozoo's results and PyTorch's alike.
func ExampleResult_Summarize() {
	r := bench.Result{
		Config: bench.Config{Model: "vgg16_bn", Mode: bench.Train, Batch: 64},
		Times:  []float64{0.80, 0.75, 0.90}, // seconds per step
	}
	if err := r.Summarize(1.88e9); err != nil { // FLOPs per image of a vgg16_bn step
		fmt.Println(err)
		return
	}
	fmt.Printf("%.1f img/s (%.1f–%.1f), %.0f ms/step, %.1f GFLOP/s\n",
		r.ImgPerSec.Median, r.ImgPerSec.Min, r.ImgPerSec.Max, r.MsPerStep, r.GFLOPs)
	// Output: 80.0 img/s (71.1–85.3), 800 ms/step, 150.4 GFLOP/s
}

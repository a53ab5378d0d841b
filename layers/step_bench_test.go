package layers_test

import (
	"math/rand/v2"
	"testing"

	"github.com/gozoo/gozoo/zoo/vgg"
	"gorgonia.org/tensor"
)

// BenchmarkTrainStep times one training step (forward, loss and every
// gradient; no optimizer update) of VGG models with batch norm on CIFAR-size
// float32 input, batch 64, and reports images per second. It is slow (a
// second or more per step with gonum's GEMM): run it with -benchtime Nx.
// It also reports the process's CPU time per step (both cores together).
func BenchmarkTrainStep(b *testing.B) {
	const batch = 64
	for _, name := range []string{"vgg11_bn", "vgg16_bn"} {
		b.Run(name, func(b *testing.B) {
			m, err := vgg.New(name, vgg.Options{Batch: batch, Seed: 1, Dtype: tensor.Float32})
			if err != nil {
				b.Fatal(err)
			}
			g, err := m.NewGraph(vgg.GraphOptions{Train: true, Loss: true})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			r := rand.New(rand.NewPCG(1, 2))
			images := make([]float32, batch*3*32*32)
			for i := range images {
				images[i] = float32(r.NormFloat64())
			}
			labels := make([]int, batch)
			for i := range labels {
				labels[i] = r.IntN(10)
			}
			if err := g.Run(images, labels); err != nil { // warm-up: builds the machine
				b.Fatal(err)
			}
			cpu0 := processCPU()
			for b.Loop() {
				if err := g.Run(images, labels); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(batch*float64(b.N)/b.Elapsed().Seconds(), "img/s")
			// CPU time per step: less sensitive than img/s to other
			// processes on a shared machine (it still grows with cache
			// contention).
			b.ReportMetric((processCPU()-cpu0)*1000/float64(b.N), "cpu-ms/op")
		})
	}
}

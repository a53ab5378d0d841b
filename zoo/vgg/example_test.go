package vgg_test

import (
	"fmt"

	"github.com/gozoo/gozoo/zoo/vgg"
)

// Build a narrow VGG16 with batch normalisation, run a batch through it and
// read an intermediate activation by its torchvision name.
func Example() {
	m, err := vgg.New("vgg16_bn", vgg.Options{Batch: 2, WidthMult: 0.125, Seed: 1})
	if err != nil {
		panic(err)
	}
	g, err := m.NewGraph(vgg.GraphOptions{Watch: []string{"features.30"}})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	images := make([]float32, 2*3*32*32) // (N, C, H, W)
	if err := g.Run(images, nil); err != nil {
		panic(err)
	}
	act, _ := g.Activation("features.30")
	fmt.Println("parameters:", m.Params()[0].Name, "…", len(m.Params()), "tensors,", m.Arch.Params(), "values")
	fmt.Println("features.30:", act.Shape())
	fmt.Println("logits:", g.OutputValue().Shape())
	// Output:
	// parameters: features.0.weight … 54 tensors, 232274 values
	// features.30: (2, 64, 4, 4)
	// logits: (2, 10)
}

// The architecture alone, without weights: what zoo summary prints.
func ExampleNewArch() {
	a, err := vgg.NewArch("vgg16", vgg.Options{Head: vgg.HeadImageNet, Classes: 1000, Height: 224, Width: 224})
	if err != nil {
		panic(err)
	}
	l, _ := a.Layer("classifier.0")
	fmt.Println(len(a.Layers), "layers,", a.Params(), "parameters")
	fmt.Println(l)
	// Output:
	// 40 layers, 138357544 parameters
	// Linear(in_features=25088, out_features=4096)
}

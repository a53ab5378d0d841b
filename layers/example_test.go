package layers_test

import (
	"fmt"

	"github.com/gozoo/gozoo/layers"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Example builds a tiny classifier, conv → ReLU → max-pool → flatten →
// linear, on a batch of two 3-channel 8×8 images, and runs it.
func Example() {
	g := G.NewGraph()
	param := func(name string, shape ...int) *G.Node {
		return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name), G.WithInit(G.Ones()))
	}
	x := param("x", 2, 3, 8, 8)
	y, err := layers.Conv2d(x, param("conv.w", 4, 3, 3, 3), param("conv.b", 4), 1, 1) // (2, 4, 8, 8)
	if err == nil {
		y, err = layers.ReLU(y)
	}
	if err == nil {
		y, err = layers.MaxPool2d(y, 2, 2, 0) // (2, 4, 4, 4)
	}
	if err == nil {
		y, err = layers.Flatten(y) // (2, 64)
	}
	if err == nil {
		y, err = layers.Linear(y, param("fc.w", 10, 64), param("fc.b", 10)) // (2, 10)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("output shape:", y.Shape())
	fmt.Println("first logit:", y.Value().Data().([]float32)[0])
	// Output:
	// output shape: (2, 10)
	// first logit: 1793
}

package vgg_test

import (
	"fmt"

	"github.com/gozoo/gozoo/internal/cuda/emu"
	"github.com/gozoo/gozoo/train"
	"github.com/gozoo/gozoo/zoo/vgg"
)

// A training step and an inference pass on a device backend. With a GPU the
// backend is nn.New(dev) after dev, _ := cuda.Open(cuda.Options{}); here it
// is the host emulation.
func ExampleNewDevice() {
	m, err := vgg.New("vgg11_bn", vgg.Options{WidthMult: 1.0 / 16, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := vgg.NewDevice(m, emu.New(), vgg.NetOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	opt, err := d.NewSGD(train.SGDConfig{Momentum: 0.9, WeightDecay: 5e-4})
	if err != nil {
		fmt.Println(err)
		return
	}
	images, labels := make([]float32, 2*3*32*32), []int{3, 5}
	for i := range images {
		images[i] = float32(i%7) - 3
	}
	out, err := d.Forward(images, labels, true)
	if err == nil {
		err = opt.Step(nil, 0.01)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	logits, err := d.Logits(images)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("loss > 0: %t; %d logits per image\n", out.Loss > 0, len(logits)/2)
	// Output: loss > 0: true; 10 logits per image
}

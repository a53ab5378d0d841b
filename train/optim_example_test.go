package train_test

import (
	"fmt"
	"log"

	"github.com/gozoo/gozoo/train"
	"gorgonia.org/tensor"
)

func ExampleNewSGD() {
	opt, err := train.NewSGD(train.SGDConfig{Momentum: 0.9})
	if err != nil {
		log.Fatal(err)
	}
	w := tensor.New(tensor.WithBacking([]float32{1, 2}))
	g := tensor.New(tensor.WithBacking([]float32{0.5, -1}))
	for i := 0; i < 2; i++ {
		if err := opt.Step([]train.Param{{Name: "fc.weight", Value: w, Grad: g}}, 0.1); err != nil {
			log.Fatal(err)
		}
		fmt.Println(w.Float32s())
	}
	_, err = train.NewSGD(train.SGDConfig{Nesterov: true})
	fmt.Println(err)
	// Output:
	// [0.95 2.1]
	// [0.855 2.29]
	// sgd: nesterov needs momentum > 0 and dampening 0 (got momentum 0, dampening 0)
}

package onnx_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/gozoo/gozoo/zoo/vgg/onnx"
)

// Export a CIFAR-10 VGG11 at 1/16 width, recording CIFAR-10's
// normalization and class names in the file's metadata. Write to an
// os.File in a real program; onnxruntime then runs it at any batch size.
func ExampleExport() {
	m, err := vgg.New("vgg11", vgg.Options{WidthMult: 1.0 / 16, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	err = onnx.Export(&buf, m, onnx.ExportOptions{
		Mean:       []float64{0.4914, 0.4822, 0.4465},
		Std:        []float64{0.2470, 0.2435, 0.2616},
		ClassNames: []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d parameters, %.0f KiB of ONNX (IR %d, opset %d)\n", m.Name, m.Arch.Params(), float64(buf.Len())/1024, onnx.IRVersion, onnx.Opset)
	// Output:
	// vgg11: 36610 parameters, 147 KiB of ONNX (IR 8, opset 17)
}

package safetensors_test

import (
	"bytes"
	"fmt"

	"github.com/gozoo/gozoo/safetensors"
)

func Example() {
	var buf bytes.Buffer
	tensors := map[string]safetensors.Tensor{
		"fc.weight":              safetensors.FromFloat32([]int{2, 2}, []float32{1, 2, 3, 4}),
		"bn.num_batches_tracked": safetensors.FromInt64(nil, []int64{3}),
	}
	if err := safetensors.Encode(&buf, tensors, map[string]string{"model": "tiny"}); err != nil {
		fmt.Println(err)
		return
	}

	f, err := safetensors.Parse(buf.Bytes())
	if err != nil {
		fmt.Println(err)
		return
	}
	w, _ := f.Tensors["fc.weight"].Float32s()
	n, _ := f.Tensors["bn.num_batches_tracked"].Int64s()
	fmt.Println(f.Names(), f.Metadata["model"])
	fmt.Println(f.Tensors["fc.weight"].Shape, w, n)
	// Output:
	// [bn.num_batches_tracked fc.weight] tiny
	// [2 2] [1 2 3 4] [3]
}

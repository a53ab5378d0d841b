package layers

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// Flatten reshapes x (N, d1, d2, ...) to (N, d1·d2·...), as PyTorch's
// nn.Flatten(1); it is differentiable. x must have rank 2 or more.
func Flatten(x *G.Node) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("layers: Flatten: x is nil")
	}
	s := x.Shape()
	if len(s) < 2 {
		return nil, fmt.Errorf("layers: Flatten: x has shape %v; want rank 2 or more (N, d1, ...)", s)
	}
	y, err := G.Reshape(x, []int{s[0], s[1:].TotalSize()})
	if err != nil {
		return nil, fmt.Errorf("layers: Flatten: %w", err)
	}
	return y, nil
}

package layers

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AdaptiveAvgPool2d is PyTorch's nn.AdaptiveAvgPool2d((outH, outW)): output
// cell (i, j) averages input rows floor(i·H/outH) … ceil((i+1)·H/outH)−1 and
// the same for columns (windows may overlap; works for outH > H, e.g. 1×1 →
// 7×7). x is (N, C, H, W); the result is (N, C, outH, outW).
func AdaptiveAvgPool2d(x *G.Node, outH, outW int) (*G.Node, error) {
	if err := checkNotNil("AdaptiveAvgPool2d", []string{"x"}, x); err != nil {
		return nil, err
	}
	s := x.Shape()
	if len(s) != 4 || s[2] < 1 || s[3] < 1 {
		return nil, fmt.Errorf("layers: AdaptiveAvgPool2d: x has shape %v; want (N, C, H, W) with H, W ≥ 1", s)
	}
	if outH < 1 || outW < 1 {
		return nil, fmt.Errorf("layers: AdaptiveAvgPool2d: output size %d×%d; want both ≥ 1", outH, outW)
	}
	return G.ApplyOp(adaptiveOp{outH: outH, outW: outW, buf: newBuffer()}, x)
}

// adaptiveWindows returns the [start, end) input index range of each of out
// output cells along an axis of size in.
func adaptiveWindows(in, out int) (start, end []int) {
	start, end = make([]int, out), make([]int, out)
	for i := range out {
		start[i] = i * in / out
		end[i] = ((i+1)*in + out - 1) / out
	}
	return start, end
}

// adaptiveOp is the forward pool; input x (N, C, H, W).
type adaptiveOp struct {
	opBase
	outH, outW int
	buf        *ownBuffer
}

func (adaptiveOp) Arity() int    { return 1 }
func (adaptiveOp) Type() hm.Type { return hm.NewFnType(tensorType(4), tensorType(4)) }
func (op adaptiveOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := in[0].(tensor.Shape)
	return tensor.Shape{s[0], s[1], op.outH, op.outW}, nil
}
func (op adaptiveOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op adaptiveOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "layers.AdaptiveAvgPool2d(%d,%d)", op.outH, op.outW)
}
func (op adaptiveOp) Hashcode() uint32 { return hashOf(op) }
func (op adaptiveOp) String() string {
	return fmt.Sprintf("AdaptiveAvgPool2d(%d, %d)", op.outH, op.outW)
}
func (adaptiveOp) DiffWRT(int) []bool { return []bool{true} }

func (op adaptiveOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("AdaptiveAvgPool2d", in...)
	if err != nil {
		return nil, err
	}
	x := ts[0]
	s := x.Shape()
	y := op.buf.output(prealloc, x.Dtype(), tensor.Shape{s[0], s[1], op.outH, op.outW})
	if x.Dtype() == tensor.Float32 {
		adaptiveForward(data[float32](y), data[float32](x), s[0]*s[1], s[2], s[3], op.outH, op.outW)
	} else {
		adaptiveForward(data[float64](y), data[float64](x), s[0]*s[1], s[2], s[3], op.outH, op.outW)
	}
	return y, nil
}

func (op adaptiveOp) SymDiff(in G.Nodes, y, dy *G.Node) (G.Nodes, error) {
	s := in[0].Shape()
	dx, err := G.ApplyOp(adaptiveGradOp{h: s[2], w: s[3], outH: op.outH, outW: op.outW, buf: newBuffer()}, dy)
	return G.Nodes{dx}, err
}

// adaptiveForward averages each window; x is (planes, h, w), y is (planes,
// outH, outW).
func adaptiveForward[T float](y, x []T, planes, h, w, outH, outW int) {
	r0, r1 := adaptiveWindows(h, outH)
	c0, c1 := adaptiveWindows(w, outW)
	for p := range planes {
		xp, yp := x[p*h*w:(p+1)*h*w], y[p*outH*outW:(p+1)*outH*outW]
		for i := range outH {
			for j := range outW {
				var sum float64
				for r := r0[i]; r < r1[i]; r++ {
					for _, v := range xp[r*w+c0[j] : r*w+c1[j]] {
						sum += float64(v)
					}
				}
				yp[i*outW+j] = T(sum / float64((r1[i]-r0[i])*(c1[j]-c0[j])))
			}
		}
	}
}

// adaptiveGradOp spreads each output gradient evenly over its window; input
// dy (N, C, outH, outW), output dx (N, C, h, w).
type adaptiveGradOp struct {
	opBase
	h, w, outH, outW int
	buf              *ownBuffer
}

func (adaptiveGradOp) Arity() int    { return 1 }
func (adaptiveGradOp) Type() hm.Type { return hm.NewFnType(tensorType(4), tensorType(4)) }
func (op adaptiveGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := in[0].(tensor.Shape)
	return tensor.Shape{s[0], s[1], op.h, op.w}, nil
}
func (op adaptiveGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op adaptiveGradOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "layers.AdaptiveAvgPool2dGrad(%d,%d,%d,%d)", op.h, op.w, op.outH, op.outW)
}
func (op adaptiveGradOp) Hashcode() uint32 { return hashOf(op) }
func (op adaptiveGradOp) String() string {
	return fmt.Sprintf("AdaptiveAvgPool2dGrad(%d×%d ← %d×%d)", op.h, op.w, op.outH, op.outW)
}

func (op adaptiveGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ts, err := denses("AdaptiveAvgPool2dGrad", in...)
	if err != nil {
		return nil, err
	}
	dy := ts[0]
	s := dy.Shape()
	dx := op.buf.output(prealloc, dy.Dtype(), tensor.Shape{s[0], s[1], op.h, op.w})
	if dy.Dtype() == tensor.Float32 {
		adaptiveBackward(data[float32](dx), data[float32](dy), s[0]*s[1], op.h, op.w, op.outH, op.outW)
	} else {
		adaptiveBackward(data[float64](dx), data[float64](dy), s[0]*s[1], op.h, op.w, op.outH, op.outW)
	}
	return dx, nil
}

// adaptiveBackward overwrites dx (planes, h, w) with the gradient of the
// pool given dy (planes, outH, outW).
func adaptiveBackward[T float](dx, dy []T, planes, h, w, outH, outW int) {
	r0, r1 := adaptiveWindows(h, outH)
	c0, c1 := adaptiveWindows(w, outW)
	clear(dx)
	for p := range planes {
		dxp, dyp := dx[p*h*w:(p+1)*h*w], dy[p*outH*outW:(p+1)*outH*outW]
		for i := range outH {
			for j := range outW {
				g := dyp[i*outW+j] / T((r1[i]-r0[i])*(c1[j]-c0[j]))
				for r := r0[i]; r < r1[i]; r++ {
					row := dxp[r*w+c0[j] : r*w+c1[j]]
					for k := range row {
						row[k] += g
					}
				}
			}
		}
	}
}

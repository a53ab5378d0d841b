package layers

import (
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestConvReuseState runs a graph of three convolutions (Winograd or
// im2col with one image per GEMM, a strided one and a 1×1 one, both with
// several images per GEMM) as zoo/vgg does: a rerun of the same input must
// give bit-identical outputs and gradients after a run on another input
// (nothing stale read, nothing accumulated in the kept outputs and
// scratch), and no two convolution nodes may share an output or scratch.
func TestConvReuseState(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		t.Run(dt.String(), func(t *testing.T) {
			const n, c, h, w = 2, 16, 16, 16
			g := G.NewGraph()
			xv := tensor.New(tensor.Of(dt), tensor.WithShape(n, c, h, w))
			x := G.NodeFromAny(g, xv, G.WithName("x"))
			param := func(name string, s ...int) *G.Node {
				return G.NewTensor(g, dt, len(s), G.WithShape(s...), G.WithName(name), G.WithInit(G.Gaussian(0, 0.2)))
			}
			w1, b1, w2, w3 := param("w1", c, c, 3, 3), param("b1", c), param("w2", c, c, 3, 3), param("w3", c, c, 1, 1)
			y := G.Must(Conv2d(x, w1, b1, 1, 1))
			y = G.Must(ReLU(y))
			y = G.Must(Conv2d(y, w2, nil, 2, 1))
			y = G.Must(Conv2d(y, w3, nil, 1, 0))
			r := G.NewTensor(g, dt, 4, G.WithShape(y.Shape()...), G.WithName("r"), G.WithInit(G.Gaussian(0, 1)))
			loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, r))))
			grads, err := G.Grad(loss, x, w1, b1, w2, w3)
			if err != nil {
				t.Fatalf("Grad: %v", err)
			}
			var outs []*G.Value
			for _, nd := range append(G.Nodes{loss, y}, grads...) {
				v := new(G.Value)
				G.Read(nd, v)
				outs = append(outs, v)
			}
			m := G.NewTapeMachine(g)
			defer m.Close()
			run := func(seed uint64) [][]float64 {
				rng := rand.New(rand.NewPCG(seed, 3))
				switch d := xv.Data().(type) {
				case []float32:
					for i := range d {
						d[i] = float32(rng.NormFloat64())
					}
				case []float64:
					for i := range d {
						d[i] = rng.NormFloat64()
					}
				}
				m.Reset()
				if err := m.RunAll(); err != nil {
					t.Fatalf("run: %v", err)
				}
				var got [][]float64
				for _, v := range outs {
					switch v := (*v).(type) {
					case *tensor.Dense:
						got = append(got, slices.Clone(toFloat64s(v)))
					case *G.F32:
						got = append(got, []float64{float64(*v)})
					case *G.F64:
						got = append(got, []float64{float64(*v)})
					default:
						t.Fatalf("unexpected value %T", v)
					}
				}
				return got
			}
			first, other, again := run(1), run(2), run(1)
			names := []string{"loss", "y", "dx", "dw1", "db1", "dw2", "dw3"}
			for i, name := range names {
				if !slices.Equal(again[i], first[i]) {
					t.Errorf("%s: a rerun of the same input differs from the first run", name)
				}
				if slices.Equal(other[i], first[i]) {
					t.Errorf("%s: another input gives the same values", name)
				}
			}

			bufs, scrs := map[*ownBuffer]bool{}, map[*convScratch]bool{}
			outsSeen := map[any]string{}
			ops := 0
			for _, nd := range g.AllNodes() {
				var b *ownBuffer
				var s *convScratch
				switch op := nd.Op().(type) {
				case convOp:
					b, s = op.buf, op.scr
				case convGradInputOp:
					b, s = op.buf, op.scr
				case convGradWeightOp:
					b, s = op.buf, op.scr
				case biasGradOp:
					b = op.buf
				default:
					continue
				}
				ops++
				if b == nil || bufs[b] || (s != nil && scrs[s]) {
					t.Errorf("%v: output buffer %p or scratch %p missing or shared with another node", nd, b, s)
				}
				bufs[b], scrs[s] = true, true
				if d, ok := nd.Value().(*tensor.Dense); ok {
					if prev, dup := outsSeen[d.Uintptr()]; dup {
						t.Errorf("%v writes the same memory as %s", nd, prev)
					}
					outsSeen[d.Uintptr()] = nd.String()
				}
			}
			if want := 3 + 3 + 3 + 1; ops != want { // forward, dx, dw of three convolutions, one db
				t.Errorf("got %d convolution ops, want %d", ops, want)
			}
		})
	}
}

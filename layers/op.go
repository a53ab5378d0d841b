package layers

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// float is the set of element types the kernels are written for.
type float interface{ float32 | float64 }

// opBase gives the methods every op of this package shares: pure, no cgo,
// never overwriting an input.
type opBase struct{}

func (opBase) ReturnsPtr() bool     { return false }
func (opBase) CallsExtern() bool    { return false }
func (opBase) OverwritesInput() int { return -1 }

// layersOp marks the ops of this package (see inPlaceOK).
func (opBase) layersOp() {}

// inPlaceOK reports whether an op may write its result over x's value. An
// in-place op says so to Gorgonia (ReturnsPtr, OverwritesInput), whose
// register allocator then hands it x's register wherever x is dead after it
// (and a fresh one where x is still needed: a gradient reads it, a Read
// copies it later), and UsePreallocDo receives x itself as prealloc. Only
// the output of another op of this package qualifies: its value is that
// op's own buffer, never a caller's bound tensor, a constant or a view of
// one, which the next run would read back overwritten.
func inPlaceOK(x *G.Node) bool {
	_, ok := x.Op().(interface{ layersOp() })
	return ok
}

// opInPlace is opBase for an op that may overwrite one of its inputs (see
// inPlaceOK). Its zero value overwrites nothing.
type opInPlace struct {
	opBase
	over int // the index of the input it may overwrite, plus one; 0: none
}

// inPlaceOf returns the opInPlace of an op that overwrites input i, the
// node x, when inPlaceOK allows it, and one that overwrites nothing else.
func inPlaceOf(i int, x *G.Node) opInPlace {
	if inPlaceOK(x) {
		return opInPlace{over: i + 1}
	}
	return opInPlace{}
}

func (o opInPlace) ReturnsPtr() bool     { return o.over > 0 }
func (o opInPlace) OverwritesInput() int { return o.over - 1 }

// tensorType is the Gorgonia type of a dims-dimensional tensor of element
// type variable a.
func tensorType(dims int) hm.Type {
	return G.TensorType{Dims: dims, Of: hm.TypeVariable('a')}
}

// hashOf hashes what an op writes with WriteHash.
func hashOf(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// writeIdentity writes an op's name and its address: ops that hold state
// (running statistics, a random stream, saved activations) must never be
// merged by Gorgonia's hash-consing, so their hash names the instance.
func writeIdentity(h hash.Hash, name string, op any) {
	fmt.Fprintf(h, "%s@%p", name, op)
}

// dense returns v as a *tensor.Dense, or an error naming the op.
func dense(op string, v G.Value) (*tensor.Dense, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("layers: %s: expected a *tensor.Dense, got %T", op, v)
	}
	return d, nil
}

// denses converts all inputs, checking that they share one float dtype.
func denses(op string, vs ...G.Value) ([]*tensor.Dense, error) {
	out := make([]*tensor.Dense, len(vs))
	for i, v := range vs {
		d, err := dense(op, v)
		if err != nil {
			return nil, err
		}
		if d.Dtype() != tensor.Float32 && d.Dtype() != tensor.Float64 {
			return nil, fmt.Errorf("layers: %s: input %d has dtype %v; only float32 and float64 are supported", op, i, d.Dtype())
		}
		if i > 0 && d.Dtype() != out[0].Dtype() {
			return nil, fmt.Errorf("layers: %s: input %d has dtype %v, input 0 has %v", op, i, d.Dtype(), out[0].Dtype())
		}
		out[i] = d
	}
	return out, nil
}

// output returns prealloc when it is a dense tensor of the right dtype and
// shape (the TapeMachine hands back the previous step's buffer), else a new
// zeroed tensor.
func output(prealloc G.Value, dt tensor.Dtype, shape tensor.Shape) *tensor.Dense {
	if p, ok := prealloc.(*tensor.Dense); ok && p.Dtype() == dt && p.Shape().Eq(shape) {
		return p
	}
	return tensor.New(tensor.Of(dt), tensor.WithShape(shape.Clone()...))
}

// data returns the backing slice of a dense float tensor of type T.
func data[T float](d *tensor.Dense) []T { return d.Data().([]T) }

// ownBuffer is an op's own output tensor, kept from run to run. zoo/vgg's
// Graph.Run resets its TapeMachine before every run, and Reset drops every
// register, so an op that only reused prealloc would allocate (and zero) its
// output at every step. A buffer belongs to one graph node: give each
// ApplyOp a fresh one (hash-consing may merge two equal nodes; the merged
// node keeps the first op and its buffer, which is right).
type ownBuffer struct{ t *tensor.Dense }

// newBuffer returns an empty buffer, filled at the first run.
func newBuffer() *ownBuffer { return new(ownBuffer) }

// output is the package's output helper with a memory: it returns prealloc
// when it fits (the machine hands over a register whose value is dead), else
// the op's own tensor, allocated at the first run and reused after. The
// contents are stale: the op must overwrite every element. Values leave a
// graph only as copies (gorgonia.Read, as zoo/vgg does), so the next run may
// overwrite them. A nil buffer allocates every time.
func (b *ownBuffer) output(prealloc G.Value, dt tensor.Dtype, shape tensor.Shape) *tensor.Dense {
	if p, ok := prealloc.(*tensor.Dense); ok && p.Dtype() == dt && p.Shape().Eq(shape) {
		return p
	}
	if b == nil {
		return output(nil, dt, shape)
	}
	if b.t == nil || b.t.Dtype() != dt || !b.t.Shape().Eq(shape) {
		b.t = output(nil, dt, shape)
	}
	return b.t
}

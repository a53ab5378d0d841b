package vgg

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gozoo/gozoo/safetensors"
	"github.com/gozoo/gozoo/train"
	"gorgonia.org/tensor"
)

// Net adapts a Model to the training loop (train.Net): it builds and caches
// one training graph and one evaluation graph per batch size it meets, all
// sharing the model's tensors.
type Net struct {
	Model  *Model
	opts   NetOptions
	frozen []string // the parameter names opts.Freeze matches, in model order
	train  map[int]*Graph
	eval   map[int]*Graph
	last   *Graph // the last training graph run
	// params holds, per training graph, the trainable parameters paired
	// with that graph's gradient tensors (built once: Params runs every step).
	params map[*Graph][]train.Param
}

// NetOptions configure a Net.
type NetOptions struct {
	LabelSmoothing float64
	// Freeze lists parameter names or prefixes ("features.") that do not
	// train: they get no gradient and the solver never sees them.
	Freeze []string
}

var _ train.Net = (*Net)(nil)

// NewNet returns the model as a train.Net.
func (m *Model) NewNet(o NetOptions) (*Net, error) {
	matched := make([]bool, len(o.Freeze))
	var frozen []string
	for _, p := range m.params {
		hit := false
		for i, f := range o.Freeze {
			if strings.HasPrefix(p.Name, f) {
				matched[i], hit = true, true
			}
		}
		if hit {
			frozen = append(frozen, p.Name)
		}
	}
	for i, f := range o.Freeze {
		if !matched[i] {
			return nil, fmt.Errorf("vgg: freeze %q matches no parameter of %s: give state_dict names or prefixes such as \"features.\" or \"classifier.6.\"", f, m.Name)
		}
	}
	return &Net{Model: m, opts: o, frozen: frozen, train: map[int]*Graph{}, eval: map[int]*Graph{}}, nil
}

func (n *Net) graph(batch int, training bool) (*Graph, error) {
	cache := n.eval
	if training {
		cache = n.train
	}
	if g, ok := cache[batch]; ok {
		return g, nil
	}
	g, err := n.Model.NewGraph(GraphOptions{Batch: batch, Train: training, Loss: true, LabelSmoothing: n.opts.LabelSmoothing, Frozen: n.frozen})
	if err != nil {
		return nil, err
	}
	cache[batch] = g
	return g, nil
}

// Forward runs one batch; see train.Net.
func (n *Net) Forward(images []float32, labels []int, training bool) (train.Output, error) {
	g, err := n.graph(len(labels), training)
	if err != nil {
		return train.Output{}, err
	}
	if err := g.Run(images, labels); err != nil {
		return train.Output{}, err
	}
	if training {
		n.last = g
	}
	var logits []float32
	switch d := g.OutputValue().Data().(type) {
	case []float32:
		logits = d
	case []float64:
		logits = make([]float32, len(d))
		for i, v := range d {
			logits[i] = float32(v)
		}
	}
	return train.Output{Loss: g.LossValue(), Logits: logits}, nil
}

// Params returns the trainable parameters with the gradients of the last
// training Forward (nil gradients before the first). The slice is built once
// per training graph and shared: callers must not modify it.
func (n *Net) Params() []train.Param {
	if ps, ok := n.params[n.last]; ok {
		return ps
	}
	var grads map[string]*tensor.Dense
	if n.last != nil {
		grads = make(map[string]*tensor.Dense)
		for _, g := range n.last.Grads() {
			grads[g.Name] = g.Value
		}
	}
	var out []train.Param
	for _, p := range n.Model.params {
		if slices.Contains(n.frozen, p.Name) {
			continue
		}
		out = append(out, train.Param{Name: p.Name, Value: p.Value, Grad: grads[p.Name]})
	}
	if n.last != nil {
		if n.params == nil {
			n.params = make(map[*Graph][]train.Param)
		}
		n.params[n.last] = out
	}
	return out
}

// Classes is the number of outputs.
func (n *Net) Classes() int { return n.Model.Opts.Classes }

// State returns the state dict and the model's metadata.
func (n *Net) State() (map[string]safetensors.Tensor, map[string]string) {
	return n.Model.StateDict(), n.Model.Metadata()
}

// LoadState loads a state dict, all or nothing.
func (n *Net) LoadState(t map[string]safetensors.Tensor) error {
	return n.Model.LoadState(t, LoadOptions{})
}

// RandState returns the dropout stream's state.
func (n *Net) RandState() ([]byte, error) { return n.Model.dropout.MarshalBinary() }

// SetRandState restores the dropout stream.
func (n *Net) SetRandState(b []byte) error {
	if err := n.Model.dropout.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("vgg: restore the dropout stream: %w", err)
	}
	return nil
}

// Close releases every graph.
func (n *Net) Close() error {
	for _, c := range []map[int]*Graph{n.train, n.eval} {
		for _, g := range c {
			g.Close()
		}
	}
	return nil
}

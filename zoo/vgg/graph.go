package vgg

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gozoo/gozoo/layers"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GraphOptions configure a Graph built from a Model.
type GraphOptions struct {
	Batch int // images per run; default the model's Options.Batch
	// Train selects training behaviour: batch-norm uses and updates batch
	// statistics, dropout is active. Otherwise batch-norm uses the running
	// statistics and dropout is the identity.
	Train bool
	// Loss adds an integer-label input, the mean cross-entropy of the
	// logits and the gradients of every trainable parameter. It needs a
	// classifier head.
	Loss           bool
	LabelSmoothing float64 // with Loss
	InputGrad      bool    // with Loss: also the gradient with respect to the input
	// Frozen lists parameters (state_dict names) that get no gradient.
	Frozen []string
	// Watch lists layers (names as in Arch.Layers, or block1 … blockN)
	// whose activations are copied out at every run, for Activation.
	Watch []string
}

// Graph is one Gorgonia expression graph of a Model, for a fixed batch size,
// with a TapeMachine to run it. Its parameter nodes are bound to the model's
// tensors.
type Graph struct {
	Model *Model
	Opts  GraphOptions
	G     *G.ExprGraph
	Input *G.Node // (N, C, H, W)
	// Output is the logits (N, classes), or with the none head the feature
	// map (N, C, h, w) or the pooled features (N, C).
	Output *G.Node
	Labels *G.Node // (N) class indices, with Loss
	Loss   *G.Node // scalar, with Loss

	input, labels *tensor.Dense
	nodes         map[string]*G.Node // layer name → activation node
	params        map[string]*G.Node
	grads         []Param // gradient tensors, refreshed by Run
	inputGrad     *tensor.Dense
	reads         map[string]*G.Value // what Run copies out
	machine       G.VM
}

// NewGraph builds a graph of the model.
func (m *Model) NewGraph(o GraphOptions) (*Graph, error) {
	if o.Batch == 0 {
		o.Batch = m.Opts.Batch
	}
	if o.Batch < 0 {
		return nil, fmt.Errorf("vgg: batch size %d: must be positive", o.Batch)
	}
	if o.Loss && m.Opts.Head == HeadNone {
		return nil, fmt.Errorf("vgg: a loss needs a classifier head, and %s has the %q head", m.Name, HeadNone)
	}
	for _, name := range o.Frozen {
		if _, ok := m.byName[name]; !ok {
			return nil, fmt.Errorf("vgg: cannot freeze %q: %s has no such parameter", name, m.Name)
		}
	}
	dt := m.Opts.Dtype
	g := &Graph{Model: m, Opts: o, G: G.NewGraph(), nodes: make(map[string]*G.Node), params: make(map[string]*G.Node)}
	g.input = tensor.New(tensor.Of(dt), tensor.WithShape(o.Batch, m.Opts.InChannels, m.Opts.Height, m.Opts.Width))
	g.Input = G.NodeFromAny(g.G, g.input, G.WithName("input"))
	for _, p := range m.params {
		g.params[p.Name] = G.NodeFromAny(g.G, p.Value, G.WithName(p.Name))
	}
	if err := g.build(); err != nil {
		return nil, err
	}
	if o.Loss {
		if err := g.buildLoss(); err != nil {
			return nil, err
		}
	}
	if err := g.watch(o.Watch...); err != nil {
		return nil, err
	}
	return g, nil
}

// build walks the architecture, one layer at a time.
func (g *Graph) build() error {
	m, train := g.Model, g.Opts.Train
	x := g.Input
	var err error
	for _, l := range m.Layers {
		p := func(suffix string) *G.Node { return g.params[l.Name+suffix] }
		switch l.Kind {
		case Conv:
			x, err = layers.Conv2d(x, p(".weight"), p(".bias"), l.Stride, l.Padding)
		case BatchNorm:
			x, err = layers.BatchNorm2d(x, p(".weight"), p(".bias"), m.stats[l.Name], train)
		case ReLU:
			x, err = layers.ReLU(x)
		case MaxPool:
			x, err = layers.MaxPool2d(x, l.Kernel, l.Stride, l.Padding)
		case AvgPool:
			x, err = layers.AdaptiveAvgPool2d(x, l.Shape[1], l.Shape[2])
		case Flatten:
			x, err = layers.Flatten(x)
		case Linear:
			x, err = layers.Linear(x, p(".weight"), p(".bias"))
		case Dropout:
			x, err = layers.Dropout(x, l.P, m.dropout, train)
		default:
			err = fmt.Errorf("unknown layer kind %q", l.Kind)
		}
		if err != nil {
			return fmt.Errorf("vgg: build %s (%s): %w", l.Name, l.Kind, err)
		}
		g.nodes[l.Name] = x
		if l.Kind == MaxPool && l.Stage > 0 {
			g.nodes[fmt.Sprintf("block%d", l.Stage)] = x
		}
	}
	g.Output = x
	return nil
}

// buildLoss adds the labels, the cross-entropy and the gradients.
func (g *Graph) buildLoss() error {
	m, o := g.Model, g.Opts
	g.labels = tensor.New(tensor.Of(m.Opts.Dtype), tensor.WithShape(o.Batch))
	g.Labels = G.NodeFromAny(g.G, g.labels, G.WithName("labels"))
	var err error
	if g.Loss, err = layers.CrossEntropy(g.Output, g.Labels, o.LabelSmoothing); err != nil {
		return fmt.Errorf("vgg: build loss: %w", err)
	}
	var wrt G.Nodes
	for _, p := range m.params {
		if !slices.Contains(o.Frozen, p.Name) {
			wrt = append(wrt, g.params[p.Name])
			g.grads = append(g.grads, Param{Name: p.Name, Value: tensor.New(tensor.Of(m.Opts.Dtype), tensor.WithShape(p.Value.Shape()...))})
		}
	}
	if o.InputGrad {
		wrt = append(wrt, g.Input)
		g.inputGrad = tensor.New(tensor.Of(m.Opts.Dtype), tensor.WithShape(g.input.Shape()...))
	}
	gradNodes, err := G.Grad(g.Loss, wrt...)
	if err != nil {
		return fmt.Errorf("vgg: differentiate the loss: %w", err)
	}
	g.reads = make(map[string]*G.Value)
	for i, gp := range g.grads {
		g.read("grad."+gp.Name, gradNodes[i], gp.Value)
	}
	if o.InputGrad {
		g.read("grad.input", gradNodes[len(gradNodes)-1], g.inputGrad)
	}
	g.read("loss", g.Loss, nil)
	return nil
}

// read makes every run copy n's value into into (or a new value when into
// is nil): Gorgonia reuses registers within a run, so a node's own value may
// be overwritten by a later op before the run ends.
func (g *Graph) read(key string, n *G.Node, into *tensor.Dense) {
	if g.reads == nil {
		g.reads = make(map[string]*G.Value)
	}
	v := new(G.Value)
	if into != nil {
		*v = into
	}
	G.Read(n, v)
	g.reads[key] = v
	g.machine = nil
}

// Watch asks every later Run to keep a copy of the named layers' outputs
// (see Activation). Watching changes the graph, so its machine is rebuilt.
func (g *Graph) Watch(names ...string) error { return g.watch(names...) }

func (g *Graph) watch(names ...string) error {
	for _, name := range names {
		n, err := g.Node(name)
		if err != nil {
			return err
		}
		if _, ok := g.reads["act."+name]; !ok {
			g.read("act."+name, n, tensor.New(tensor.Of(g.Model.Opts.Dtype), tensor.WithShape(n.Shape()...)))
		}
	}
	if _, ok := g.reads["output"]; !ok {
		g.read("output", g.Output, tensor.New(tensor.Of(g.Model.Opts.Dtype), tensor.WithShape(g.Output.Shape()...)))
	}
	return nil
}

// Node returns the output node of the named layer (features.30,
// classifier.0, block4, ...), for graph-level experiments: put a new head on
// it, read it, differentiate it.
func (g *Graph) Node(name string) (*G.Node, error) {
	n, ok := g.nodes[name]
	if !ok {
		names := make([]string, 0, len(g.nodes))
		for k := range g.nodes {
			names = append(names, k)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("vgg: %s has no layer %q; its layers are %s", g.Model.Name, name, strings.Join(names, ", "))
	}
	return n, nil
}

// Param returns the node of a trainable parameter in this graph.
func (g *Graph) Param(name string) (*G.Node, bool) {
	n, ok := g.params[name]
	return n, ok
}

// Run sets the input to images ((N, C, H, W) row-major, N = the graph's
// batch) and, with a loss, the labels (N class indices), then runs the graph:
// forward, and backward when there is a loss.
func (g *Graph) Run(images []float32, labels []int) error {
	if want := g.input.Shape().TotalSize(); len(images) != want {
		return fmt.Errorf("vgg: got %d input values, want %d for a batch of shape %v", len(images), want, g.input.Shape())
	}
	switch d := g.input.Data().(type) {
	case []float32:
		copy(d, images)
	case []float64:
		for i, v := range images {
			d[i] = float64(v)
		}
	}
	if g.labels != nil {
		if len(labels) != g.Opts.Batch {
			return fmt.Errorf("vgg: got %d labels for a batch of %d", len(labels), g.Opts.Batch)
		}
		classes := g.Model.Opts.Classes
		for i, c := range labels {
			if c < 0 || c >= classes {
				return fmt.Errorf("vgg: label %d of image %d is outside 0..%d", c, i, classes-1)
			}
			switch d := g.labels.Data().(type) {
			case []float32:
				d[i] = float32(c)
			case []float64:
				d[i] = float64(c)
			}
		}
	}
	if g.machine == nil {
		g.machine = G.NewTapeMachine(g.G)
	}
	g.machine.Reset()
	if err := g.machine.RunAll(); err != nil {
		return fmt.Errorf("vgg: run %s: %w", g.Model.Name, err)
	}
	return nil
}

// Output values, valid until the next Run.

// OutputValue is the output of the last Run: logits (N, classes) or features.
func (g *Graph) OutputValue() *tensor.Dense { return (*g.reads["output"]).(*tensor.Dense) }

// LossValue is the loss of the last Run (NaN before the first, or without a loss).
func (g *Graph) LossValue() float64 {
	v, ok := g.reads["loss"]
	if !ok || *v == nil {
		return math.NaN()
	}
	switch s := (*v).Data().(type) {
	case float32:
		return float64(s)
	case float64:
		return s
	}
	return math.NaN()
}

// Grads returns the gradients of the loss with respect to the trainable
// parameters from the last Run, in the order of Model.Params (frozen ones
// left out). Each Run overwrites them.
func (g *Graph) Grads() []Param { return g.grads }

// InputGrad is the gradient of the loss with respect to the input, with
// GraphOptions.InputGrad.
func (g *Graph) InputGrad() *tensor.Dense { return g.inputGrad }

// Activation returns the output of a watched layer from the last Run.
func (g *Graph) Activation(name string) (*tensor.Dense, error) {
	v, ok := g.reads["act."+name]
	if !ok {
		return nil, fmt.Errorf("vgg: layer %q is not watched: pass it in GraphOptions.Watch or call Graph.Watch before Run", name)
	}
	return (*v).(*tensor.Dense), nil
}

// Close releases the graph's machine.
func (g *Graph) Close() error {
	if g.machine != nil {
		return g.machine.Close()
	}
	return nil
}

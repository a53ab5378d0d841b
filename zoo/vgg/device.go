package vgg

import (
	"fmt"
	"math"
	"slices"

	"github.com/gozoo/gozoo/internal/cuda/ops"
	"github.com/gozoo/gozoo/safetensors"
	"github.com/gozoo/gozoo/train"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Device runs a Model on a device backend (the GPU's, internal/cuda/nn, or
// its host emulation, internal/cuda/emu): the same layer walk as Graph, but
// with package ops' device ops, so Gorgonia stays the graph, the autodiff
// and the TapeMachine while activations, gradients, weights, batch-norm
// statistics and the solver's buffers stay on the device. Only the images
// and labels go up, and only the loss and logits come down, each step.
// ops.Check refuses a graph with an op that cannot take device tensors
// before it runs.
//
// Device is a train.Net; its solver is NewSGD's (the device's weights are
// updated on the device, not through Params). The host Model is brought up
// to date by Sync (State does it).
type Device[T any] struct {
	Model  *Model
	b      ops.Backend[T]
	opts   NetOptions
	frozen []string
	params map[string]T // the weights on the device, kept
	stats  map[string]*ops.BNState[T]
	graphs map[deviceKey]*deviceGraph[T]
	last   *deviceGraph[T] // the last training graph run
	err    error           // a failed Sync in State, returned by the next Forward or Logits
}

type deviceKey struct {
	batch       int
	train, loss bool
}

// deviceGraph is one graph of device ops with its machine.
type deviceGraph[T any] struct {
	g              *G.ExprGraph
	input, labels  *G.Node
	labelValues    *tensor.Dense
	output, loss   *G.Node
	grads          map[string]*G.Node
	machine        G.VM
	inShape        []int
	classes, batch int
}

var _ train.Net = (*Device[int])(nil)

// NewDevice uploads m's weights and statistics to b. o is as for NewNet.
// The model must be float32.
func NewDevice[T any](m *Model, b ops.Backend[T], o NetOptions) (*Device[T], error) {
	if m.Opts.Dtype != tensor.Float32 {
		return nil, fmt.Errorf("vgg: a device runs float32 models; %s is %v", m.Name, m.Opts.Dtype)
	}
	n, err := m.NewNet(o) // validates Freeze
	if err != nil {
		return nil, err
	}
	d := &Device[T]{Model: m, b: b, opts: o, frozen: n.frozen, params: map[string]T{}, stats: map[string]*ops.BNState[T]{}, graphs: map[deviceKey]*deviceGraph[T]{}}
	if err := d.upload(); err != nil {
		return nil, err
	}
	return d, nil
}

// upload copies the host model's weights and statistics to the device.
func (d *Device[T]) upload() error {
	up := func(t *tensor.Dense) (T, error) {
		v, err := d.b.Upload(t.Float32s(), t.Shape()...)
		if err == nil {
			d.b.Keep(v)
		}
		return v, err
	}
	for _, p := range d.Model.params {
		old, had := d.params[p.Name]
		v, err := up(p.Value)
		if err != nil {
			return fmt.Errorf("vgg: upload %s: %w", p.Name, err)
		}
		if had {
			d.b.Free(old)
		}
		d.params[p.Name] = v
	}
	for name, s := range d.Model.stats {
		mean, err := up(s.Mean)
		if err != nil {
			return fmt.Errorf("vgg: upload %s.running_mean: %w", name, err)
		}
		v, err := up(s.Var)
		if err != nil {
			return fmt.Errorf("vgg: upload %s.running_var: %w", name, err)
		}
		if old, ok := d.stats[name]; ok {
			d.b.Free(old.Mean, old.Var)
			// Graphs hold the state: update it in place.
			old.Mean, old.Var, old.NumBatchesTracked = mean, v, s.NumBatchesTracked
			continue
		}
		d.stats[name] = &ops.BNState[T]{Mean: mean, Var: v, Eps: s.Eps, Momentum: s.Momentum, NumBatchesTracked: s.NumBatchesTracked}
	}
	// Graphs bind the parameters' device values: rebuild them.
	d.graphs, d.last = map[deviceKey]*deviceGraph[T]{}, nil
	return nil
}

// Sync copies the device's weights and running statistics into the host
// Model (for a checkpoint, an export, or a CPU graph).
func (d *Device[T]) Sync() error {
	for _, p := range d.Model.params {
		v, err := d.b.Download(d.params[p.Name])
		if err != nil {
			return fmt.Errorf("vgg: download %s: %w", p.Name, err)
		}
		copy(p.Value.Float32s(), v)
	}
	for name, s := range d.stats {
		mean, err := d.b.Download(s.Mean)
		if err != nil {
			return fmt.Errorf("vgg: download %s.running_mean: %w", name, err)
		}
		v, err := d.b.Download(s.Var)
		if err != nil {
			return fmt.Errorf("vgg: download %s.running_var: %w", name, err)
		}
		hs := d.Model.stats[name]
		copy(hs.Mean.Float32s(), mean)
		copy(hs.Var.Float32s(), v)
		hs.NumBatchesTracked = s.NumBatchesTracked
	}
	return nil
}

// graph returns the cached graph for a batch size and mode, building it.
func (d *Device[T]) graph(k deviceKey) (*deviceGraph[T], error) {
	if g, ok := d.graphs[k]; ok {
		return g, nil
	}
	m := d.Model
	if k.batch < 1 {
		return nil, fmt.Errorf("vgg: batch size %d: must be positive", k.batch)
	}
	if k.loss && m.Opts.Head == HeadNone {
		return nil, fmt.Errorf("vgg: a loss needs a classifier head, and %s has the %q head", m.Name, HeadNone)
	}
	dg := &deviceGraph[T]{g: G.NewGraph(), grads: map[string]*G.Node{}, batch: k.batch, classes: m.Opts.Classes,
		inShape: []int{k.batch, m.Opts.InChannels, m.Opts.Height, m.Opts.Width}}
	var zero T
	dg.input = G.NodeFromAny(dg.g, ops.NewValue(zero, dg.inShape), G.WithName("input"))
	nodes := map[string]*G.Node{}
	for _, p := range m.params {
		nodes[p.Name] = G.NodeFromAny(dg.g, ops.NewValue(d.params[p.Name], p.Value.Shape()), G.WithName(p.Name))
	}
	x := dg.input
	var err error
	for _, l := range m.Layers {
		p := func(suffix string) *G.Node { return nodes[l.Name+suffix] }
		switch l.Kind {
		case Conv:
			x, err = ops.Conv2d(d.b, x, p(".weight"), p(".bias"), l.Stride, l.Padding)
		case BatchNorm:
			x, err = ops.BatchNorm2d(d.b, x, p(".weight"), p(".bias"), d.stats[l.Name], k.train)
		case ReLU:
			x, err = ops.ReLU(d.b, x)
		case MaxPool:
			x, err = ops.MaxPool2d(d.b, x, l.Kernel, l.Stride, l.Padding)
		case AvgPool:
			x, err = ops.AdaptiveAvgPool2d(d.b, x, l.Shape[1], l.Shape[2])
		case Flatten:
			x, err = ops.Flatten(d.b, x)
		case Linear:
			x, err = ops.Linear(d.b, x, p(".weight"), p(".bias"))
		case Dropout:
			x, err = ops.Dropout(d.b, x, l.P, m.dropout, k.train)
		default:
			err = fmt.Errorf("unknown layer kind %q", l.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("vgg: build %s (%s) on the device: %w", l.Name, l.Kind, err)
		}
	}
	dg.output = x
	if k.loss {
		dg.labelValues = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(k.batch))
		dg.labels = G.NodeFromAny(dg.g, dg.labelValues, G.WithName("labels"))
		if dg.loss, err = ops.CrossEntropy(d.b, dg.output, dg.labels, d.opts.LabelSmoothing); err != nil {
			return nil, fmt.Errorf("vgg: build the loss on the device: %w", err)
		}
		if k.train {
			var names []string
			var wrt G.Nodes
			for _, p := range m.params {
				if !slices.Contains(d.frozen, p.Name) {
					names = append(names, p.Name)
					wrt = append(wrt, nodes[p.Name])
				}
			}
			gs, err := G.Grad(dg.loss, wrt...)
			if err != nil {
				return nil, fmt.Errorf("vgg: differentiate the loss on the device: %w", err)
			}
			for i, name := range names {
				dg.grads[name] = gs[i]
			}
		}
	}
	if err := ops.Check(dg.g); err != nil {
		return nil, fmt.Errorf("vgg: %s on the device: %w", m.Name, err)
	}
	dg.machine = G.NewTapeMachine(dg.g)
	d.graphs[k] = dg
	return dg, nil
}

// run recycles the last run's buffers, uploads the batch and runs g.
func (d *Device[T]) run(g *deviceGraph[T], images []float32, labels []int) error {
	if d.err != nil {
		return fmt.Errorf("vgg: an earlier download from the device failed (the last checkpoint may be stale): %w", d.err)
	}
	if want := g.batch * g.inShape[1] * g.inShape[2] * g.inShape[3]; len(images) != want {
		return fmt.Errorf("vgg: got %d input values, want %d for a batch of shape %v", len(images), want, g.inShape)
	}
	d.b.Recycle()
	x, err := d.b.Upload(images, g.inShape...)
	if err != nil {
		return fmt.Errorf("vgg: upload the batch: %w", err)
	}
	if err := G.Let(g.input, ops.NewValue(x, g.inShape)); err != nil {
		return err
	}
	if g.labels != nil {
		if len(labels) != g.batch {
			return fmt.Errorf("vgg: got %d labels for a batch of %d", len(labels), g.batch)
		}
		lv := g.labelValues.Float32s()
		for i, c := range labels {
			if c < 0 || c >= g.classes {
				return fmt.Errorf("vgg: label %d of image %d is outside 0..%d", c, i, g.classes-1)
			}
			lv[i] = float32(c)
		}
	}
	g.machine.Reset()
	if err := g.machine.RunAll(); err != nil {
		return fmt.Errorf("vgg: run %s on the device: %w", d.Model.Name, err)
	}
	return nil
}

// value returns a node's device tensor after a run.
func value[T any](n *G.Node) T { return n.Value().(*ops.Value[T]).T }

// Forward runs one batch on the device: see train.Net. With training the
// gradients stay on the device for the solver of NewSGD.
func (d *Device[T]) Forward(images []float32, labels []int, training bool) (train.Output, error) {
	g, err := d.graph(deviceKey{batch: len(labels), train: training, loss: true})
	if err != nil {
		return train.Output{}, err
	}
	if err := d.run(g, images, labels); err != nil {
		return train.Output{}, err
	}
	if training {
		d.last = g
	}
	loss, err := d.b.Download(value[T](g.loss))
	if err != nil {
		return train.Output{}, err
	}
	logits, err := d.b.Download(value[T](g.output))
	if err != nil {
		return train.Output{}, err
	}
	return train.Output{Loss: float64(loss[0]), Logits: logits}, nil
}

// Logits runs inference (evaluation mode) on a batch of images, (N, C, H,
// W) row-major, and returns the model's output, (N, classes) row-major for a
// classifier.
func (d *Device[T]) Logits(images []float32) ([]float32, error) {
	per := d.Model.Opts.InChannels * d.Model.Opts.Height * d.Model.Opts.Width
	if len(images) == 0 || len(images)%per != 0 {
		return nil, fmt.Errorf("vgg: %d input values are not a whole number of %d×%d×%d images", len(images), d.Model.Opts.InChannels, d.Model.Opts.Height, d.Model.Opts.Width)
	}
	g, err := d.graph(deviceKey{batch: len(images) / per})
	if err != nil {
		return nil, err
	}
	if err := d.run(g, images, nil); err != nil {
		return nil, err
	}
	return d.b.Download(value[T](g.output))
}

// Params returns the host parameters without gradients: the gradients live
// on the device, where NewSGD's solver uses them. The host values are stale
// until Sync.
func (d *Device[T]) Params() []train.Param {
	var out []train.Param
	for _, p := range d.Model.params {
		if !slices.Contains(d.frozen, p.Name) {
			out = append(out, train.Param{Name: p.Name, Value: p.Value})
		}
	}
	return out
}

// Classes is the number of outputs.
func (d *Device[T]) Classes() int { return d.Model.Opts.Classes }

// State syncs the host model and returns its state dict and metadata.
func (d *Device[T]) State() (map[string]safetensors.Tensor, map[string]string) {
	// train.Net's State has no error: a failed download leaves the host
	// copy as it was, and the next Forward or Logits reports it.
	d.err = d.Sync()
	return d.Model.StateDict(), d.Model.Metadata()
}

// LoadState loads a state dict into the host model and uploads it.
func (d *Device[T]) LoadState(t map[string]safetensors.Tensor) error {
	if err := d.Model.LoadState(t, LoadOptions{}); err != nil {
		return err
	}
	return d.upload()
}

// RandState returns the dropout stream's state.
func (d *Device[T]) RandState() ([]byte, error) { return d.Model.dropout.MarshalBinary() }

// SetRandState restores the dropout stream.
func (d *Device[T]) SetRandState(b []byte) error {
	if err := d.Model.dropout.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("vgg: restore the dropout stream: %w", err)
	}
	return nil
}

// Allocs counts the backend's device allocations so far: after the first
// step of a batch size it stays put.
func (d *Device[T]) Allocs() int { return d.b.Allocs() }

// DeviceSGD is train.SGD on the device: it updates a Device's weights with
// the gradients of its last training Forward, keeping the momentum buffers on
// the device. Its State and LoadState use train.SGD's format, so checkpoints
// move between the CPU and the device.
type DeviceSGD[T any] struct {
	d     *Device[T]
	cfg   train.SGDConfig
	step  int
	bufs  map[string]T
	fresh map[string]bool
}

var _ train.Optimizer = (*DeviceSGD[int])(nil)

// NewSGD returns the device's SGD solver (train.NewSGD's checks apply).
func (d *Device[T]) NewSGD(cfg train.SGDConfig) (*DeviceSGD[T], error) {
	if _, err := train.NewSGD(cfg); err != nil {
		return nil, err
	}
	return &DeviceSGD[T]{d: d, cfg: cfg, bufs: map[string]T{}, fresh: map[string]bool{}}, nil
}

// Step updates every trainable weight with learning rate lr; params is
// ignored (the weights and gradients are the device's).
func (s *DeviceSGD[T]) Step(_ []train.Param, lr float64) error {
	if lr < 0 || math.IsNaN(lr) || math.IsInf(lr, 0) {
		return fmt.Errorf("sgd: learning rate %v: want a finite value >= 0", lr)
	}
	g := s.d.last
	if g == nil {
		return fmt.Errorf("sgd: no training Forward on the device yet: nothing to step")
	}
	b, c := s.d.b, s.cfg
	for _, p := range s.d.Model.params {
		gn, ok := g.grads[p.Name]
		if !ok {
			continue
		}
		var buf T
		fresh := false
		if c.Momentum != 0 {
			var have bool
			if buf, have = s.bufs[p.Name]; !have {
				var err error
				if buf, err = b.Upload(make([]float32, p.Value.Len()), p.Value.Shape()...); err != nil {
					return fmt.Errorf("sgd: momentum buffer of %s: %w", p.Name, err)
				}
				b.Keep(buf)
				s.bufs[p.Name], s.fresh[p.Name] = buf, true
			}
			fresh = s.fresh[p.Name]
		}
		if err := b.SGDStep(s.d.params[p.Name], value[T](gn), buf, lr, c.WeightDecay, c.Momentum, c.Dampening, c.Nesterov, fresh); err != nil {
			return fmt.Errorf("sgd: %s: %w", p.Name, err)
		}
		s.fresh[p.Name] = false
	}
	s.step++
	return nil
}

// State returns train.SGD's state, with the momentum buffers downloaded.
func (s *DeviceSGD[T]) State() (train.OptimizerState, error) {
	cfg := s.cfg
	st := train.OptimizerState{Kind: train.KindSGD, Step: s.step, SGD: &cfg, Tensors: map[string]*tensor.Dense{}}
	for name, buf := range s.bufs {
		if s.fresh[name] {
			continue // allocated, never stepped: torch has no buffer yet
		}
		v, err := s.d.b.Download(buf)
		if err != nil {
			return st, fmt.Errorf("sgd: download the momentum of %s: %w", name, err)
		}
		st.Tensors[name+".momentum_buffer"] = tensor.New(tensor.WithShape(s.d.b.ShapeOf(buf)...), tensor.WithBacking(v))
	}
	return st, nil
}

// LoadState checks st with train.SGD's rules and uploads its buffers.
func (s *DeviceSGD[T]) LoadState(st train.OptimizerState) error {
	check, err := train.NewSGD(s.cfg)
	if err != nil {
		return err
	}
	if err := check.LoadState(st); err != nil {
		return err
	}
	byName := map[string]Param{}
	for _, p := range s.d.Model.params {
		byName[p.Name] = p
	}
	bufs := map[string]T{}
	for key, t := range st.Tensors {
		name := key[:len(key)-len(".momentum_buffer")]
		p, ok := byName[name]
		if !ok || t.Dtype() != tensor.Float32 || !t.Shape().Eq(p.Value.Shape()) {
			return fmt.Errorf("sgd: state %q does not fit %s: the checkpoint belongs to another model", key, s.d.Model.Name)
		}
		v, err := s.d.b.Upload(t.Float32s(), t.Shape()...)
		if err != nil {
			return err
		}
		s.d.b.Keep(v)
		bufs[name] = v
	}
	for _, old := range s.bufs {
		s.d.b.Free(old)
	}
	s.step, s.bufs, s.fresh = st.Step, bufs, map[string]bool{}
	return nil
}

package vgg

import (
	"fmt"
	"math/rand/v2"

	"github.com/gozoo/gozoo/layers"
	"gorgonia.org/tensor"
)

// Param is one trainable tensor of a model, named as in torchvision's
// state_dict.
type Param struct {
	Name  string
	Value *tensor.Dense
}

// Model is an Arch with its parameters: the weights and biases of every
// Conv2d, BatchNorm2d and Linear layer, the batch-norm running statistics and
// the dropout random stream. Graphs built from a Model share all of them.
type Model struct {
	*Arch
	params  []Param
	byName  map[string]*tensor.Dense
	stats   map[string]*layers.BNStats // by layer name, e.g. "features.1"
	dropout *rand.PCG
}

// New builds the named variant ("vgg11" … "vgg19_bn") and initialises its
// weights from opts.Seed as torchvision does: convolution weights Kaiming
// normal (fan_out, ReLU), linear weights N(0, 0.01²), biases 0, batch-norm
// weights 1. The same seed gives bit-identical weights on every run.
func New(name string, opts Options) (*Model, error) {
	a, err := NewArch(name, opts)
	if err != nil {
		return nil, err
	}
	return FromArch(a)
}

// FromArch allocates and initialises the parameters of a.
func FromArch(a *Arch) (*Model, error) {
	m := &Model{
		Arch:    a,
		byName:  make(map[string]*tensor.Dense),
		stats:   make(map[string]*layers.BNStats),
		dropout: rand.NewPCG(a.Opts.Seed, 0xd0),
	}
	dt := a.Opts.Dtype
	param := func(name string, shape ...int) *tensor.Dense {
		t := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
		m.params = append(m.params, Param{Name: name, Value: t})
		m.byName[name] = t
		return t
	}
	for _, l := range a.Layers {
		switch l.Kind {
		case Conv:
			param(l.Name+".weight", l.Out, l.In, l.Kernel, l.Kernel)
			param(l.Name+".bias", l.Out)
		case BatchNorm:
			param(l.Name+".weight", l.Out)
			param(l.Name+".bias", l.Out)
			s := layers.NewBNStats(dt, l.Out)
			m.stats[l.Name] = s
			m.byName[l.Name+".running_mean"] = s.Mean
			m.byName[l.Name+".running_var"] = s.Var
		case Linear:
			param(l.Name+".weight", l.Out, l.In)
			param(l.Name+".bias", l.Out)
		}
	}
	if err := m.Init(a.Opts.Seed); err != nil {
		return nil, err
	}
	return m, nil
}

// Init re-initialises every parameter from seed (torchvision's scheme, see
// New) and resets the batch-norm running statistics.
func (m *Model) Init(seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for _, l := range m.Layers {
		var err error
		switch l.Kind {
		case Conv:
			err = layers.KaimingNormal(m.byName[l.Name+".weight"], r)
			if err == nil {
				err = layers.Fill(m.byName[l.Name+".bias"], 0)
			}
		case BatchNorm:
			err = layers.Fill(m.byName[l.Name+".weight"], 1)
			if err == nil {
				err = layers.Fill(m.byName[l.Name+".bias"], 0)
			}
			s := m.stats[l.Name]
			if err == nil {
				err = layers.Fill(s.Mean, 0)
			}
			if err == nil {
				err = layers.Fill(s.Var, 1)
			}
			s.NumBatchesTracked = 0
		case Linear:
			err = layers.Normal(m.byName[l.Name+".weight"], 0, 0.01, r)
			if err == nil {
				err = layers.Fill(m.byName[l.Name+".bias"], 0)
			}
		}
		if err != nil {
			return fmt.Errorf("vgg: initialise %s: %w", l.Name, err)
		}
	}
	m.dropout.Seed(seed, 0xd0)
	return nil
}

// Params returns the trainable parameters in torchvision's state_dict order.
// The tensors are the model's own: changing them changes the model.
func (m *Model) Params() []Param { return m.params }

// Tensor returns a parameter or running statistic by its state_dict name
// (features.0.weight, features.1.running_var, ...).
func (m *Model) Tensor(name string) (*tensor.Dense, bool) {
	t, ok := m.byName[name]
	return t, ok
}

// BatchNormStats returns the running statistics of the BatchNorm2d layer of
// the given name (e.g. "features.1"), or nil.
func (m *Model) BatchNormStats(layer string) *layers.BNStats { return m.stats[layer] }

// DropoutSource is the random stream the dropout layers draw their masks
// from; it can be marshalled into a checkpoint and restored.
func (m *Model) DropoutSource() *rand.PCG { return m.dropout }

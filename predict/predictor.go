package predict

import (
	"fmt"
	"image"
	"math"
	"slices"
	"sync"

	"github.com/gozoo/gozoo/zoo/vgg"
	"gorgonia.org/tensor"
)

// Options configure a Predictor.
type Options struct {
	// Mean and Std normalize each channel (R, G, B): (pixel/255 − Mean) /
	// Std, as the model was trained. Both zero means CIFAR-10's training
	// statistics (the zoo train default).
	Mean, Std [3]float32
	// Classes names the model's outputs; nil means "class 0", "class 1", ...
	Classes []string
	// MaxBatch is the most images one forward pass takes (default 32):
	// longer lists run in chunks. Each batch size met gets its own graph.
	MaxBatch int
	// Logits, when set, computes the logits of a batch of preprocessed
	// images, x (N, 3, H, W) → (N, classes) row-major, in place of the
	// model's CPU graph: a vgg.Device's Logits runs them on a GPU (zoo
	// predict|serve --device cuda). Features always run on the CPU.
	Logits func(x []float32) ([]float32, error)
}

// cifarMean and cifarStd are CIFAR-10's training statistics, the default
// normalization (the same values as cifar10.DefaultMean and DefaultStd).
var (
	cifarMean = [3]float32{0.4914, 0.4822, 0.4465}
	cifarStd  = [3]float32{0.2470, 0.2435, 0.2616}
)

// Predictor runs a model on images. It is safe for concurrent use.
type Predictor struct {
	model     *vgg.Model
	transform Transform
	classes   []string
	maxBatch  int
	logits    func([]float32) ([]float32, error) // Options.Logits

	mu     sync.Mutex
	graphs map[graphKey]*vgg.Graph
}

// graphKey identifies a cached graph: its batch size and watched layer ("" for none).
type graphKey struct {
	batch int
	layer string
}

// New returns a Predictor for m, a model with a 3-channel input.
func New(m *vgg.Model, o Options) (*Predictor, error) {
	if m.Opts.InChannels != 3 {
		return nil, fmt.Errorf("predict: %s takes %d input channels; images are RGB, so the model needs 3", m.Name, m.Opts.InChannels)
	}
	if o.Mean == [3]float32{} && o.Std == [3]float32{} {
		o.Mean, o.Std = cifarMean, cifarStd
	}
	for c, s := range o.Std {
		if !(s > 0) {
			return nil, fmt.Errorf("predict: std[%d] = %g: want three positive values", c, s)
		}
	}
	outputs := m.OutputShape()
	classes := o.Classes
	if m.Opts.Head != vgg.HeadNone {
		n := outputs[0]
		if classes == nil {
			for i := range n {
				classes = append(classes, fmt.Sprintf("class %d", i))
			}
		}
		if len(classes) != n {
			return nil, fmt.Errorf("predict: %d class names for the %d outputs of %s", len(classes), n, m.Name)
		}
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 32
	}
	if o.MaxBatch < 0 {
		return nil, fmt.Errorf("predict: max batch %d: want a positive number", o.MaxBatch)
	}
	return &Predictor{
		model:     m,
		transform: Transform{Height: m.Opts.Height, Width: m.Opts.Width, Mean: o.Mean, Std: o.Std},
		classes:   slices.Clone(classes),
		maxBatch:  o.MaxBatch,
		logits:    o.Logits,
		graphs:    make(map[graphKey]*vgg.Graph),
	}, nil
}

// Model returns the model the predictor runs.
func (p *Predictor) Model() *vgg.Model { return p.model }

// Classes returns the class names, one per output.
func (p *Predictor) Classes() []string { return p.classes }

// Transform returns the preprocessing the predictor applies to images.
func (p *Predictor) Transform() Transform { return p.transform }

// InputSize is the number of float32 values of one preprocessed image:
// 3·H·W.
func (p *Predictor) InputSize() int { return 3 * p.transform.Height * p.transform.Width }

// Layers lists the names Features accepts: every layer of the model
// (features.0 … classifier.N) in order, then the stages block1 … blockN
// (the output of each stage's max pool).
func (p *Predictor) Layers() []string {
	var names, blocks []string
	for _, l := range p.model.Layers {
		names = append(names, l.Name)
		if l.Kind == vgg.MaxPool && l.Stage > 0 {
			blocks = append(blocks, fmt.Sprintf("block%d", l.Stage))
		}
	}
	return append(names, blocks...)
}

// Class is one class with its probability.
type Class struct {
	Index       int     `json:"class"`
	Label       string  `json:"label"`
	Probability float64 `json:"probability"`
}

// Prediction is the model's answer for one image.
type Prediction struct {
	// Probabilities is the softmax of the logits, one per class.
	Probabilities []float64
	// Top is the k most probable classes, most probable first (ties: lower
	// index first).
	Top []Class
}

// Predict preprocesses the images and predicts each, with its k most
// probable classes (k ≤ 0 or more than the classes means all of them).
func (p *Predictor) Predict(images []image.Image, k int) ([]Prediction, error) {
	x, err := p.preprocess(images)
	if err != nil {
		return nil, err
	}
	return p.PredictInputs(x, k)
}

func (p *Predictor) preprocess(images []image.Image) ([]float32, error) {
	n := p.InputSize()
	x := make([]float32, len(images)*n)
	for i, img := range images {
		if _, err := p.transform.Apply(img, x[i*n:(i+1)*n]); err != nil {
			return nil, fmt.Errorf("predict: image %d: %w", i, err)
		}
	}
	return x, nil
}

// PredictInputs predicts preprocessed images: x is (N, 3, H, W) row-major,
// as Transform.Apply writes them, with any N ≥ 1.
func (p *Predictor) PredictInputs(x []float32, k int) ([]Prediction, error) {
	if p.model.Opts.Head == vgg.HeadNone {
		return nil, fmt.Errorf("predict: %s has no classifier head: use Features", p.model.Name)
	}
	logits, err := p.run(x, "")
	if err != nil {
		return nil, err
	}
	classes := len(p.classes)
	out := make([]Prediction, len(logits.Data)/classes)
	for i := range out {
		probs := softmax(logits.Data[i*classes : (i+1)*classes])
		out[i] = Prediction{Probabilities: probs, Top: p.top(probs, k)}
	}
	return out, nil
}

// softmax computes exp(z − max z) / Σ in float64, per row (never
// Gorgonia's, which shifts by the wrong maximum).
func softmax(z []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, float64(v))
	}
	out := make([]float64, len(z))
	var sum float64
	for i, v := range z {
		out[i] = math.Exp(float64(v) - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func (p *Predictor) top(probs []float64, k int) []Class {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case probs[a] > probs[b]:
			return -1
		case probs[a] < probs[b]:
			return 1
		}
		return 0
	})
	if k <= 0 || k > len(idx) {
		k = len(idx)
	}
	out := make([]Class, k)
	for i, c := range idx[:k] {
		out[i] = Class{Index: c, Label: p.classes[c], Probability: probs[c]}
	}
	return out
}

// Tensor is a float32 tensor: Data holds the values of Shape, row-major.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Features preprocesses the images and returns the named layer's output
// (see Layers) for each: (N, C, h, w) for a feature map, (N, F) after
// flattening.
func (p *Predictor) Features(images []image.Image, layer string) (*Tensor, error) {
	x, err := p.preprocess(images)
	if err != nil {
		return nil, err
	}
	return p.FeaturesInputs(x, layer)
}

// FeaturesInputs is Features on preprocessed images, x (N, 3, H, W).
func (p *Predictor) FeaturesInputs(x []float32, layer string) (*Tensor, error) {
	if layer == "" || !slices.Contains(p.Layers(), layer) {
		return nil, fmt.Errorf("predict: %s has no layer %q; zoo features --list prints its layers", p.model.Name, layer)
	}
	return p.run(x, layer)
}

// run runs x (N, 3, H, W) through the model in chunks of at most MaxBatch
// images and gathers the output, or the named layer's activation, into one
// (N, ...) tensor.
func (p *Predictor) run(x []float32, layer string) (*Tensor, error) {
	per := p.InputSize()
	if len(x) == 0 || len(x)%per != 0 {
		return nil, fmt.Errorf("predict: %d input values: want a positive multiple of 3·%d·%d = %d", len(x), p.transform.Height, p.transform.Width, per)
	}
	n := len(x) / per
	p.mu.Lock()
	defer p.mu.Unlock()
	var out *Tensor
	for start := 0; start < n; start += p.maxBatch {
		b := min(p.maxBatch, n-start)
		if layer == "" && p.logits != nil {
			v, err := p.logits(x[start*per : (start+b)*per])
			if err != nil {
				return nil, fmt.Errorf("predict: %w", err)
			}
			if out == nil {
				out = &Tensor{Shape: []int{n, len(v) / b}, Data: make([]float32, 0, n*(len(v)/b))}
			}
			out.Data = append(out.Data, v...)
			continue
		}
		g, err := p.graph(b, layer)
		if err != nil {
			return nil, err
		}
		if err := g.Run(x[start*per:(start+b)*per], nil); err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		v := g.OutputValue()
		if layer != "" {
			if v, err = g.Activation(layer); err != nil {
				return nil, fmt.Errorf("predict: %w", err)
			}
		}
		shape := v.Shape()
		if out == nil {
			out = &Tensor{Shape: append([]int{n}, shape[1:]...)}
			out.Data = make([]float32, 0, n*shape[1:].TotalSize())
		}
		out.Data = appendValues(out.Data, v)
	}
	return out, nil
}

// appendValues appends t's values as float32 (a float64 model's too).
func appendValues(dst []float32, t *tensor.Dense) []float32 {
	switch d := t.Data().(type) {
	case []float32:
		return append(dst, d...)
	case []float64:
		for _, v := range d {
			dst = append(dst, float32(v))
		}
	}
	return dst
}

// graph returns the cached graph for a batch size and watched layer,
// building it on first use. The caller holds p.mu.
func (p *Predictor) graph(batch int, layer string) (*vgg.Graph, error) {
	key := graphKey{batch, layer}
	if g, ok := p.graphs[key]; ok {
		return g, nil
	}
	o := vgg.GraphOptions{Batch: batch}
	if layer != "" {
		o.Watch = []string{layer}
	}
	g, err := p.model.NewGraph(o)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	p.graphs[key] = g
	return g, nil
}

// Close releases the cached graphs. The predictor builds new ones if used
// again.
func (p *Predictor) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, g := range p.graphs {
		g.Close()
		delete(p.graphs, k)
	}
	return nil
}

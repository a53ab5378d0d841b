package vgg

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"gorgonia.org/tensor"
)

// Stage is one block of 3×3 convolutions (padding 1), each followed by an
// optional BatchNorm2d and a ReLU, and closed by a 2×2 max pool of stride 2.
// Its entries are the output channels of the convolutions.
type Stage []int

// Configs are the paper's configurations, as torchvision's cfgs (with the "M"
// pooling markers turned into stage boundaries).
var Configs = map[string][]Stage{
	"A": {{64}, {128}, {256, 256}, {512, 512}, {512, 512}},
	"B": {{64, 64}, {128, 128}, {256, 256}, {512, 512}, {512, 512}},
	"D": {{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}},
	"E": {{64, 64}, {128, 128}, {256, 256, 256, 256}, {512, 512, 512, 512}, {512, 512, 512, 512}},
}

// variants maps each base name to its configuration.
var variants = map[string]string{"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}

// Names returns the eight model names, sorted: vgg11, vgg11_bn, … vgg19_bn.
func Names() []string {
	var names []string
	for base := range variants {
		names = append(names, base, base+"_bn")
	}
	sort.Strings(names)
	return names
}

// Head is the part of the network after the convolutional features.
type Head string

const (
	// HeadCIFAR flattens the last pool's output and applies one Linear layer
	// (classifier.0): Linear(512·width·h·w, classes), where h×w is the last
	// pool's spatial size (1×1 at 32×32 input).
	HeadCIFAR Head = "cifar"
	// HeadImageNet is torchvision's head: AdaptiveAvgPool2d(7, 7) (avgpool),
	// then classifier.0 Linear(C·49, 4096), .1 ReLU, .2 Dropout, .3
	// Linear(4096, 4096), .4 ReLU, .5 Dropout, .6 Linear(4096, classes).
	// The 4096 hidden features are scaled by Options.Width too.
	HeadImageNet Head = "imagenet"
	// HeadNone ends at the features (N, C, h, w), or (N, C) when
	// Options.Pool asks for global pooling.
	HeadNone Head = "none"
)

// Options configure a VGG variant. The zero value of each field means its
// default, so Options{} is the CIFAR-10 model at 32×32.
type Options struct {
	BatchNorm  bool    // insert BatchNorm2d after every convolution (the _bn variants)
	Classes    int     // outputs of the last Linear layer; default 10
	InChannels int     // channels of the input image; default 3
	Height     int     // input height, at least 2^stages (32 for the standard configurations); default 32
	Width      int     // input width, likewise; default 32
	Batch      int     // default batch size of graphs built from the model; default 1
	Head       Head    // default HeadCIFAR
	Pool       string  // with HeadNone: "" (keep the feature map), "avg" or "max" (global pooling to (N, C))
	Dropout    float64 // dropout probability of the imagenet head; default 0.5; use NoDropout for 0
	WidthMult  float64 // scales every channel count (and the imagenet head's hidden size); default 1
	Stages     []Stage // a custom configuration, instead of the named one
	Seed       uint64  // seeds the initial weights and the dropout stream
	Dtype      tensor.Dtype
}

// NoDropout, as Options.Dropout, disables the imagenet head's dropout
// (0 means the default 0.5).
const NoDropout = -1

// withDefaults fills in defaults and validates the options.
func (o Options) withDefaults() (Options, error) {
	if o.Classes == 0 {
		o.Classes = 10
	}
	if o.InChannels == 0 {
		o.InChannels = 3
	}
	if o.Height == 0 {
		o.Height = 32
	}
	if o.Width == 0 {
		o.Width = 32
	}
	if o.Batch == 0 {
		o.Batch = 1
	}
	if o.Head == "" {
		o.Head = HeadCIFAR
	}
	switch {
	case o.Dropout == 0:
		o.Dropout = 0.5
	case o.Dropout == NoDropout:
		o.Dropout = 0
	}
	if o.WidthMult == 0 {
		o.WidthMult = 1
	}
	if o.Dtype == (tensor.Dtype{}) {
		o.Dtype = tensor.Float32
	}
	switch {
	case o.Classes < 0:
		return o, fmt.Errorf("vgg: %d classes: the number of classes must be positive", o.Classes)
	case o.InChannels < 0:
		return o, fmt.Errorf("vgg: %d input channels: must be positive", o.InChannels)
	case o.Batch < 0:
		return o, fmt.Errorf("vgg: batch size %d: must be positive", o.Batch)
	case o.Dropout < 0 || o.Dropout >= 1:
		return o, fmt.Errorf("vgg: dropout %g: must be in [0, 1)", o.Dropout)
	case o.WidthMult < 0 || math.IsNaN(o.WidthMult) || math.IsInf(o.WidthMult, 0):
		return o, fmt.Errorf("vgg: width multiplier %g: must be positive", o.WidthMult)
	case o.Dtype != tensor.Float32 && o.Dtype != tensor.Float64:
		return o, fmt.Errorf("vgg: dtype %v: only float32 and float64 are supported", o.Dtype)
	}
	switch o.Head {
	case HeadCIFAR, HeadImageNet, HeadNone:
	default:
		return o, fmt.Errorf("vgg: unknown head %q: use %q, %q or %q", o.Head, HeadCIFAR, HeadImageNet, HeadNone)
	}
	switch o.Pool {
	case "":
	case "avg", "max":
		if o.Head != HeadNone {
			return o, fmt.Errorf("vgg: global %s pooling applies only to the %q head, not %q", o.Pool, HeadNone, o.Head)
		}
	default:
		return o, fmt.Errorf("vgg: unknown pooling %q: use \"avg\", \"max\" or none", o.Pool)
	}
	return o, nil
}

// scale applies the width multiplier: max(1, ⌊c·width + ½⌋).
func scale(c int, width float64) int {
	return max(1, int(math.Floor(float64(c)*width+0.5)))
}

// Kind names what a layer does.
type Kind string

// The kinds of layer an Arch is made of.
const (
	Conv      Kind = "Conv2d"
	BatchNorm Kind = "BatchNorm2d"
	ReLU      Kind = "ReLU"
	MaxPool   Kind = "MaxPool2d"
	AvgPool   Kind = "AdaptiveAvgPool2d"
	Flatten   Kind = "Flatten"
	Linear    Kind = "Linear"
	Dropout   Kind = "Dropout"
)

// Layer is one layer of an Arch. Name is torchvision's module name
// (features.0, avgpool, classifier.6; "flatten" and the global "pool" of the
// none head are ours). Shape is the output shape of one image: (C, H, W)
// after features, (F) after flattening.
type Layer struct {
	Name    string
	Kind    Kind
	In, Out int // channels (Conv2d, BatchNorm2d) or features (Linear)
	Kernel  int // Conv2d, MaxPool2d
	Stride  int
	Padding int
	P       float64 // Dropout
	Shape   []int
	Params  int   // trainable parameters
	MACs    int64 // multiply-accumulates per image
	Stage   int   // 1-based stage of a feature layer; 0 in the head
}

// String describes the layer as PyTorch prints its module.
func (l Layer) String() string {
	switch l.Kind {
	case Conv:
		return fmt.Sprintf("Conv2d(%d, %d, kernel_size=(%d, %d), stride=(%d, %d), padding=(%d, %d))", l.In, l.Out, l.Kernel, l.Kernel, l.Stride, l.Stride, l.Padding, l.Padding)
	case BatchNorm:
		return fmt.Sprintf("BatchNorm2d(%d, eps=1e-05, momentum=0.1)", l.Out)
	case MaxPool:
		return fmt.Sprintf("MaxPool2d(kernel_size=%d, stride=%d, padding=%d)", l.Kernel, l.Stride, l.Padding)
	case AvgPool:
		return fmt.Sprintf("AdaptiveAvgPool2d(output_size=(%d, %d))", l.Shape[1], l.Shape[2])
	case Linear:
		return fmt.Sprintf("Linear(in_features=%d, out_features=%d)", l.In, l.Out)
	case Dropout:
		return fmt.Sprintf("Dropout(p=%g)", l.P)
	}
	return string(l.Kind) + "()"
}

// Arch is a VGG architecture: its effective options and its layers in order.
type Arch struct {
	Name   string // e.g. "vgg16_bn", or "custom" / "custom_bn"
	Opts   Options
	Layers []Layer
}

// Params is the number of trainable parameters.
func (a *Arch) Params() int {
	n := 0
	for _, l := range a.Layers {
		n += l.Params
	}
	return n
}

// MACs is the number of multiply-accumulates of one forward pass of one image.
func (a *Arch) MACs() int64 {
	var n int64
	for _, l := range a.Layers {
		n += l.MACs
	}
	return n
}

// OutputShape is the shape of the network's output for one image.
func (a *Arch) OutputShape() []int { return a.Layers[len(a.Layers)-1].Shape }

// Layer returns the layer of the given name.
func (a *Arch) Layer(name string) (Layer, bool) {
	i := slices.IndexFunc(a.Layers, func(l Layer) bool { return l.Name == name })
	if i < 0 {
		return Layer{}, false
	}
	return a.Layers[i], true
}

// ParseName splits a model name into its configuration and BatchNorm flag:
// "vgg16_bn" is ("D", true). An unknown name is an error listing the valid ones.
func ParseName(name string) (config string, bn bool, err error) {
	base, bn := strings.CutSuffix(name, "_bn")
	config, ok := variants[base]
	if !ok {
		return "", false, fmt.Errorf("vgg: unknown model %q; valid names: %s", name, strings.Join(Names(), ", "))
	}
	return config, bn, nil
}

// NewArch returns the architecture of the named variant ("vgg11" … "vgg19_bn")
// under opts. A "_bn" name sets opts.BatchNorm. With opts.Stages set, name
// only labels the model ("custom" if empty) and the stages are used instead.
func NewArch(name string, opts Options) (*Arch, error) {
	stages := opts.Stages
	if stages == nil {
		config, bn, err := ParseName(name)
		if err != nil {
			return nil, err
		}
		stages = Configs[config]
		opts.BatchNorm = opts.BatchNorm || bn
	} else if name == "" {
		name = "custom"
	}
	if opts.BatchNorm && !strings.HasSuffix(name, "_bn") {
		name += "_bn"
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	layers, err := makeLayers(stages, opts)
	if err != nil {
		return nil, err
	}
	opts.Stages = stages
	return &Arch{Name: name, Opts: opts, Layers: layers}, nil
}

// makeLayers is the configuration walker, torchvision's make_layers plus
// the head: it lists every layer with its torchvision name and shapes.
func makeLayers(stages []Stage, o Options) ([]Layer, error) {
	if len(stages) == 0 {
		return nil, fmt.Errorf("vgg: the configuration has no stages")
	}
	minSide := 1 << len(stages)
	if o.Height < minSide || o.Width < minSide {
		return nil, fmt.Errorf("vgg: input %dx%d is too small: %d stages halve it %d times, so it must be at least %dx%d",
			o.Height, o.Width, len(stages), len(stages), minSide, minSide)
	}
	var ls []Layer
	add := func(l Layer) { ls = append(ls, l) }
	c, h, w := o.InChannels, o.Height, o.Width
	i := 0 // torchvision's index in features
	for s, stage := range stages {
		if len(stage) == 0 {
			return nil, fmt.Errorf("vgg: stage %d of the configuration is empty: every stage needs at least one convolution", s+1)
		}
		for _, v := range stage {
			if v <= 0 {
				return nil, fmt.Errorf("vgg: stage %d has a convolution with %d channels: channel counts must be positive", s+1, v)
			}
			out := scale(v, o.WidthMult)
			add(Layer{Name: fmt.Sprintf("features.%d", i), Kind: Conv, In: c, Out: out, Kernel: 3, Stride: 1, Padding: 1,
				Shape: []int{out, h, w}, Params: out*c*9 + out, MACs: int64(out) * int64(h*w) * int64(c*9), Stage: s + 1})
			i++
			if o.BatchNorm {
				add(Layer{Name: fmt.Sprintf("features.%d", i), Kind: BatchNorm, In: out, Out: out,
					Shape: []int{out, h, w}, Params: 2 * out, Stage: s + 1})
				i++
			}
			add(Layer{Name: fmt.Sprintf("features.%d", i), Kind: ReLU, Shape: []int{out, h, w}, Stage: s + 1})
			i++
			c = out
		}
		h, w = h/2, w/2
		add(Layer{Name: fmt.Sprintf("features.%d", i), Kind: MaxPool, Kernel: 2, Stride: 2, Shape: []int{c, h, w}, Stage: s + 1})
		i++
	}
	linear := func(name string, in, out int) Layer {
		return Layer{Name: name, Kind: Linear, In: in, Out: out, Shape: []int{out}, Params: in*out + out, MACs: int64(in) * int64(out)}
	}
	switch o.Head {
	case HeadCIFAR:
		add(Layer{Name: "flatten", Kind: Flatten, Shape: []int{c * h * w}})
		add(linear("classifier.0", c*h*w, o.Classes))
	case HeadImageNet:
		hidden := scale(4096, o.WidthMult)
		add(Layer{Name: "avgpool", Kind: AvgPool, Shape: []int{c, 7, 7}})
		add(Layer{Name: "flatten", Kind: Flatten, Shape: []int{c * 49}})
		add(linear("classifier.0", c*49, hidden))
		add(Layer{Name: "classifier.1", Kind: ReLU, Shape: []int{hidden}})
		add(Layer{Name: "classifier.2", Kind: Dropout, P: o.Dropout, Shape: []int{hidden}})
		add(linear("classifier.3", hidden, hidden))
		add(Layer{Name: "classifier.4", Kind: ReLU, Shape: []int{hidden}})
		add(Layer{Name: "classifier.5", Kind: Dropout, P: o.Dropout, Shape: []int{hidden}})
		add(linear("classifier.6", hidden, o.Classes))
	case HeadNone:
		switch o.Pool {
		case "avg":
			add(Layer{Name: "pool", Kind: AvgPool, Shape: []int{c, 1, 1}})
			add(Layer{Name: "flatten", Kind: Flatten, Shape: []int{c}})
		case "max":
			if h != w {
				return nil, fmt.Errorf("vgg: global max pooling needs a square feature map, and this input gives %dx%d: use avg pooling or a square input", h, w)
			}
			add(Layer{Name: "pool", Kind: MaxPool, Kernel: h, Stride: h, Shape: []int{c, 1, 1}})
			add(Layer{Name: "flatten", Kind: Flatten, Shape: []int{c}})
		}
	}
	return ls, nil
}

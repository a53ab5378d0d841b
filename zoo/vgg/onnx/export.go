package onnx

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/gozoo/gozoo/zoo/vgg"
	"google.golang.org/protobuf/encoding/protowire"
)

// The versions Export writes: ONNX IR version 8 with the default operator
// set at version 17 (both supported by onnxruntime since 1.12).
const (
	IRVersion = 8
	Opset     = 17
)

// InputName is the name of the graph's input, (batch, C, H, W) float32.
const InputName = "input"

// Output names: LogitsName for a classifier head, (batch, classes);
// FeaturesName for the none head, (batch, C, h, w) or (batch, C).
const (
	LogitsName   = "logits"
	FeaturesName = "features"
)

// batchNormEpsilon is BatchNorm2d's eps, as in torchvision (vgg.Layer prints it).
const batchNormEpsilon = 1e-5

// maxFileSize is protobuf's limit on one message, 2 GiB − 1.
const maxFileSize = math.MaxInt32

// ExportOptions say what Export records besides the network.
type ExportOptions struct {
	// Mean and Std are the per-channel input normalization the model was
	// trained with, x = (pixel/255 − Mean[c]) / Std[c], recorded in the
	// metadata as gozoo.mean and gozoo.std (JSON arrays). Give both, with
	// one value per input channel, or neither. The graph does not apply
	// them: the input is the normalized image, as in PyTorch.
	Mean, Std []float64
	// ClassNames, when set, has one name per class, recorded as
	// gozoo.classes (a JSON array).
	ClassNames []string
}

// Export writes m as an ONNX model (IR version 8, opset 17) in evaluation
// mode to w. A float64 model is written with float32 weights, the only
// precision every ONNX runtime computes convolutions in. It returns an
// error, naming the layer, for a layer it cannot express exactly, and
// for options that do not fit the model; nothing is written then.
func Export(w io.Writer, m *vgg.Model, opts ExportOptions) error {
	if m == nil || m.Arch == nil {
		return fmt.Errorf("onnx: export: no model")
	}
	meta, err := metadata(m, opts)
	if err != nil {
		return err
	}
	e := &exporter{m: m}
	if err := e.walk(); err != nil {
		return err
	}
	return e.write(w, meta)
}

// metadata checks opts against m and returns the metadata_props entries.
func metadata(m *vgg.Model, opts ExportOptions) ([][2]string, error) {
	o := m.Opts
	if (opts.Mean == nil) != (opts.Std == nil) {
		return nil, fmt.Errorf("onnx: export %s: give both the normalization mean and std, or neither", m.Name)
	}
	if opts.Mean != nil {
		if len(opts.Mean) != o.InChannels || len(opts.Std) != o.InChannels {
			return nil, fmt.Errorf("onnx: export %s: %d mean and %d std values for %d input channels: give one per channel",
				m.Name, len(opts.Mean), len(opts.Std), o.InChannels)
		}
		for c := range opts.Mean {
			if s := opts.Std[c]; !(s > 0) || math.IsInf(s, 0) || math.IsNaN(opts.Mean[c]) || math.IsInf(opts.Mean[c], 0) {
				return nil, fmt.Errorf("onnx: export %s: channel %d has mean %g and std %g: the mean must be finite and the std positive",
					m.Name, c, opts.Mean[c], s)
			}
		}
	}
	if opts.ClassNames != nil {
		if o.Head == vgg.HeadNone {
			return nil, fmt.Errorf("onnx: export %s: class names given, but the %q head has no classes", m.Name, o.Head)
		}
		if len(opts.ClassNames) != o.Classes {
			return nil, fmt.Errorf("onnx: export %s: %d class names for %d classes: give one per class", m.Name, len(opts.ClassNames), o.Classes)
		}
	}
	var meta [][2]string
	wm := m.Metadata()
	for _, k := range []string{"gozoo.model", "gozoo.options", "gozoo.stages"} {
		if v, ok := wm[k]; ok {
			meta = append(meta, [2]string{k, v})
		}
	}
	add := func(key string, v any) {
		b, _ := json.Marshal(v) // float64s, strings: cannot fail
		meta = append(meta, [2]string{key, string(b)})
	}
	if opts.Mean != nil {
		add("gozoo.mean", opts.Mean)
		add("gozoo.std", opts.Std)
	}
	if opts.ClassNames != nil {
		add("gozoo.classes", opts.ClassNames)
	}
	return meta, nil
}

// initializer is one float32 TensorProto of the graph; its values come from
// f32 or f64 and are streamed to the writer.
type initializer struct {
	name string
	dims []int
	f32  []float32
	f64  []float64
}

func (t initializer) rawLen() int { return 4 * (len(t.f32) + len(t.f64)) }

// head is everything of the GraphProto.initializer field before the raw
// values: the field's tag and length, the TensorProto's dims, data type and
// name, and the raw_data tag and length.
func (t initializer) head() msg {
	var body msg
	for _, d := range t.dims {
		body = body.int(tensorDims, int64(d))
	}
	body = body.int(tensorDataType, dataTypeFloat).str(tensorName, t.name)
	n := t.rawLen()
	var b msg
	b = protowire.AppendTag(b, graphInitializer, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(body)+protowire.SizeTag(tensorRawData)+protowire.SizeBytes(n)))
	b = append(b, body...)
	b = protowire.AppendTag(b, tensorRawData, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// exporter turns the layers of a model into ONNX nodes and initializers.
type exporter struct {
	m     *vgg.Model
	nodes []msg
	inits []initializer
}

// walk emits one or two nodes per layer, threading the value names.
func (e *exporter) walk() error {
	m := e.m
	last := len(m.Layers) - 1
	for last >= 0 && m.Layers[last].Kind == vgg.Dropout {
		last--
	}
	if last < 0 {
		return fmt.Errorf("onnx: export %s: the model has no layers", m.Name)
	}
	x, in := InputName, []int{m.Opts.InChannels, m.Opts.Height, m.Opts.Width}
	for i, l := range m.Layers {
		out := l.Name
		if i == last {
			out = outputName(m)
		}
		var err error
		switch l.Kind {
		case vgg.Conv:
			var w, b string
			if w, b, err = e.params(l.Name, ".weight", ".bias"); err == nil {
				e.add(l.Name, "Conv", []string{x, w, b}, out,
					attrIntList("kernel_shape", int64(l.Kernel), int64(l.Kernel)),
					attrIntList("strides", int64(l.Stride), int64(l.Stride)),
					attrIntList("pads", int64(l.Padding), int64(l.Padding), int64(l.Padding), int64(l.Padding)),
					attrIntList("dilations", 1, 1),
					attrInt("group", 1))
			}
		case vgg.BatchNorm:
			var w, b, mean, variance string
			if w, b, err = e.params(l.Name, ".weight", ".bias"); err == nil {
				if mean, variance, err = e.params(l.Name, ".running_mean", ".running_var"); err == nil {
					e.add(l.Name, "BatchNormalization", []string{x, w, b, mean, variance}, out,
						attrFloat("epsilon", batchNormEpsilon))
				}
			}
		case vgg.ReLU:
			e.add(l.Name, "Relu", []string{x}, out)
		case vgg.MaxPool:
			e.add(l.Name, "MaxPool", []string{x}, out,
				attrIntList("kernel_shape", int64(l.Kernel), int64(l.Kernel)),
				attrIntList("strides", int64(l.Stride), int64(l.Stride)),
				attrIntList("pads", int64(l.Padding), int64(l.Padding), int64(l.Padding), int64(l.Padding)))
		case vgg.AvgPool:
			err = e.adaptiveAvgPool(l, in, x, out)
		case vgg.Flatten:
			e.add(l.Name, "Flatten", []string{x}, out, attrInt("axis", 1))
		case vgg.Linear:
			var w, b string
			if w, b, err = e.params(l.Name, ".weight", ".bias"); err == nil {
				e.add(l.Name, "Gemm", []string{x, w, b}, out,
					attrFloat("alpha", 1), attrFloat("beta", 1), attrInt("transB", 1))
			}
		case vgg.Dropout:
			continue // the identity in evaluation mode
		default:
			err = fmt.Errorf("layer kind %q has no ONNX export; the exportable kinds are Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Flatten, Linear and Dropout", l.Kind)
		}
		if err != nil {
			return fmt.Errorf("onnx: export %s: layer %s (%s): %w", m.Name, l.Name, l.Kind, err)
		}
		x, in = out, l.Shape
	}
	return nil
}

// outputName is the graph output's name: logits, or features for the none head.
func outputName(m *vgg.Model) string {
	if m.Opts.Head == vgg.HeadNone {
		return FeaturesName
	}
	return LogitsName
}

func (e *exporter) add(name, op string, inputs []string, out string, attrs ...msg) {
	e.nodes = append(e.nodes, node(name, op, inputs, []string{out}, attrs...))
}

// params adds the model's tensors layer+suffix as initializers and returns
// their names.
func (e *exporter) params(layer, suffix1, suffix2 string) (string, string, error) {
	var names [2]string
	for i, s := range []string{suffix1, suffix2} {
		name := layer + s
		t, ok := e.m.Tensor(name)
		if !ok {
			return "", "", fmt.Errorf("the model has no tensor %s", name)
		}
		init := initializer{name: name, dims: t.Shape()}
		switch d := t.Data().(type) {
		case []float32:
			init.f32 = d
		case []float64:
			init.f64 = d
		default:
			return "", "", fmt.Errorf("tensor %s is %v: only float32 and float64 export", name, t.Dtype())
		}
		e.inits = append(e.inits, init)
		names[i] = name
	}
	return names[0], names[1], nil
}

// adaptiveAvgPool exports AdaptiveAvgPool2d from in = (C, h, w) to
// l.Shape = (C, oh, ow) exactly. When h and w are multiples of oh and ow,
// PyTorch's windows are the disjoint tiles of an AveragePool. Otherwise the
// windows overlap (or, when h < oh, repeat rows), and the pool is y = R·x·K
// per plane, R (oh, h) and K (w, ow) holding 1/window-length inside each
// window: two MatMuls broadcasting over (N, C).
func (e *exporter) adaptiveAvgPool(l vgg.Layer, in []int, x, out string) error {
	if len(in) != 3 || len(l.Shape) != 3 {
		return fmt.Errorf("input shape %v and output shape %v: want (C, H, W) for both", in, l.Shape)
	}
	h, w, oh, ow := in[1], in[2], l.Shape[1], l.Shape[2]
	if h < 1 || w < 1 || oh < 1 || ow < 1 {
		return fmt.Errorf("pooling %d×%d to %d×%d: sizes must be positive", h, w, oh, ow)
	}
	if h%oh == 0 && w%ow == 0 {
		kh, kw := int64(h/oh), int64(w/ow)
		e.add(l.Name, "AveragePool", []string{x}, out,
			attrIntList("kernel_shape", kh, kw), attrIntList("strides", kh, kw), attrIntList("pads", 0, 0, 0, 0))
		return nil
	}
	rows, cols := l.Name+".avg_rows", l.Name+".avg_cols"
	r := averaging(h, oh) // (oh, h)
	k := averaging(w, ow) // (ow, w), transposed below to (w, ow)
	kt := make([]float32, len(k))
	for q := range ow {
		for j := range w {
			kt[j*ow+q] = k[q*w+j]
		}
	}
	e.inits = append(e.inits,
		initializer{name: rows, dims: []int{oh, h}, f32: r},
		initializer{name: cols, dims: []int{w, ow}, f32: kt})
	e.add(l.Name+".cols", "MatMul", []string{x, cols}, l.Name+".cols")
	e.add(l.Name, "MatMul", []string{rows, l.Name + ".cols"}, out)
	return nil
}

// averaging returns the (out, in) matrix that averages PyTorch's adaptive
// pooling windows along one axis: output i averages inputs
// ⌊i·in/out⌋ … ⌈(i+1)·in/out⌉ − 1.
func averaging(in, out int) []float32 {
	a := make([]float32, out*in)
	for i := range out {
		start, end := i*in/out, ((i+1)*in+out-1)/out
		for j := start; j < end; j++ {
			a[i*in+j] = 1 / float32(end-start)
		}
	}
	return a
}

// write encodes the ModelProto to w: the small fields first, then the graph
// with its initializers' values streamed in float32.
func (e *exporter) write(w io.Writer, meta [][2]string) error {
	m := e.m
	o := m.Opts
	var graph msg
	for _, n := range e.nodes {
		graph = graph.sub(graphNode, n)
	}
	graph = graph.str(graphName, m.Name).
		sub(graphInput, valueInfo(InputName, []int{-1, o.InChannels, o.Height, o.Width})).
		sub(graphOutput, valueInfo(outputName(m), append([]int{-1}, m.OutputShape()...)))
	heads := make([]msg, len(e.inits))
	graphLen := int64(len(graph))
	for i, t := range e.inits {
		heads[i] = t.head()
		graphLen += int64(len(heads[i]) + t.rawLen())
	}
	model := msg(nil).int(modelIRVersion, IRVersion).
		str(modelProducerName, "gozoo").
		str(modelDocString, docString(m)).
		sub(modelOpsetImport, msg(nil).str(opsetDomain, "").int(opsetVersion, Opset))
	for _, kv := range meta {
		model = model.sub(modelMetadataProps, entry(kv[0], kv[1]))
	}
	model = protowire.AppendTag(model, modelGraph, protowire.BytesType)
	model = protowire.AppendVarint(model, uint64(graphLen))
	if size := int64(len(model)) + graphLen; size > maxFileSize {
		return fmt.Errorf("onnx: export %s: the model would take %d bytes, over protobuf's 2 GiB limit on one file; use a smaller width or fewer classes",
			m.Name, size)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.Write(model)
	bw.Write(graph)
	buf := make([]byte, 0, 1<<16)
	for i, t := range e.inits {
		bw.Write(heads[i])
		for _, v := range t.f32 {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				bw.Write(buf)
				buf = buf[:0]
			}
		}
		for _, v := range t.f64 {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(v)))
			if len(buf) == cap(buf) {
				bw.Write(buf)
				buf = buf[:0]
			}
		}
		bw.Write(buf)
		buf = buf[:0]
	}
	// bufio.Writer keeps its first error and returns it from Flush.
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("onnx: export %s: write: %w", m.Name, err)
	}
	return nil
}

// docString describes the model's input and output in the file.
func docString(m *vgg.Model) string {
	o := m.Opts
	shape := make([]string, len(m.OutputShape()))
	for i, d := range m.OutputShape() {
		shape[i] = fmt.Sprint(d)
	}
	return fmt.Sprintf("%s (gozoo, %s head, evaluation mode). Input %q: float32 (batch, %d, %d, %d), normalized per channel as (pixel/255 - mean)/std with gozoo.mean and gozoo.std from the metadata. Output %q: (batch, %s).",
		m.Name, o.Head, InputName, o.InChannels, o.Height, o.Width, outputName(m), strings.Join(shape, ", "))
}

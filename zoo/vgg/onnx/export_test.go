package onnx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/zoo/vgg"
	"google.golang.org/protobuf/encoding/protowire"
	"gorgonia.org/tensor"
)

// field is one decoded protobuf field: v for varint and fixed32 fields, b
// for length-delimited ones.
type field struct {
	num protowire.Number
	v   uint64
	b   []byte
}

// fields decodes one protobuf message, failing the test on malformed input.
func fields(t *testing.T, b []byte) []field {
	t.Helper()
	var fs []field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			t.Fatalf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		fs = append(fs, f)
	}
	return fs
}

// all returns the fields numbered num.
func all(fs []field, num protowire.Number) []field {
	var out []field
	for _, f := range fs {
		if f.num == num {
			out = append(out, f)
		}
	}
	return out
}

// one returns the single field numbered num.
func one(t *testing.T, fs []field, num protowire.Number) field {
	t.Helper()
	got := all(fs, num)
	if len(got) != 1 {
		t.Fatalf("field %d occurs %d times, want once", num, len(got))
	}
	return got[0]
}

// decoded is what the tests read back from an exported file.
type decoded struct {
	irVersion    int64
	producer     string
	opsets       map[string]int64
	meta         map[string]string
	input        string
	inputDims    []string // dim_value as a number, dim_param as its name
	output       string
	outputDims   []string
	ops          []string
	nodes        [][]field
	initializers map[string][]field
}

func decode(t *testing.T, b []byte) decoded {
	t.Helper()
	model := fields(t, b)
	d := decoded{
		irVersion:    int64(one(t, model, modelIRVersion).v),
		producer:     string(one(t, model, modelProducerName).b),
		opsets:       map[string]int64{},
		meta:         map[string]string{},
		initializers: map[string][]field{},
	}
	for _, f := range all(model, modelOpsetImport) {
		fs := fields(t, f.b)
		var domain string
		if ds := all(fs, opsetDomain); len(ds) == 1 {
			domain = string(ds[0].b)
		}
		d.opsets[domain] = int64(one(t, fs, opsetVersion).v)
	}
	for _, f := range all(model, modelMetadataProps) {
		fs := fields(t, f.b)
		d.meta[string(one(t, fs, entryKey).b)] = string(one(t, fs, entryValue).b)
	}
	graph := fields(t, one(t, model, modelGraph).b)
	d.input, d.inputDims = valueInfoOf(t, one(t, graph, graphInput).b)
	d.output, d.outputDims = valueInfoOf(t, one(t, graph, graphOutput).b)
	for _, f := range all(graph, graphNode) {
		fs := fields(t, f.b)
		d.ops = append(d.ops, string(one(t, fs, nodeOpType).b))
		d.nodes = append(d.nodes, fs)
	}
	for _, f := range all(graph, graphInitializer) {
		fs := fields(t, f.b)
		name := string(one(t, fs, tensorName).b)
		if _, dup := d.initializers[name]; dup {
			t.Errorf("initializer %s occurs twice", name)
		}
		d.initializers[name] = fs
	}
	return d
}

// valueInfoOf decodes a float32 ValueInfoProto into its name and dimensions.
func valueInfoOf(t *testing.T, b []byte) (string, []string) {
	t.Helper()
	fs := fields(t, b)
	tt := fields(t, one(t, fields(t, one(t, fs, valueType).b), typeTensorType).b)
	if et := one(t, tt, typeTensorElemType).v; et != dataTypeFloat {
		t.Errorf("elem_type %d, want FLOAT (%d)", et, dataTypeFloat)
	}
	var dims []string
	for _, dim := range all(fields(t, one(t, tt, typeTensorShape).b), shapeDim) {
		ds := fields(t, dim.b)
		if p := all(ds, dimParam); len(p) == 1 {
			dims = append(dims, string(p[0].b))
		} else {
			dims = append(dims, fmt.Sprint(one(t, ds, dimValue).v))
		}
	}
	return string(one(t, fs, valueName).b), dims
}

// attrs returns a node's attributes by name: ints, or the single int or float.
func attrs(t *testing.T, node []field) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, a := range all(node, nodeAttribute) {
		fs := fields(t, a.b)
		name := string(one(t, fs, attrName).b)
		switch one(t, fs, attrType).v {
		case attrTypeInt:
			out[name] = []float64{float64(int64(one(t, fs, attrI).v))}
		case attrTypeFloat:
			out[name] = []float64{float64(math.Float32frombits(uint32(one(t, fs, attrF).v)))}
		case attrTypeInts:
			for _, f := range all(fs, attrInts) {
				out[name] = append(out[name], float64(int64(f.v)))
			}
		}
	}
	return out
}

// floats decodes an initializer's raw float32 data.
func floats(t *testing.T, tensor []field) []float32 {
	t.Helper()
	if dt := one(t, tensor, tensorDataType).v; dt != dataTypeFloat {
		t.Fatalf("data_type %d, want FLOAT", dt)
	}
	raw := one(t, tensor, tensorRawData).b
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

func export(t *testing.T, m *vgg.Model, o ExportOptions) decoded {
	t.Helper()
	var buf bytes.Buffer
	if err := Export(&buf, m, o); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return decode(t, buf.Bytes())
}

func newModel(t *testing.T, name string, o vgg.Options) *vgg.Model {
	t.Helper()
	m, err := vgg.New(name, o)
	if err != nil {
		t.Fatalf("vgg.New(%s): %v", name, err)
	}
	return m
}

func count(ops []string) map[string]int {
	c := map[string]int{}
	for _, op := range ops {
		c[op]++
	}
	return c
}

func TestExportStructure(t *testing.T) {
	const w = 1.0 / 16
	tests := []struct {
		name       string
		model      string
		opts       vgg.Options
		ops        map[string]int
		output     string
		outputDims []string
		extra      []string // initializers beyond the state dict
	}{
		{"vgg11 cifar", "vgg11", vgg.Options{WidthMult: w},
			map[string]int{"Conv": 8, "Relu": 8, "MaxPool": 5, "Flatten": 1, "Gemm": 1},
			"logits", []string{"batch", "10"}, nil},
		{"vgg13_bn cifar", "vgg13_bn", vgg.Options{WidthMult: w, Classes: 4},
			map[string]int{"Conv": 10, "BatchNormalization": 10, "Relu": 10, "MaxPool": 5, "Flatten": 1, "Gemm": 1},
			"logits", []string{"batch", "4"}, nil},
		{"vgg11 imagenet 1x1 to 7x7", "vgg11", vgg.Options{WidthMult: w, Head: vgg.HeadImageNet, Classes: 6},
			map[string]int{"Conv": 8, "Relu": 10, "MaxPool": 5, "MatMul": 2, "Flatten": 1, "Gemm": 3},
			"logits", []string{"batch", "6"}, []string{"avgpool.avg_rows", "avgpool.avg_cols"}},
		{"custom imagenet 14x14 to 7x7", "", vgg.Options{Stages: []vgg.Stage{{4}, {8}}, Head: vgg.HeadImageNet, Height: 56, Width: 56, WidthMult: w},
			map[string]int{"Conv": 2, "Relu": 4, "MaxPool": 2, "AveragePool": 1, "Flatten": 1, "Gemm": 3},
			"logits", []string{"batch", "10"}, nil},
		{"vgg16 none head", "vgg16", vgg.Options{WidthMult: w, Head: vgg.HeadNone, Height: 64, Width: 64},
			map[string]int{"Conv": 13, "Relu": 13, "MaxPool": 5},
			"features", []string{"batch", "32", "2", "2"}, nil},
		{"vgg11 none head avg pool", "vgg11", vgg.Options{WidthMult: w, Head: vgg.HeadNone, Pool: "avg", Height: 64, Width: 64},
			map[string]int{"Conv": 8, "Relu": 8, "MaxPool": 5, "AveragePool": 1, "Flatten": 1},
			"features", []string{"batch", "32"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, tt.model, tt.opts)
			d := export(t, m, ExportOptions{})
			if d.irVersion != IRVersion || d.producer != "gozoo" {
				t.Errorf("ir_version %d, producer %q; want %d, gozoo", d.irVersion, d.producer, IRVersion)
			}
			if want := map[string]int64{"": Opset}; !equalMaps(d.opsets, want) {
				t.Errorf("opset_import %v, want %v", d.opsets, want)
			}
			o := m.Opts
			wantIn := []string{"batch", fmt.Sprint(o.InChannels), fmt.Sprint(o.Height), fmt.Sprint(o.Width)}
			if d.input != InputName || !slices.Equal(d.inputDims, wantIn) {
				t.Errorf("input %s %v, want %s %v", d.input, d.inputDims, InputName, wantIn)
			}
			if d.output != tt.output || !slices.Equal(d.outputDims, tt.outputDims) {
				t.Errorf("output %s %v, want %s %v", d.output, d.outputDims, tt.output, tt.outputDims)
			}
			if got := count(d.ops); !equalMaps(got, tt.ops) {
				t.Errorf("operators %v, want %v", got, tt.ops)
			}
			var want []string
			for _, n := range m.StateNames() {
				if !strings.HasSuffix(n, ".num_batches_tracked") {
					want = append(want, n)
				}
			}
			want = append(want, tt.extra...)
			var got []string
			for n := range d.initializers {
				got = append(got, n)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("initializers\n got %v\nwant %v", got, want)
			}
			// The nodes are in order: the first reads the input, the last
			// writes the output, each reads what an earlier one wrote.
			defined := map[string]bool{InputName: true}
			for n := range d.initializers {
				defined[n] = true
			}
			for i, node := range d.nodes {
				for _, in := range all(node, nodeInput) {
					if !defined[string(in.b)] {
						t.Errorf("node %d (%s) reads %q before it is defined", i, d.ops[i], in.b)
					}
				}
				defined[string(one(t, node, nodeOutput).b)] = true
			}
			if last := string(one(t, d.nodes[len(d.nodes)-1], nodeOutput).b); last != tt.output {
				t.Errorf("last node writes %q, want %q", last, tt.output)
			}
		})
	}
}

func equalMaps[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestExportAttributesAndWeights(t *testing.T) {
	m := newModel(t, "vgg11_bn", vgg.Options{WidthMult: 1.0 / 16, Head: vgg.HeadImageNet, Classes: 3, Dtype: tensor.Float64})
	d := export(t, m, ExportOptions{})
	want := map[string]map[string][]float64{
		"Conv":               {"kernel_shape": {3, 3}, "strides": {1, 1}, "pads": {1, 1, 1, 1}, "dilations": {1, 1}, "group": {1}},
		"BatchNormalization": {"epsilon": {float64(float32(1e-5))}},
		"MaxPool":            {"kernel_shape": {2, 2}, "strides": {2, 2}, "pads": {0, 0, 0, 0}},
		"Flatten":            {"axis": {1}},
		"Gemm":               {"alpha": {1}, "beta": {1}, "transB": {1}},
	}
	for i, node := range d.nodes {
		w, ok := want[d.ops[i]]
		if !ok {
			continue
		}
		if got := attrs(t, node); !equalAttrs(got, w) {
			t.Errorf("node %d %s: attributes %v, want %v", i, d.ops[i], got, w)
		}
	}
	// float64 weights are written as float32, value for value.
	for _, name := range []string{"features.0.weight", "features.1.running_var", "classifier.6.bias", "classifier.3.weight"} {
		src, _ := m.Tensor(name)
		wantV := src.Data().([]float64)
		got := floats(t, d.initializers[name])
		var dims []int
		for _, f := range all(d.initializers[name], tensorDims) {
			dims = append(dims, int(f.v))
		}
		if !slices.Equal(dims, src.Shape()) || len(got) != len(wantV) {
			t.Errorf("%s: dims %v with %d values, want %v with %d", name, dims, len(got), src.Shape(), len(wantV))
			continue
		}
		for i := range got {
			if got[i] != float32(wantV[i]) {
				t.Errorf("%s[%d] = %g, want %g", name, i, got[i], float32(wantV[i]))
				break
			}
		}
	}
}

func equalAttrs(a, b map[string][]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestExportMetadata(t *testing.T) {
	m := newModel(t, "vgg11", vgg.Options{WidthMult: 1.0 / 16, Classes: 2})
	d := export(t, m, ExportOptions{Mean: []float64{0.4914, 0.4822, 0.4465}, Std: []float64{0.247, 0.2435, 0.2616}, ClassNames: []string{"cat", "dog"}})
	want := map[string]string{
		"gozoo.model":   "vgg11",
		"gozoo.mean":    "[0.4914,0.4822,0.4465]",
		"gozoo.std":     "[0.247,0.2435,0.2616]",
		"gozoo.classes": `["cat","dog"]`,
	}
	for k, v := range want {
		if d.meta[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, d.meta[k], v)
		}
	}
	if _, opts, err := vgg.FromMetadata(d.meta); err != nil || opts.Classes != 2 || opts.WidthMult != 1.0/16 {
		t.Errorf("gozoo.options %q: decoded %+v, %v; want classes 2, width 1/16", d.meta["gozoo.options"], opts, err)
	}
	if d := export(t, m, ExportOptions{}); d.meta["gozoo.mean"] != "" || d.meta["gozoo.classes"] != "" {
		t.Errorf("without options the metadata has mean %q, classes %q; want neither", d.meta["gozoo.mean"], d.meta["gozoo.classes"])
	}
}

func TestAveraging(t *testing.T) {
	tests := []struct {
		in, out int
		want    []float32
	}{
		{1, 3, []float32{1, 1, 1}},
		{4, 2, []float32{0.5, 0.5, 0, 0, 0, 0, 0.5, 0.5}},
		// PyTorch's windows of 3 → 2: [0, 2) and [1, 3), overlapping.
		{3, 2, []float32{0.5, 0.5, 0, 0, 0.5, 0.5}},
		// 2 → 3: [0, 1), [0, 2), [1, 2).
		{2, 3, []float32{1, 0, 0.5, 0.5, 0, 1}},
	}
	for _, tt := range tests {
		if got := averaging(tt.in, tt.out); !slices.Equal(got, tt.want) {
			t.Errorf("averaging(%d, %d) = %v, want %v", tt.in, tt.out, got, tt.want)
		}
	}
}

func TestExportErrors(t *testing.T) {
	cifar := func(t *testing.T) *vgg.Model {
		return newModel(t, "vgg11", vgg.Options{WidthMult: 1.0 / 16, Classes: 2})
	}
	tests := []struct {
		name  string
		model func(t *testing.T) *vgg.Model
		opts  ExportOptions
		want  string
	}{
		{"mean without std", cifar, ExportOptions{Mean: []float64{0, 0, 0}}, "both the normalization mean and std"},
		{"two channels", cifar, ExportOptions{Mean: []float64{0, 0}, Std: []float64{1, 1}}, "2 mean and 2 std values for 3 input channels"},
		{"zero std", cifar, ExportOptions{Mean: []float64{0, 0, 0}, Std: []float64{1, 0, 1}}, "channel 1 has mean 0 and std 0"},
		{"NaN mean", cifar, ExportOptions{Mean: []float64{math.NaN(), 0, 0}, Std: []float64{1, 1, 1}}, "channel 0 has mean NaN"},
		{"class names", cifar, ExportOptions{ClassNames: []string{"a", "b", "c"}}, "3 class names for 2 classes"},
		{"class names, none head", func(t *testing.T) *vgg.Model {
			return newModel(t, "vgg11", vgg.Options{WidthMult: 1.0 / 16, Head: vgg.HeadNone})
		}, ExportOptions{ClassNames: []string{"a"}}, `the "none" head has no classes`},
		{"unknown layer", func(t *testing.T) *vgg.Model {
			m := cifar(t)
			m.Arch.Layers = append(slices.Clone(m.Arch.Layers[:3]), vgg.Layer{Name: "features.3", Kind: "Upsample", Shape: []int{4, 64, 64}})
			return m
		}, ExportOptions{}, `layer features.3 (Upsample): layer kind "Upsample" has no ONNX export`},
		{"missing tensor", func(t *testing.T) *vgg.Model {
			m := cifar(t)
			m.Arch.Layers = append(slices.Clone(m.Arch.Layers), vgg.Layer{Name: "classifier.9", Kind: vgg.Linear, In: 2, Out: 2, Shape: []int{2}})
			return m
		}, ExportOptions{}, "layer classifier.9 (Linear): the model has no tensor classifier.9.weight"},
		{"nil model", func(*testing.T) *vgg.Model { return nil }, ExportOptions{}, "no model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Export(&buf, tt.model(t), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Export: error %v, want one containing %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Export wrote %d bytes before failing, want none", buf.Len())
			}
		})
	}
}

// failingWriter accepts n bytes, then fails.
type failingWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errDiskFull
	}
	w.n -= len(p)
	return len(p), nil
}

func TestExportWriteError(t *testing.T) {
	m := newModel(t, "vgg11", vgg.Options{WidthMult: 1.0 / 16})
	err := Export(&failingWriter{n: 1000}, m, ExportOptions{})
	if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "onnx: export vgg11: write") {
		t.Errorf("Export to a failing writer: %v, want a wrapped %v", err, errDiskFull)
	}
}

package vgg

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gozoo/gozoo/safetensors"
	"gorgonia.org/tensor"
)

// StateNames returns the names of every tensor of the model's state_dict in
// torchvision's order: each layer's weight and bias, and for BatchNorm2d
// also running_mean, running_var and num_batches_tracked.
func (m *Model) StateNames() []string {
	var names []string
	for _, l := range m.Layers {
		switch l.Kind {
		case Conv, Linear:
			names = append(names, l.Name+".weight", l.Name+".bias")
		case BatchNorm:
			names = append(names, l.Name+".weight", l.Name+".bias", l.Name+".running_mean", l.Name+".running_var", l.Name+".num_batches_tracked")
		}
	}
	return names
}

// StateDict returns the model's state as safetensors tensors under
// torchvision's names, float32 (or float64 for a float64 model), with
// num_batches_tracked as an int64 scalar as PyTorch stores it. The tensors
// are copies.
func (m *Model) StateDict() map[string]safetensors.Tensor {
	out := make(map[string]safetensors.Tensor)
	for _, name := range m.StateNames() {
		if layer, ok := strings.CutSuffix(name, ".num_batches_tracked"); ok {
			out[name] = safetensors.FromInt64(nil, []int64{m.stats[layer].NumBatchesTracked})
			continue
		}
		t := m.byName[name]
		switch d := t.Data().(type) {
		case []float32:
			out[name] = safetensors.FromFloat32(t.Shape(), slices.Clone(d))
		case []float64:
			out[name] = safetensors.FromFloat64(t.Shape(), slices.Clone(d))
		}
	}
	return out
}

// Metadata describes the architecture in a weights file's header, so a file
// says which model it holds (zoo summary --weights prints it, and
// FromMetadata rebuilds the model from it).
func (m *Model) Metadata() map[string]string {
	o := m.Opts
	opts, _ := json.Marshal(metaOptions{
		BatchNorm: o.BatchNorm, Classes: o.Classes, InChannels: o.InChannels, Height: o.Height, Width: o.Width,
		Head: o.Head, Pool: o.Pool, Dropout: o.Dropout, WidthMult: o.WidthMult, Stages: o.Stages, Dtype: o.Dtype.Name(),
	})
	return map[string]string{"format": "pt", "gozoo.model": m.Name, "gozoo.options": string(opts)}
}

// metaOptions is the JSON form of Options in a file's metadata.
type metaOptions struct {
	BatchNorm  bool    `json:"batch_norm"`
	Classes    int     `json:"classes"`
	InChannels int     `json:"in_channels"`
	Height     int     `json:"height"`
	Width      int     `json:"width"`
	Head       Head    `json:"head"`
	Pool       string  `json:"pool,omitempty"`
	Dropout    float64 `json:"dropout"`
	WidthMult  float64 `json:"width_mult"`
	Stages     []Stage `json:"stages"`
	Dtype      string  `json:"dtype"`
}

// FromMetadata returns the model name and options a weights file's metadata
// (written by Metadata) describes, to rebuild its architecture.
func FromMetadata(md map[string]string) (string, Options, error) {
	name, ok := md["gozoo.model"]
	if !ok {
		return "", Options{}, fmt.Errorf("vgg: the file's metadata does not name a gozoo model (no gozoo.model): pass the model name yourself")
	}
	var mo metaOptions
	if err := json.Unmarshal([]byte(md["gozoo.options"]), &mo); err != nil {
		return "", Options{}, fmt.Errorf("vgg: the file's gozoo.options metadata: %w", err)
	}
	o := Options{BatchNorm: mo.BatchNorm, Classes: mo.Classes, InChannels: mo.InChannels, Height: mo.Height, Width: mo.Width,
		Head: mo.Head, Pool: mo.Pool, Dropout: mo.Dropout, WidthMult: mo.WidthMult, Stages: mo.Stages}
	if o.Dropout == 0 {
		o.Dropout = NoDropout
	}
	switch mo.Dtype {
	case "float64":
		o.Dtype = tensor.Float64
	case "float32", "":
		o.Dtype = tensor.Float32
	default:
		return "", Options{}, fmt.Errorf("vgg: the file's metadata has dtype %q: want float32 or float64", mo.Dtype)
	}
	if _, _, err := ParseName(name); err == nil {
		o.Stages = nil // a named model: its configuration comes from the name
	}
	return name, o, nil
}

// SaveWeights writes the state dict to path as safetensors, atomically. The
// file loads in PyTorch with
// model.load_state_dict(safetensors.torch.load_file(path)).
func (m *Model) SaveWeights(path string) error {
	if err := safetensors.WriteFile(path, m.StateDict(), m.Metadata()); err != nil {
		return fmt.Errorf("vgg: save weights: %w", err)
	}
	return nil
}

// LoadOptions select what LoadState takes from a file.
type LoadOptions struct {
	// Prefixes, when set, restricts loading to tensors whose names start
	// with one of them ("features." loads the convolutional features and
	// keeps a new head, for transfer learning). The model's other tensors
	// keep their values; the file's other tensors are ignored.
	Prefixes []string
	// IgnoreUnexpected accepts tensors in the file that the model lacks.
	IgnoreUnexpected bool
}

// LoadWeights reads a safetensors file and loads it with LoadState.
func (m *Model) LoadWeights(path string, o LoadOptions) error {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return fmt.Errorf("vgg: load weights: %w", err)
	}
	if err := m.LoadState(f.Tensors, o); err != nil {
		return fmt.Errorf("%w (file %s)", err, path)
	}
	return nil
}

// LoadState loads tensors named as in torchvision's state_dict. Every name,
// shape and dtype is checked first and all problems are reported in one
// error; only when there are none is anything copied, so a model is never
// half-loaded. F16, BF16 and F64 tensors are converted to the model's dtype.
func (m *Model) LoadState(tensors map[string]safetensors.Tensor, o LoadOptions) error {
	wanted := func(name string) bool {
		return len(o.Prefixes) == 0 || slices.ContainsFunc(o.Prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
	}
	var problems []string
	type job struct {
		dst  *tensor.Dense
		f32  []float32
		f64  []float64
		nbt  *int64
		nval int64
	}
	var jobs []job
	known := make(map[string]bool)
	for _, name := range m.StateNames() {
		known[name] = true
		if !wanted(name) {
			continue
		}
		t, ok := tensors[name]
		if !ok {
			problems = append(problems, "missing "+name)
			continue
		}
		if layer, ok := strings.CutSuffix(name, ".num_batches_tracked"); ok {
			v, err := t.Int64s()
			if err != nil || len(v) != 1 {
				problems = append(problems, fmt.Sprintf("%s: want one int64, got %s %v", name, t.DType, t.Shape))
				continue
			}
			jobs = append(jobs, job{nbt: &m.stats[layer].NumBatchesTracked, nval: v[0]})
			continue
		}
		dst := m.byName[name]
		if !slices.Equal(t.Shape, []int(dst.Shape())) {
			problems = append(problems, fmt.Sprintf("%s: shape %v in the file, %v in %s", name, t.Shape, []int(dst.Shape()), m.Name))
			continue
		}
		j := job{dst: dst}
		var err error
		if dst.Dtype() == tensor.Float32 {
			j.f32, err = t.Float32s()
		} else {
			j.f64, err = t.Float64s()
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		jobs = append(jobs, j)
	}
	if !o.IgnoreUnexpected {
		var extra []string
		for name := range tensors {
			if !known[name] && wanted(name) {
				extra = append(extra, name)
			}
		}
		slices.Sort(extra)
		for _, name := range extra {
			problems = append(problems, "unexpected "+name)
		}
	}
	if len(problems) > 0 {
		const show = 20
		more := ""
		if len(problems) > show {
			more = fmt.Sprintf("\n  … and %d more", len(problems)-show)
			problems = problems[:show]
		}
		return fmt.Errorf("vgg: the weights do not fit %s (nothing was loaded):\n  %s%s\n"+
			"build the model the file was saved from (zoo summary --weights FILE shows it), or load only part of it "+
			"(LoadOptions.Prefixes, e.g. \"features.\" to keep a new head; IgnoreUnexpected for extra tensors)",
			m.Name, strings.Join(problems, "\n  "), more)
	}
	for _, j := range jobs {
		switch {
		case j.nbt != nil:
			*j.nbt = j.nval
		case j.f32 != nil:
			copy(j.dst.Data().([]float32), j.f32)
		default:
			copy(j.dst.Data().([]float64), j.f64)
		}
	}
	return nil
}

package vgg

import (
	"strings"
	"testing"
)

// TestParamCounts pins the trainable parameter counts to torchvision's.
func TestParamCounts(t *testing.T) {
	imagenet := map[string]int{
		"vgg11": 132863336, "vgg11_bn": 132868840, "vgg13": 133047848, "vgg13_bn": 133053736,
		"vgg16": 138357544, "vgg16_bn": 138365992, "vgg19": 143667240, "vgg19_bn": 143678248,
	}
	cifar := map[string]int{"vgg11": 9225610, "vgg16": 14719818, "vgg16_bn": 14728266, "vgg19_bn": 20040522}
	for _, name := range Names() {
		a, err := NewArch(name, Options{Head: HeadImageNet, Classes: 1000, Height: 224, Width: 224})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := a.Params(), imagenet[name]; got != want {
			t.Errorf("%s imagenet head: %d parameters, want %d", name, got, want)
		}
		if want, ok := cifar[name]; ok {
			a, err := NewArch(name, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Params(); got != want {
				t.Errorf("%s cifar head: %d parameters, want %d", name, got, want)
			}
		}
	}
}

// TestMACs pins the forward multiply-accumulates: VGG16 at 224×224 is
// torchvision's 15.47 GMACs; at 32×32 it is 0.313 GMACs (convolutions
// 313,196,544 and the cifar head 5,120).
func TestMACs(t *testing.T) {
	a, _ := NewArch("vgg16", Options{Head: HeadImageNet, Classes: 1000, Height: 224, Width: 224})
	if got := a.MACs(); got != 15470264320 {
		t.Errorf("vgg16 at 224: %d MACs, want 15470264320", got)
	}
	a, _ = NewArch("vgg16_bn", Options{})
	if got := a.MACs(); got != 313196544+5120 {
		t.Errorf("vgg16_bn at 32: %d MACs, want %d", got, 313196544+5120)
	}
}

func TestLayerNames(t *testing.T) {
	a, _ := NewArch("vgg16_bn", Options{Head: HeadImageNet})
	want := map[string]Kind{"features.0": Conv, "features.1": BatchNorm, "features.2": ReLU, "features.6": MaxPool,
		"features.40": Conv, "features.43": MaxPool, "avgpool": AvgPool, "classifier.0": Linear, "classifier.2": Dropout, "classifier.6": Linear}
	for name, kind := range want {
		l, ok := a.Layer(name)
		if !ok || l.Kind != kind {
			t.Errorf("layer %s: got %v (found %v), want %v", name, l.Kind, ok, kind)
		}
	}
	a, _ = NewArch("vgg16", Options{})
	if l, _ := a.Layer("features.30"); l.Kind != MaxPool || l.Shape[0] != 512 || l.Shape[1] != 1 {
		t.Errorf("vgg16 features.30 = %+v, want the last MaxPool2d with output (512, 1, 1)", l)
	}
}

func TestWidthMultiplier(t *testing.T) {
	a, err := NewArch("vgg11", Options{WidthMult: 0.125, Head: HeadImageNet})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := a.Layer("features.0"); l.Out != 8 {
		t.Errorf("features.0 has %d channels at width 0.125, want 8", l.Out)
	}
	if l, _ := a.Layer("classifier.0"); l.In != 64*49 || l.Out != 512 {
		t.Errorf("classifier.0 = %s, want Linear(3136, 512)", l)
	}
}

func TestBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"vgg17", Options{}, "unknown model"},
		{"vgg11", Options{Height: 16}, "too small"},
		{"vgg11", Options{Classes: -1}, "classes"},
		{"vgg11", Options{WidthMult: -0.5}, "width multiplier"},
		{"vgg11", Options{Head: "mlp"}, "unknown head"},
		{"vgg11", Options{Pool: "avg"}, "applies only"},
		{"vgg11", Options{Dropout: 1}, "dropout"},
		{"mine", Options{Stages: []Stage{{8}, {}}}, "stage 2"},
		{"mine", Options{Stages: []Stage{{8, 0}}}, "positive"},
		{"mine", Options{Stages: []Stage{}}, "no stages"},
	}
	for _, tt := range tests {
		_, err := NewArch(tt.name, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewArch(%q, %+v) = %v, want an error containing %q", tt.name, tt.opts, err, tt.want)
		}
	}
}

func TestCustomStages(t *testing.T) {
	a, err := NewArch("", Options{Stages: []Stage{{4}, {8, 8}}, Height: 8, Width: 8, BatchNorm: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "custom_bn" || len(a.Layers) != 13 {
		t.Errorf("got %s with %d layers, want custom_bn with 13", a.Name, len(a.Layers))
	}
	if got := a.OutputShape(); len(got) != 1 || got[0] != 10 {
		t.Errorf("output shape %v, want [10]", got)
	}
}

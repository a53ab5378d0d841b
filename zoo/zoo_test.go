package zoo

import (
	"slices"
	"strings"
	"testing"

	"github.com/gozoo/gozoo/zoo/vgg"
)

func TestNamesSorted(t *testing.T) {
	names := Names()
	want := []string{"vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"}
	if !slices.Equal(names, want) {
		t.Errorf("Names() = %v, want %v", names, want)
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name string
		bn   bool
		want string
	}{
		{"vgg16", false, "vgg16"},
		{"vgg16", true, "vgg16_bn"},
		{"vgg16_bn", true, "vgg16_bn"},
		{"vgg16_bn", false, "vgg16_bn"},
	}
	for _, tt := range tests {
		e, err := Lookup(tt.name, tt.bn)
		if err != nil || e.Name != tt.want {
			t.Errorf("Lookup(%q, %v) = %q, %v; want %q", tt.name, tt.bn, e.Name, err, tt.want)
		}
	}
	_, err := Lookup("resnet50", false)
	if err == nil || !strings.Contains(err.Error(), "vgg11, vgg11_bn") {
		t.Errorf("Lookup(resnet50) error = %v, want one listing the valid names", err)
	}
}

func TestMatch(t *testing.T) {
	es, err := Match("vgg1*_bn")
	if err != nil || len(es) != 4 {
		t.Errorf("Match(vgg1*_bn) = %d entries, %v; want 4", len(es), err)
	}
	if _, err := Match("vgg[1"); err == nil {
		t.Error("Match(vgg[1) gave no error for a malformed pattern")
	}
}

// TestEveryModelBuilds iterates over the registry: registering a model is
// enough to get its architecture checked and a tiny version of it run.
func TestEveryModelBuilds(t *testing.T) {
	for _, e := range Entries() {
		t.Run(e.Name, func(t *testing.T) {
			a, err := e.Arch(vgg.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.OutputShape(); !slices.Equal(got, []int{10}) {
				t.Errorf("output shape %v, want [10]", got)
			}
			m, err := e.New(vgg.Options{WidthMult: 1.0 / 32, Batch: 2})
			if err != nil {
				t.Fatal(err)
			}
			g, err := m.NewGraph(vgg.GraphOptions{Train: true, Loss: true})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if err := g.Run(make([]float32, 2*3*32*32), []int{1, 2}); err != nil {
				t.Fatal(err)
			}
			if l := g.LossValue(); l < 2.2 || l > 2.4 {
				t.Errorf("initial loss %g on zero images, want about ln 10 = 2.30", l)
			}
		})
	}
}

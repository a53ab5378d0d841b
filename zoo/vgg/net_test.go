package vgg

import (
	"strings"
	"testing"
)

// TestNetFreeze: the parameters Freeze matches are left out of Params, every
// other one is in it, and a Freeze entry that matches nothing is an error.
func TestNetFreeze(t *testing.T) {
	m, err := New("vgg11", Options{WidthMult: 1.0 / 16})
	if err != nil {
		t.Fatal(err)
	}
	last := m.params[len(m.params)-1].Name // the head's bias
	tests := []struct {
		freeze []string
		want   func(name string) bool // whether name trains
	}{
		{nil, func(string) bool { return true }},
		{[]string{"features."}, func(n string) bool { return !strings.HasPrefix(n, "features.") }},
		{[]string{"features.0.", last}, func(n string) bool { return !strings.HasPrefix(n, "features.0.") && n != last }},
	}
	for _, tt := range tests {
		n, err := m.NewNet(NetOptions{Freeze: tt.freeze})
		if err != nil {
			t.Fatalf("NewNet(freeze %v): %v", tt.freeze, err)
		}
		got := map[string]bool{}
		for _, p := range n.Params() {
			got[p.Name] = true
			if p.Grad != nil {
				t.Errorf("freeze %v: %s has a gradient before any Forward", tt.freeze, p.Name)
			}
		}
		for _, p := range m.params {
			if want := tt.want(p.Name); got[p.Name] != want {
				t.Errorf("freeze %v: %s in Params = %v, want %v", tt.freeze, p.Name, got[p.Name], want)
			}
		}
		n.Close()
	}
	if _, err := m.NewNet(NetOptions{Freeze: []string{"feature."}}); err == nil || !strings.Contains(err.Error(), `"feature."`) {
		t.Errorf("NewNet(freeze feature.) = %v, want an error naming it", err)
	}
}

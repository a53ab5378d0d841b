package cuda

import "testing"

// TestPool checks that a repeated sequence of sizes allocates only once,
// that kept buffers survive Recycle, and that Put reuses at once.
func TestPool(t *testing.T) {
	next := 0
	p := NewPool(func(n int) (*[]float32, error) {
		next++
		s := make([]float32, n)
		return &s, nil
	})
	step := func() {
		a, _, _ := p.Get(4)
		tmp, _, _ := p.Get(8)
		if err := p.Put(tmp); err != nil {
			t.Fatal(err)
		}
		b, _, _ := p.Get(8) // reuses tmp
		if b != tmp {
			t.Errorf("Get after Put: a new buffer, want the one just put")
		}
		_ = a
		p.Recycle()
	}
	w, fresh, _ := p.Get(16)
	p.Keep(w)
	if !fresh {
		t.Errorf("first Get: fresh = false, want true")
	}
	step()
	if got, want := p.Allocs(), 3; got != want {
		t.Fatalf("after the first step: %d allocations, want %d", got, want)
	}
	for range 3 {
		step()
	}
	if got, want := p.Allocs(), 3; got != want {
		t.Errorf("after four steps: %d allocations, want %d (no new ones after the first)", got, want)
	}
	if b, fresh, _ := p.Get(16); !fresh || b == w {
		t.Errorf("Get(16) with the only 16 kept: fresh %t, same %t; want a new buffer", fresh, b == w)
	}
	if err := p.Put(new([]float32)); err == nil {
		t.Errorf("Put of a foreign buffer: nil error, want one")
	}
	freed := 0
	p.Drain(func(*[]float32) { freed++ })
	if freed != 4 {
		t.Errorf("Drain freed %d buffers, want 4", freed)
	}
}

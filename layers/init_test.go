package layers

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func TestKaimingNormalStatistics(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		t.Run(dt.String(), func(t *testing.T) {
			w := tensor.New(tensor.Of(dt), tensor.WithShape(64, 32, 3, 3)) // 18432 draws
			if err := KaimingNormal(w, rand.New(rand.NewPCG(1, 2))); err != nil {
				t.Fatal(err)
			}
			v := bnLoad(w)
			var sum, sq float64
			for _, f := range v {
				sum += f
				sq += f * f
			}
			n := float64(len(v))
			mean := sum / n
			std := math.Sqrt(sq/n - mean*mean)
			want := math.Sqrt(2.0 / (64 * 3 * 3))
			if math.Abs(std-want)/want > 0.03 {
				t.Errorf("std: got %.5f, want %.5f within 3%%", std, want)
			}
			if math.Abs(mean) > 4*want/math.Sqrt(n) {
				t.Errorf("mean: got %.5f, want 0 within %.5f", mean, 4*want/math.Sqrt(n))
			}
		})
	}
}

func TestInitReproducible(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		t.Run(dt.String(), func(t *testing.T) {
			draw := func(seed uint64) []float64 {
				r := rand.New(rand.NewPCG(seed, 0))
				w := tensor.New(tensor.Of(dt), tensor.WithShape(8, 3, 3, 3))
				l := tensor.New(tensor.Of(dt), tensor.WithShape(10, 8))
				if err := KaimingNormal(w, r); err != nil {
					t.Fatal(err)
				}
				if err := Normal(l, 0, 0.01, r); err != nil {
					t.Fatal(err)
				}
				return append(bnLoad(w), bnLoad(l)...)
			}
			a, b, c := draw(7), draw(7), draw(8)
			if !slices.Equal(a, b) {
				t.Error("same seed: different values")
			}
			if slices.Equal(a, c) {
				t.Error("different seeds: same values")
			}
		})
	}
}

func TestNormalAndFillValues(t *testing.T) {
	w := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(100, 100))
	if err := Normal(w, 3, 0.5, rand.New(rand.NewPCG(3, 3))); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range data[float64](w) {
		sum += f
	}
	if mean := sum / 1e4; math.Abs(mean-3) > 0.02 {
		t.Errorf("Normal(3, 0.5): mean %.4f, want 3±0.02", mean)
	}
	if err := Normal(w, 1, 0, rand.New(rand.NewPCG(3, 3))); err != nil {
		t.Fatal(err)
	}
	bnAssertClose(t, "Normal(1, 0)", data[float64](w), slices.Repeat([]float64{1}, 1e4), 0)

	f := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(2, 3))
	if err := Fill(f, 0.1); err != nil {
		t.Fatal(err)
	}
	for i, v := range data[float32](f) {
		if v != float32(0.1) {
			t.Fatalf("Fill: element %d is %g, want 0.1", i, v)
		}
	}
}

func TestInitErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	f64 := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape...))
	}
	ints := tensor.New(tensor.Of(tensor.Int), tensor.WithShape(2, 2, 3, 3))
	view, err := f64(4, 4).Slice(nil, tensor.S(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"Kaiming rank 1", KaimingNormal(f64(5), r), "at least 2 dimensions"},
		{"Kaiming int", KaimingNormal(ints, r), "only float32 and float64"},
		{"Kaiming nil tensor", KaimingNormal(nil, r), "nil tensor"},
		{"Kaiming nil rand", KaimingNormal(f64(2, 2, 3, 3), nil), "nil *rand.Rand"},
		{"Normal negative std", Normal(f64(3), 0, -1, r), "std ≥ 0"},
		{"Normal NaN mean", Normal(f64(3), math.NaN(), 1, r), "finite"},
		{"Normal int", Normal(ints, 0, 1, r), "only float32 and float64"},
		{"Normal view", Normal(view.(*tensor.Dense), 0, 1, r), "is a view"},
		{"Fill int", Fill(ints, 1), "only float32 and float64"},
		{"Fill nil", Fill(nil, 1), "nil tensor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", tc.err, tc.want)
			}
		})
	}
}

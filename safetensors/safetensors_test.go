package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// file assembles a safetensors file from a raw header and data buffer.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func sampleTensors() map[string]Tensor {
	return map[string]Tensor{
		"w":      FromFloat32([]int{2, 3}, []float32{1, -2, 3.5, 0, float32(math.Inf(-1)), 1e-40}),
		"b":      FromFloat64([]int{2}, []float64{math.Pi, -0.0}),
		"n":      FromInt64(nil, []int64{-3}),
		"empty":  FromFloat32([]int{0, 4}, nil),
		"bytes":  {DType: U8, Shape: []int{3}, Data: []byte{1, 2, 255}},
		"a.half": {DType: F16, Shape: []int{1}, Data: []byte{0x00, 0x3c}},
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		tensors  map[string]Tensor
		metadata map[string]string
	}{
		{"tensors and metadata", sampleTensors(), map[string]string{"model": "vgg11", "quote": `"<&>"`}},
		{"no metadata", sampleTensors(), nil},
		{"nothing", map[string]Tensor{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Encode(&buf, tt.tensors, tt.metadata); err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if n := binary.LittleEndian.Uint64(buf.Bytes()); n%8 != 0 {
				t.Errorf("header length = %d, want a multiple of 8", n)
			}
			f, err := Parse(buf.Bytes())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkEqual(t, f, tt.tensors, tt.metadata)
		})
	}
}

// checkEqual fails unless f holds exactly tensors and metadata.
func checkEqual(t *testing.T, f *File, tensors map[string]Tensor, metadata map[string]string) {
	t.Helper()
	if len(f.Tensors) != len(tensors) {
		t.Errorf("got %d tensors %v, want %d", len(f.Tensors), f.Names(), len(tensors))
	}
	for name, want := range tensors {
		got, ok := f.Tensors[name]
		if !ok {
			t.Errorf("tensor %q missing", name)
			continue
		}
		if want.Shape == nil {
			want.Shape = []int{}
		}
		if got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %q = %s %v % x, want %s %v % x", name, got.DType, got.Shape, got.Data, want.DType, want.Shape, want.Data)
		}
	}
	if len(metadata) == 0 {
		metadata = nil
	}
	if !reflect.DeepEqual(f.Metadata, metadata) {
		t.Errorf("metadata = %v, want %v", f.Metadata, metadata)
	}
}

func TestEncodeLayout(t *testing.T) {
	var buf bytes.Buffer
	tensors := map[string]Tensor{
		"b": FromFloat32([]int{1}, []float32{2}),
		"a": FromFloat32([]int{1}, []float32{1}),
	}
	if err := Encode(&buf, tensors, map[string]string{"k": "v"}); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	n := binary.LittleEndian.Uint64(buf.Bytes())
	got := strings.TrimRight(string(buf.Bytes()[8:8+n]), " ")
	want := `{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`
	if got != want {
		t.Errorf("header = %s\nwant     %s", got, want)
	}
}

func TestWriteFileReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(path, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"epoch": "3"}
	if err := WriteFile(path, sampleTensors(), meta); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	checkEqual(t, f, sampleTensors(), meta)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file (no temporary left)", len(entries))
	}
	bad := map[string]Tensor{"x": {DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}
	if err := WriteFile(path, bad, nil); err == nil {
		t.Errorf("WriteFile of an inconsistent tensor: got nil error")
	}
	if f, err := ReadFile(path); err != nil || len(f.Tensors) != len(sampleTensors()) {
		t.Errorf("after a failed WriteFile, ReadFile = %v tensors, %v; want the previous file intact", f, err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.safetensors")); err == nil {
		t.Errorf("ReadFile of a missing file: got nil error")
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		tensors map[string]Tensor
		want    string
	}{
		{"short data", map[string]Tensor{"x": {DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}, `tensor "x": shape [2] of F32 needs 8 bytes, data has 4`},
		{"unknown dtype", map[string]Tensor{"x": {DType: "F33", Shape: []int{1}, Data: make([]byte, 4)}}, `tensor "x": unknown dtype "F33"`},
		{"negative dim", map[string]Tensor{"x": {DType: F32, Shape: []int{-1}}}, `tensor "x": dimension 0 of shape [-1] is -1`},
		{"empty name", map[string]Tensor{"": FromInt64(nil, []int64{1})}, `invalid tensor name ""`},
		{"reserved name", map[string]Tensor{"__metadata__": FromInt64(nil, []int64{1})}, `invalid tensor name "__metadata__"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Encode(&bytes.Buffer{}, tt.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Encode error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	f32x2 := make([]byte, 8)
	entry := func(name, dtype, shape, offsets string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	hugeLen := binary.LittleEndian.AppendUint64(nil, 200<<20)
	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty file", nil, "file is 0 bytes"},
		{"short file", []byte{1, 2, 3}, "file is 3 bytes"},
		{"header longer than file", binary.LittleEndian.AppendUint64(nil, 100), "header length 100 exceeds the 0 bytes after it"},
		{"header over limit", append(hugeLen, "{}"...), "exceeds the 104857600-byte limit"},
		{"header length near 2^64", binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "exceeds the 104857600-byte limit"},
		{"not an object", file(`[1, 2]  `, nil), "does not start with '{'"},
		{"empty header", file(``, nil), "does not start with '{'"},
		{"invalid JSON", file(`{"a": {"dtype":`, nil), "invalid JSON header"},
		{"unterminated object", file(`{"__metadata__": {}`, nil), "invalid JSON header"},
		{"data after object", file(`{} {}    `, nil), "data after the top-level object"},
		{"invalid UTF-8", file("{\"\xff\": 1}", nil), "not valid UTF-8"},
		{"entry not an object", file(`{"x": 5}`, nil), `tensor "x": invalid entry`},
		{"shape not integers", file(`{`+entry("x", "F32", "[1.5]", "[0,4]")+`}`, make([]byte, 4)), `tensor "x": invalid entry`},
		{"missing dtype", file(`{"x":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "x": missing "dtype"`},
		{"missing shape", file(`{"x":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "x": missing "shape"`},
		{"missing offsets", file(`{"x":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), `tensor "x": missing "data_offsets"`},
		{"three offsets", file(`{`+entry("x", "F32", "[1]", "[0,4,8]")+`}`, make([]byte, 4)), `tensor "x": data_offsets has 3 values`},
		{"unknown dtype", file(`{`+entry("x", "F33", "[2]", "[0,8]")+`}`, f32x2), `tensor "x": unknown dtype "F33"`},
		{"negative dim", file(`{`+entry("x", "F32", "[-2]", "[0,8]")+`}`, f32x2), `tensor "x": dimension 0 of shape [-2] is -2`},
		{"absurd dim", file(`{`+entry("x", "F32", "[0, 1099511627776]", "[0,0]")+`}`, nil), `tensor "x": dimension 1 of shape [0 1099511627776]`},
		{"overflowing shape", file(`{`+entry("x", "F64", "[2147483647,2147483647,2147483647]", "[0,8]")+`}`, f32x2), `tensor "x": shape [2147483647 2147483647 2147483647] is too large`},
		{"negative offset", file(`{`+entry("x", "F32", "[2]", "[-8,0]")+`}`, f32x2), `tensor "x": data_offsets [-8, 0] are negative`},
		{"end before begin", file(`{`+entry("x", "F32", "[0]", "[8,0]")+`}`, f32x2), `tensor "x": data_offsets [8, 0] end before they begin`},
		{"offsets past buffer", file(`{`+entry("x", "F32", "[4]", "[0,16]")+`}`, f32x2), `tensor "x": data_offsets [0, 16] run past the 8-byte data buffer`},
		{"size mismatch", file(`{`+entry("x", "F32", "[3]", "[0,8]")+`}`, f32x2), `tensor "x": data_offsets [0, 8] hold 8 bytes, shape [3] of F32 needs 12`},
		{"overlap", file(`{`+entry("x", "F32", "[2]", "[0,8]")+`,`+entry("y", "F32", "[1]", "[4,8]")+`}`, f32x2), `tensor "y": data_offsets [4, 8] overlap tensor "x"`},
		{"hole", file(`{`+entry("x", "F32", "[1]", "[0,4]")+`,`+entry("y", "F32", "[1]", "[8,12]")+`}`, make([]byte, 12)), `tensor "y": data_offsets [8, 12] leave a hole: bytes [4, 8)`},
		{"hole at start", file(`{`+entry("x", "F32", "[1]", "[4,8]")+`}`, f32x2), `tensor "x": data_offsets [4, 8] leave a hole: bytes [0, 4)`},
		{"buffer not covered", file(`{`+entry("x", "F32", "[1]", "[0,4]")+`}`, f32x2), "tensors cover 4 bytes of the 8-byte data buffer"},
		{"duplicate name", file(`{`+entry("x", "F32", "[1]", "[0,4]")+`,`+entry("x", "F32", "[1]", "[4,8]")+`}`, f32x2), `tensor "x": duplicate name`},
		{"metadata not strings", file(`{"__metadata__":{"epoch":3}}`, nil), `"__metadata__" must be an object of strings`},
		{"duplicate metadata", file(`{"__metadata__":{},"__metadata__":{}}`, nil), `duplicate "__metadata__"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.input)
			if err == nil {
				t.Fatalf("Parse = %v tensors, nil error; want an error containing %q", f.Names(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "safetensors: ") {
				t.Errorf("Parse error = %q, want one starting %q and containing %q", err, "safetensors: ", tt.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  map[string]Tensor
	}{
		{"empty object", file(`{}`, nil), map[string]Tensor{}},
		{"padded header", file(`{"x":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}     `, make([]byte, 8)),
			map[string]Tensor{"x": FromInt64(nil, []int64{0})}},
		{"zero-size tensors share an offset", file(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}`, nil),
			map[string]Tensor{"a": FromFloat32([]int{0}, nil), "b": FromFloat32([]int{0, 3}, nil)}},
		{"unknown entry fields", file(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"note":"ignored"}}`, []byte{7}),
			map[string]Tensor{"x": {DType: U8, Shape: []int{1}, Data: []byte{7}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.input)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkEqual(t, f, tt.want, nil)
		})
	}
}

// TestTorchFile parses a file written the way safetensors.torch.save_file
// writes one (by testdata/gen/torch_fixture.py) and compares every value
// with the exact decimals PyTorch printed.
func TestTorchFile(t *testing.T) {
	f, err := ReadFile("testdata/torch.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/torch_values.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Metadata map[string]string
		Tensors  map[string]struct {
			DType  DType
			Shape  []int
			Values []json.Number
		}
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, want.Metadata) {
		t.Errorf("metadata = %v, want %v", f.Metadata, want.Metadata)
	}
	if got, w := len(f.Tensors), len(want.Tensors); got != w {
		t.Errorf("got %d tensors, want %d", got, w)
	}
	for name, w := range want.Tensors {
		got, ok := f.Tensors[name]
		if !ok {
			t.Errorf("tensor %q missing", name)
			continue
		}
		if got.DType != w.DType || !reflect.DeepEqual(got.Shape, w.Shape) {
			t.Errorf("tensor %q is %s %v, want %s %v", name, got.DType, got.Shape, w.DType, w.Shape)
		}
		switch got.DType {
		case F64, F32, F16, BF16:
			v, err := got.Float64s()
			if err != nil {
				t.Fatalf("tensor %q: %v", name, err)
			}
			for i, s := range w.Values {
				x, _ := s.Float64()
				if math.Float64bits(v[i]) != math.Float64bits(x) {
					t.Errorf("tensor %q element %d = %v, want %v", name, i, v[i], x)
				}
			}
		default:
			v, err := got.Int64s()
			if err != nil {
				t.Fatalf("tensor %q: %v", name, err)
			}
			for i, s := range w.Values {
				x, _ := s.Int64()
				if v[i] != x {
					t.Errorf("tensor %q element %d = %v, want %v", name, i, v[i], x)
				}
			}
		}
	}
}

func TestConversions(t *testing.T) {
	half := func(bits ...uint16) Tensor {
		b := make([]byte, 0, 2*len(bits))
		for _, h := range bits {
			b = binary.LittleEndian.AppendUint16(b, h)
		}
		return Tensor{DType: F16, Shape: []int{len(bits)}, Data: b}
	}
	got, err := half(0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, float32(math.Copysign(0, -1)), 1, -2, 65504, 0x1p-24, 1023 * 0x1p-24, 0x1p-14, float32(math.Inf(1)), float32(math.Inf(-1))}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("F16 element %d = %g, want %g", i, got[i], want[i])
		}
	}
	if nan, _ := half(0x7e00).Float32s(); !math.IsNaN(float64(nan[0])) {
		t.Errorf("F16 0x7e00 = %g, want NaN", nan[0])
	}
	bf := Tensor{DType: BF16, Shape: []int{2}, Data: []byte{0x81, 0x3f, 0x49, 0xc0}}
	if got, _ := bf.Float32s(); got[0] != 1.0078125 || got[1] != -3.140625 {
		t.Errorf("BF16 = %v, want [1.0078125 -3.140625]", got)
	}
	if got, _ := FromFloat64([]int{1}, []float64{0.1}).Float32s(); got[0] != float32(0.1) {
		t.Errorf("F64 0.1 as float32 = %v, want %v", got[0], float32(0.1))
	}

	errs := []struct {
		name string
		call func() error
		want string
	}{
		{"Float32s of I64", func() error { _, err := FromInt64([]int{1}, []int64{1}).Float32s(); return err }, "Float32s of a I64 tensor"},
		{"Float64s of U8", func() error { _, err := (Tensor{DType: U8, Shape: []int{1}, Data: []byte{1}}).Float64s(); return err }, "Float64s of a U8 tensor"},
		{"Int64s of F32", func() error { _, err := FromFloat32([]int{1}, []float32{1}).Int64s(); return err }, "Int64s of a F32 tensor"},
		{"inconsistent F32", func() error {
			_, err := (Tensor{DType: F32, Shape: []int{3}, Data: make([]byte, 4)}).Float32s()
			return err
		}, "needs 12 bytes, data has 4"},
		{"U64 beyond int64", func() error {
			_, err := (Tensor{DType: U64, Shape: []int{1}, Data: bytes.Repeat([]byte{0xff}, 8)}).Int64s()
			return err
		}, "beyond int64"},
	}
	for _, tt := range errs {
		if err := tt.call(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// TestHugeHeaderClaimAllocatesNothing: a file that claims a 2 GiB header is
// refused without allocating anything near that size.
func TestHugeHeaderClaimAllocatesNothing(t *testing.T) {
	b := append(binary.LittleEndian.AppendUint64(nil, 2<<30), "{}      "...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Parse(b)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("Parse of a 2 GiB header claim: %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("refusing a 2 GiB header claim allocated %d bytes", got)
	}
}

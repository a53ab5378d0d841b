// Package safetensors reads and writes the safetensors file format, the
// format gozoo uses for checkpoints and for the PyTorch reference fixtures
// its tests compare against.
//
// A file is an 8-byte little-endian unsigned header length N, N bytes of
// UTF-8 JSON, and a data buffer:
//
//	{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
//	 "__metadata__": {"key": "value"}}
//
// Offsets are relative to the start of the buffer; tensors are row-major and
// little-endian. Parse checks everything a hostile or truncated file could
// get wrong (sizes, offsets, holes and overlaps in the buffer, duplicate
// names) and never allocates more than the size of its input.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header Parse accepts (100 MiB), as in
// the reference Rust implementation.
const MaxHeaderSize = 100 << 20

// maxDim bounds each dimension of a shape: larger values are rejected as
// absurd even when another dimension is 0.
const maxDim = 1<<31 - 1

// metadataKey is the reserved header key holding string metadata.
const metadataKey = "__metadata__"

// DType is a safetensors element type, spelled as in the header ("F32").
type DType string

// The element types of the safetensors format.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
)

// Size returns the number of bytes of one element of d, or 0 when d is not
// a safetensors dtype.
func (d DType) Size() int {
	switch d {
	case BOOL, U8, I8, F8E5M2, F8E4M3:
		return 1
	case I16, U16, F16, BF16:
		return 2
	case I32, U32, F32:
		return 4
	case F64, I64, U64:
		return 8
	}
	return 0
}

// Tensor is one named array of a file: Data holds the row-major
// little-endian bytes, len(Data) = product(Shape)·DType.Size(). A Shape of
// length 0 is a scalar.
type Tensor struct {
	DType DType
	Shape []int
	Data  []byte
}

// NumElements returns the product of t's shape (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// check returns an error when t's dtype is unknown, its shape negative or
// absurd, or its data of the wrong length.
func (t Tensor) check() error {
	size := t.DType.Size()
	if size == 0 {
		return fmt.Errorf("unknown dtype %q", t.DType)
	}
	want, err := byteLen(t.Shape, size)
	if err != nil {
		return err
	}
	if uint64(len(t.Data)) != want {
		return fmt.Errorf("shape %v of %s needs %d bytes, data has %d", t.Shape, t.DType, want, len(t.Data))
	}
	return nil
}

// byteLen returns product(shape)·size, or an error when a dimension is
// negative or larger than maxDim, or the product overflows.
func byteLen(shape []int, size int) (uint64, error) {
	n := uint64(size)
	for i, d := range shape {
		if d < 0 || d > maxDim {
			return 0, fmt.Errorf("dimension %d of shape %v is %d; want 0 to %d", i, shape, d, maxDim)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > 1<<62 {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n = lo
	}
	return n, nil
}

// File is the content of a safetensors file.
type File struct {
	// Tensors maps each name to its tensor.
	Tensors map[string]Tensor
	// Metadata is the header's "__metadata__" object; nil when absent.
	Metadata map[string]string
}

// Names returns the tensor names of f in increasing order.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.Tensors))
	for n := range f.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// headerEntry is a tensor's entry in the JSON header; pointers tell a
// missing field from a zero one.
type headerEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// span is a tensor's byte range in the data buffer.
type span struct {
	name       string
	begin, end uint64
}

// ReadFile reads and parses the safetensors file at path.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return f, nil
}

// Parse decodes a safetensors file held in b. The tensors' Data slices
// alias b: copy them before changing b.
func Parse(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("safetensors: file is %d bytes, shorter than the 8-byte header length; is it a safetensors file?", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the %d-byte limit; is it a safetensors file?", n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the %d bytes after it; the file is truncated or not a safetensors file", n, len(b)-8)
	}
	header, buf := b[8:8+n], b[8+n:]
	if !utf8.Valid(header) {
		return nil, errors.New("safetensors: header is not valid UTF-8")
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, errors.New("safetensors: header does not start with '{'; is it a safetensors file?")
	}

	f := &File{Tensors: make(map[string]Tensor)}
	var spans []span
	err := walkObject(header, func(name string, raw json.RawMessage) error {
		if name == metadataKey {
			if f.Metadata != nil {
				return fmt.Errorf("duplicate %q", metadataKey)
			}
			var m map[string]string
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("%q must be an object of strings: %v", metadataKey, err)
			}
			if m == nil {
				m = map[string]string{}
			}
			f.Metadata = m
			return nil
		}
		if _, dup := f.Tensors[name]; dup {
			return fmt.Errorf("tensor %q: duplicate name", name)
		}
		t, s, err := parseEntry(name, raw, buf)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		f.Tensors[name] = t
		spans = append(spans, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if err := checkCoverage(spans, uint64(len(buf))); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return f, nil
}

// walkObject calls fn for each member of the JSON object in header, in
// order, and checks that nothing but white space follows the object.
// Unlike json.Unmarshal into a map, it sees duplicate keys.
func walkObject(header []byte, fn func(key string, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(header))
	if _, err := dec.Token(); err != nil { // '{', checked by the caller
		return fmt.Errorf("invalid JSON header: %v", err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON header: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("invalid JSON header: key %v is not a string", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("invalid JSON header at %q: %v", key, err)
		}
		if err := fn(key, raw); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return fmt.Errorf("invalid JSON header: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON header: data after the top-level object")
	}
	return nil
}

// parseEntry decodes one tensor's header entry and slices its data from buf.
func parseEntry(name string, raw json.RawMessage, buf []byte) (Tensor, span, error) {
	var e headerEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return Tensor{}, span{}, fmt.Errorf("invalid entry: %v", err)
	}
	switch {
	case e.DType == nil:
		return Tensor{}, span{}, errors.New(`missing "dtype"`)
	case e.Shape == nil:
		return Tensor{}, span{}, errors.New(`missing "shape"`)
	case e.DataOffsets == nil:
		return Tensor{}, span{}, errors.New(`missing "data_offsets"`)
	}
	dt := DType(*e.DType)
	if dt.Size() == 0 {
		return Tensor{}, span{}, fmt.Errorf("unknown dtype %q", *e.DType)
	}
	shape := make([]int, len(*e.Shape))
	for i, d := range *e.Shape {
		if d < 0 || d > maxDim {
			return Tensor{}, span{}, fmt.Errorf("dimension %d of shape %v is %d; want 0 to %d", i, *e.Shape, d, maxDim)
		}
		shape[i] = int(d)
	}
	want, err := byteLen(shape, dt.Size())
	if err != nil {
		return Tensor{}, span{}, err
	}
	off := *e.DataOffsets
	if len(off) != 2 {
		return Tensor{}, span{}, fmt.Errorf("data_offsets has %d values, want 2 (begin, end)", len(off))
	}
	begin, end := off[0], off[1]
	switch {
	case begin < 0 || end < 0:
		return Tensor{}, span{}, fmt.Errorf("data_offsets [%d, %d] are negative", begin, end)
	case end < begin:
		return Tensor{}, span{}, fmt.Errorf("data_offsets [%d, %d] end before they begin", begin, end)
	case uint64(end) > uint64(len(buf)):
		return Tensor{}, span{}, fmt.Errorf("data_offsets [%d, %d] run past the %d-byte data buffer", begin, end, len(buf))
	case uint64(end-begin) != want:
		return Tensor{}, span{}, fmt.Errorf("data_offsets [%d, %d] hold %d bytes, shape %v of %s needs %d", begin, end, end-begin, shape, dt, want)
	}
	t := Tensor{DType: dt, Shape: shape, Data: buf[begin:end:end]}
	return t, span{name, uint64(begin), uint64(end)}, nil
}

// checkCoverage checks that the spans tile [0, size) exactly: no overlap,
// no hole, nothing left over.
func checkCoverage(spans []span, size uint64) error {
	slices.SortFunc(spans, func(a, b span) int {
		if c := cmpU64(a.begin, b.begin); c != 0 {
			return c
		}
		return cmpU64(a.end, b.end)
	})
	var at uint64
	prev := ""
	for _, s := range spans {
		switch {
		case s.begin < at:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at %d", s.name, s.begin, s.end, prev, at)
		case s.begin > at:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a hole: bytes [%d, %d) of the data buffer belong to no tensor", s.name, s.begin, s.end, at, s.begin)
		}
		at, prev = s.end, s.name
	}
	if at != size {
		return fmt.Errorf("tensors cover %d bytes of the %d-byte data buffer; bytes [%d, %d) belong to no tensor", at, size, at, size)
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Encode writes tensors and metadata to w in the safetensors format:
// metadata first, then the tensors in increasing name order, laid out in
// that order in the buffer; the header is padded with spaces to a multiple
// of 8 bytes so that the buffer starts 8-byte aligned. A nil or empty
// metadata writes no "__metadata__".
func Encode(w io.Writer, tensors map[string]Tensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n, t := range tensors {
		if n == "" || n == metadataKey {
			return fmt.Errorf("safetensors: encode: invalid tensor name %q", n)
		}
		if err := t.check(); err != nil {
			return fmt.Errorf("safetensors: encode: tensor %q: %w", n, err)
		}
		names = append(names, n)
	}
	sort.Strings(names)

	var h strings.Builder
	h.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return fmt.Errorf("safetensors: encode: metadata: %w", err)
		}
		fmt.Fprintf(&h, "%q:%s", metadataKey, m)
	}
	var off uint64
	for i, n := range names {
		t := tensors[n]
		key, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("safetensors: encode: tensor %q: %w", n, err)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sh, _ := json.Marshal(shape) // []int always marshals
		if i > 0 || len(metadata) > 0 {
			h.WriteByte(',')
		}
		end := off + uint64(len(t.Data))
		fmt.Fprintf(&h, `%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, key, t.DType, sh, off, end)
		off = end
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}

	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(h.Len()))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("safetensors: encode: %w", err)
	}
	if _, err := io.WriteString(w, h.String()); err != nil {
		return fmt.Errorf("safetensors: encode: %w", err)
	}
	for _, n := range names {
		if _, err := w.Write(tensors[n].Data); err != nil {
			return fmt.Errorf("safetensors: encode: %w", err)
		}
	}
	return nil
}

package predict

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteNPY writes t in NumPy's .npy format, version 1.0: the magic
// "\x93NUMPY", the version, a little-endian uint16 header length, a header
// dict {'descr': '<f4', 'fortran_order': False, 'shape': (...), } padded with
// spaces and a newline so the data starts at a multiple of 64 bytes, then the
// float32 values little-endian in C order. numpy.load reads it.
func (t *Tensor) WriteNPY(w io.Writer) error {
	if n := shapeSize(t.Shape); n != len(t.Data) {
		return fmt.Errorf("predict: npy: shape %v holds %d values, the tensor has %d", t.Shape, n, len(t.Data))
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape)
	const prefix = 10 // magic, version, header length
	pad := 64 - (prefix+len(header)+1)%64
	if pad == 64 {
		pad = 0
	}
	header += strings.Repeat(" ", pad) + "\n"
	if len(header) > math.MaxUint16 {
		return fmt.Errorf("predict: npy: a %d-dimensional shape does not fit a version 1.0 header", len(t.Shape))
	}
	buf := make([]byte, 0, prefix+len(header)+4*len(t.Data))
	buf = append(buf, "\x93NUMPY\x01\x00"...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(header)))
	buf = append(buf, header...)
	for _, v := range t.Data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("predict: npy: %w", err)
	}
	return nil
}

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

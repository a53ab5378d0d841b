package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Float32s returns t's elements as float32. F32, F16 and BF16 convert
// exactly; F64 rounds to the nearest float32. Other dtypes are an error.
func (t Tensor) Float32s() ([]float32, error) {
	if t.DType == F64 {
		v, err := t.Float64s()
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out, nil
	}
	if err := t.checkAs("Float32s", F32, F16, BF16); err != nil {
		return nil, err
	}
	out := make([]float32, len(t.Data)/t.DType.Size())
	b := t.Data
	for i := range out {
		switch t.DType {
		case F32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		case F16:
			out[i] = float16To32(binary.LittleEndian.Uint16(b[2*i:]))
		case BF16:
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	}
	return out, nil
}

// Float64s returns t's elements as float64; F64, F32, F16 and BF16 all
// convert exactly. Other dtypes are an error.
func (t Tensor) Float64s() ([]float64, error) {
	if t.DType == F32 || t.DType == F16 || t.DType == BF16 {
		v, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out, nil
	}
	if err := t.checkAs("Float64s", F64); err != nil {
		return nil, err
	}
	out := make([]float64, len(t.Data)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return out, nil
}

// Int64s returns t's elements as int64 for the integer dtypes (I64, I32,
// I16, I8, U32, U16, U8, BOOL as 0/1, and U64 when every value fits).
func (t Tensor) Int64s() ([]int64, error) {
	if err := t.checkAs("Int64s", I64, I32, I16, I8, U64, U32, U16, U8, BOOL); err != nil {
		return nil, err
	}
	b := t.Data
	out := make([]int64, len(b)/t.DType.Size())
	for i := range out {
		switch t.DType {
		case I64:
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		case U64:
			u := binary.LittleEndian.Uint64(b[8*i:])
			if u > math.MaxInt64 {
				return nil, fmt.Errorf("safetensors: Int64s: element %d is %d, beyond int64", i, u)
			}
			out[i] = int64(u)
		case I32:
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		case U32:
			out[i] = int64(binary.LittleEndian.Uint32(b[4*i:]))
		case I16:
			out[i] = int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		case U16:
			out[i] = int64(binary.LittleEndian.Uint16(b[2*i:]))
		case I8:
			out[i] = int64(int8(b[i]))
		case U8, BOOL:
			out[i] = int64(b[i])
		}
	}
	return out, nil
}

// checkAs returns an error unless t is a consistent tensor of one of the
// dtypes ok.
func (t Tensor) checkAs(method string, ok ...DType) error {
	if !slices.Contains(ok, t.DType) {
		return fmt.Errorf("safetensors: %s of a %s tensor: want one of %v", method, t.DType, ok)
	}
	if err := t.check(); err != nil {
		return fmt.Errorf("safetensors: %s: %w", method, err)
	}
	return nil
}

// float16To32 converts an IEEE 754 half-precision value exactly.
func float16To32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0: // zero or subnormal: mant·2⁻²⁴
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(v) | sign)
	case 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// FromFloat32 returns an F32 tensor of the given shape holding v (copied).
// The caller keeps len(v) = product(shape); Encode reports a mismatch.
func FromFloat32(shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: F32, Shape: slices.Clone(shape), Data: b}
}

// FromFloat64 returns an F64 tensor of the given shape holding v (copied).
func FromFloat64(shape []int, v []float64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return Tensor{DType: F64, Shape: slices.Clone(shape), Data: b}
}

// FromInt64 returns an I64 tensor of the given shape holding v (copied).
func FromInt64(shape []int, v []int64) Tensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return Tensor{DType: I64, Shape: slices.Clone(shape), Data: b}
}

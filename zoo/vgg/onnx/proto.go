package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers and enum values from onnx.proto (github.com/onnx/onnx,
// onnx/onnx.proto; the same numbers in every IR version since 7).
const (
	// message ModelProto
	modelIRVersion     protowire.Number = 1  // optional int64 ir_version = 1
	modelProducerName  protowire.Number = 2  // optional string producer_name = 2
	modelProducerVer   protowire.Number = 3  // optional string producer_version = 3
	modelDocString     protowire.Number = 6  // optional string doc_string = 6
	modelGraph         protowire.Number = 7  // optional GraphProto graph = 7
	modelOpsetImport   protowire.Number = 8  // repeated OperatorSetIdProto opset_import = 8
	modelMetadataProps protowire.Number = 14 // repeated StringStringEntryProto metadata_props = 14

	// message OperatorSetIdProto
	opsetDomain  protowire.Number = 1 // optional string domain = 1
	opsetVersion protowire.Number = 2 // optional int64 version = 2

	// message StringStringEntryProto
	entryKey   protowire.Number = 1 // optional string key = 1
	entryValue protowire.Number = 2 // optional string value = 2

	// message GraphProto
	graphNode        protowire.Number = 1  // repeated NodeProto node = 1
	graphName        protowire.Number = 2  // optional string name = 2
	graphInitializer protowire.Number = 5  // repeated TensorProto initializer = 5
	graphInput       protowire.Number = 11 // repeated ValueInfoProto input = 11
	graphOutput      protowire.Number = 12 // repeated ValueInfoProto output = 12

	// message NodeProto
	nodeInput     protowire.Number = 1 // repeated string input = 1
	nodeOutput    protowire.Number = 2 // repeated string output = 2
	nodeName      protowire.Number = 3 // optional string name = 3
	nodeOpType    protowire.Number = 4 // optional string op_type = 4
	nodeAttribute protowire.Number = 5 // repeated AttributeProto attribute = 5

	// message AttributeProto
	attrName protowire.Number = 1  // optional string name = 1
	attrF    protowire.Number = 2  // optional float f = 2
	attrI    protowire.Number = 3  // optional int64 i = 3
	attrInts protowire.Number = 8  // repeated int64 ints = 8
	attrType protowire.Number = 20 // optional AttributeType type = 20

	// enum AttributeProto.AttributeType
	attrTypeFloat = 1 // FLOAT = 1
	attrTypeInt   = 2 // INT = 2
	attrTypeInts  = 7 // INTS = 7

	// message TensorProto
	tensorDims     protowire.Number = 1 // repeated int64 dims = 1
	tensorDataType protowire.Number = 2 // optional int32 data_type = 2
	tensorName     protowire.Number = 8 // optional string name = 8
	tensorRawData  protowire.Number = 9 // optional bytes raw_data = 9 (fixed-width little-endian)

	// enum TensorProto.DataType
	dataTypeFloat = 1 // FLOAT = 1

	// message ValueInfoProto
	valueName protowire.Number = 1 // optional string name = 1
	valueType protowire.Number = 2 // optional TypeProto type = 2

	// message TypeProto
	typeTensorType protowire.Number = 1 // Tensor tensor_type = 1 (oneof value)

	// message TypeProto.Tensor
	typeTensorElemType protowire.Number = 1 // optional int32 elem_type = 1
	typeTensorShape    protowire.Number = 2 // optional TensorShapeProto shape = 2

	// message TensorShapeProto
	shapeDim protowire.Number = 1 // repeated Dimension dim = 1

	// message TensorShapeProto.Dimension
	dimValue protowire.Number = 1 // int64 dim_value = 1 (oneof value)
	dimParam protowire.Number = 2 // string dim_param = 2 (oneof value)
)

// msg is an encoded protobuf message under construction. Repeated scalar
// fields are written unpacked, as proto2 declares them in onnx.proto.
type msg []byte

func (b msg) str(f protowire.Number, s string) msg {
	b = protowire.AppendTag(b, f, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func (b msg) int(f protowire.Number, v int64) msg {
	b = protowire.AppendTag(b, f, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func (b msg) float(f protowire.Number, v float32) msg {
	b = protowire.AppendTag(b, f, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, math.Float32bits(v))
}

func (b msg) sub(f protowire.Number, m msg) msg {
	b = protowire.AppendTag(b, f, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func (b msg) ints(f protowire.Number, vs []int64) msg {
	for _, v := range vs {
		b = b.int(f, v)
	}
	return b
}

// Attribute builders (AttributeProto).

func attrInt(name string, v int64) msg {
	return msg(nil).str(attrName, name).int(attrType, attrTypeInt).int(attrI, v)
}

func attrFloat(name string, v float32) msg {
	return msg(nil).str(attrName, name).int(attrType, attrTypeFloat).float(attrF, v)
}

func attrIntList(name string, vs ...int64) msg {
	return msg(nil).str(attrName, name).int(attrType, attrTypeInts).ints(attrInts, vs)
}

// node encodes a NodeProto.
func node(name, opType string, inputs, outputs []string, attrs ...msg) msg {
	var b msg
	for _, in := range inputs {
		b = b.str(nodeInput, in)
	}
	for _, out := range outputs {
		b = b.str(nodeOutput, out)
	}
	b = b.str(nodeName, name).str(nodeOpType, opType)
	for _, a := range attrs {
		b = b.sub(nodeAttribute, a)
	}
	return b
}

// valueInfo encodes a float32 ValueInfoProto; a dimension of -1 is the
// symbolic "batch".
func valueInfo(name string, dims []int) msg {
	var shape msg
	for _, d := range dims {
		if d < 0 {
			shape = shape.sub(shapeDim, msg(nil).str(dimParam, "batch"))
		} else {
			shape = shape.sub(shapeDim, msg(nil).int(dimValue, int64(d)))
		}
	}
	tt := msg(nil).int(typeTensorElemType, dataTypeFloat).sub(typeTensorShape, shape)
	return msg(nil).str(valueName, name).sub(valueType, msg(nil).sub(typeTensorType, tt))
}

// entry encodes a StringStringEntryProto.
func entry(key, value string) msg { return msg(nil).str(entryKey, key).str(entryValue, value) }

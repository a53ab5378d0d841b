// Package onnx exports gozoo VGG models to ONNX, the exchange format that
// onnxruntime, TensorRT, OpenVINO and most inference servers load.
//
// Export writes one self-contained ModelProto (IR version 8, opset 17,
// producer "gozoo") in evaluation mode: the input "input" is float32
// (batch, C, H, W) with a symbolic batch dimension, so one file serves any
// batch size; the output is "logits" (batch, classes), or "features" for the
// none head. Each layer becomes the standard operator PyTorch's exporter
// would use — Conv, BatchNormalization (running statistics, epsilon 1e-5),
// Relu, MaxPool, Flatten, Gemm (transB=1) — and Dropout disappears. The
// weights are initializers named as in torchvision's state_dict
// (features.0.weight, features.1.running_var, classifier.6.bias), so a tool
// that maps ONNX initializers back to PyTorch modules finds them by name.
//
// AdaptiveAvgPool2d is exported exactly: as AveragePool when the input size
// is a multiple of the output size, and otherwise as two MatMuls with
// constant averaging matrices (rows then columns), which reproduces
// PyTorch's overlapping windows and also the replication of a 1×1 feature
// map to torchvision's 7×7.
//
// The input normalization the model expects, the model's name and options
// and the class names go in the file's metadata_props (gozoo.mean,
// gozoo.std, gozoo.model, gozoo.options (see vgg.FromMetadata), gozoo.classes), all
// JSON but gozoo.model.
//
// The protobuf is written with google.golang.org/protobuf/encoding/protowire,
// without generated code; the weights are streamed to the writer, so
// exporting a full-size VGG16 does not hold a second copy of its 528 MB.
package onnx

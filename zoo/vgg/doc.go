// Package vgg builds the VGG family (Simonyan & Zisserman, arXiv:1409.1556)
// as Gorgonia expression graphs: VGG11, VGG13, VGG16 and VGG19 (configurations
// A, B, D and E), each with and without batch normalisation, from one
// declarative configuration walker like torchvision's make_layers.
//
// Building is in two steps. An Arch is the architecture alone: the list of
// layers with their output shapes, parameter counts and multiply-accumulates,
// cheap to compute at any size (zoo summary uses it). A Model adds the
// parameter tensors, initialised as torchvision initialises them and named as
// torchvision's state_dict names them (features.0.weight,
// features.1.running_mean, classifier.6.bias, ...). From one Model any number
// of Graphs can be built (a training graph of batch 64 and an evaluation graph
// of batch 100, say); they share the parameter tensors and the batch-norm
// running statistics, so evaluating never disturbs training.
//
// Every layer's output is a node of the graph, found by the layer's name
// (features.30, classifier.0, or block1 … block5 for the output of each
// stage's pooling), so a Go program can read any intermediate activation,
// change the configuration or put its own head on the features.
package vgg

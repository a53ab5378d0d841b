// Package predict uses a trained VGG model: it decodes PNG and JPEG images,
// resizes and center-crops them to the model's input size, normalizes them
// with the mean and std the model was trained with, runs them in batches and
// turns the logits into class probabilities, or reads any named activation
// (features.30, block4, classifier.0, ...) as a feature tensor.
//
// Preprocessing follows torchvision's Resize(S) + CenterCrop(S) on PIL
// images: the image is scaled so that it covers the model's H×W input (for a
// square input, its shorter side becomes S and the longer one
// ⌊long·S/short⌋) with PIL's antialiased bilinear filter (a triangle filter
// whose support widens with the downscaling factor, so large photos are
// averaged, not aliased), then the centre H×W is cropped. Pixels are read as
// straight (non-premultiplied) RGB in [0, 1]: alpha is dropped, as PIL's
// convert("RGB") does.
//
// A Predictor is safe for concurrent use: one mutex serializes the forward
// passes, and it caches one Gorgonia graph per batch size (and per watched
// layer) it meets, since Gorgonia graphs have a fixed batch size.
package predict

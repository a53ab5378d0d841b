package nn

import "fmt"

// CrossEntropy is layers.CrossEntropy: the mean over rows of the smoothed
// softmax cross-entropy of logits z (N, K) with labels (N class indices,
// checked here on the host). It returns the loss (a 1-element tensor) and
// the uploaded labels for CrossEntropyGrad.
func (b *Backend) CrossEntropy(z Tensor, labels []float32, smoothing float64) (loss, lab Tensor, err error) {
	if len(z.Shape) != 2 || z.Shape[0] != len(labels) {
		return loss, lab, fmt.Errorf("nn: CrossEntropy: logits %v and %d labels; want (N, K) and N", z.Shape, len(labels))
	}
	n, k := z.Shape[0], z.Shape[1]
	if err := checkLabels(labels, k); err != nil {
		return loss, lab, err
	}
	if lab, err = b.Upload(labels, n); err != nil {
		return loss, lab, err
	}
	rows, err := b.Empty(2 * n) // double per row
	if err != nil {
		return loss, lab, err
	}
	defer b.Free(rows)
	if loss, err = b.Empty(1); err != nil {
		return loss, lab, err
	}
	if err = b.elementwise("xent_rows", n, z.Buf, lab.Buf, rows.Buf, n, k, smoothing); err == nil {
		err = b.elementwise("xent_mean", 1, rows.Buf, loss.Buf, n)
	}
	return loss, lab, err
}

// CrossEntropyGrad returns dz (N, K) for an output gradient g (1 for the
// loss itself).
func (b *Backend) CrossEntropyGrad(z, labels Tensor, smoothing, g float64) (Tensor, error) {
	n, k := z.Shape[0], z.Shape[1]
	dz, err := b.Empty(n, k)
	if err == nil {
		err = b.elementwise("xent_grad", n, z.Buf, labels.Buf, dz.Buf, n, k, smoothing, g)
	}
	return dz, err
}

package train

import (
	"context"
	"fmt"
)

// Eval holds the metrics of one pass over a data set in evaluation mode.
type Eval struct {
	Images   int       `json:"images"`
	Loss     float64   `json:"loss"` // mean cross-entropy per image
	Top1     float64   `json:"top1"` // fraction of images
	Top5     float64   `json:"top5"`
	PerClass []float64 `json:"per_class"`
	// Confusion[i][j] counts images of class i predicted as j.
	Confusion [][]int `json:"confusion"`
}

// Evaluate runs net over every batch of data (the last partial batch
// included) in evaluation mode.
func Evaluate(ctx context.Context, net Net, data Data) (*Eval, error) {
	k := net.Classes()
	ev := &Eval{PerClass: make([]float64, k), Confusion: make([][]int, k)}
	for i := range ev.Confusion {
		ev.Confusion[i] = make([]int, k)
	}
	var lossSum float64
	var top1, top5 int
	for batch, err := range data.Epoch(ctx, 0) {
		if err != nil {
			return nil, fmt.Errorf("train: evaluate: %w", err)
		}
		out, err := net.Forward(batch.Images, batch.Labels, false)
		if err != nil {
			return nil, fmt.Errorf("train: evaluate: %w", err)
		}
		n := len(batch.Labels)
		ev.Images += n
		lossSum += out.Loss * float64(n)
		t1, t5 := topK(out.Logits, batch.Labels, k)
		top1 += t1
		top5 += t5
		for i, l := range batch.Labels {
			ev.Confusion[l][argmax(out.Logits[i*k:(i+1)*k])]++
		}
	}
	if ev.Images == 0 {
		return nil, fmt.Errorf("train: evaluate: the data set is empty")
	}
	ev.Loss = lossSum / float64(ev.Images)
	ev.Top1 = float64(top1) / float64(ev.Images)
	ev.Top5 = float64(top5) / float64(ev.Images)
	for c, row := range ev.Confusion {
		total := 0
		for _, v := range row {
			total += v
		}
		if total > 0 {
			ev.PerClass[c] = float64(row[c]) / float64(total)
		}
	}
	return ev, nil
}

// topK counts the images whose label is the top prediction, and those whose
// label is among the five highest (among all classes when there are fewer).
// A label's rank counts the classes scoring strictly higher, ties going to
// the label, as torch.topk does in practice for distinct scores.
func topK(logits []float32, labels []int, k int) (top1, top5 int) {
	for i, l := range labels {
		row := logits[i*k : (i+1)*k]
		higher := 0
		for j, v := range row {
			if v > row[l] || (v == row[l] && j < l) {
				higher++
			}
		}
		if higher == 0 {
			top1++
		}
		if higher < 5 {
			top5++
		}
	}
	return top1, top5
}

// argmax returns the index of the first largest value.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

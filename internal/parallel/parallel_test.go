package parallel

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// TestSplitDynamicCovers checks that Run hands out every item
// exactly once, in chunks no smaller than later ones, worker indexes in
// range and never two calls of one worker at once.
func TestSplitDynamicCovers(t *testing.T) {
	for _, tc := range []struct{ n, chunks, workers, wantCalls int }{
		{n: 1, chunks: 1, workers: 3, wantCalls: 1},
		{n: 10, chunks: 4, workers: 1, wantCalls: 1},
		{n: 36, chunks: 16, workers: 2, wantCalls: 16},
		{n: 5, chunks: 16, workers: 8, wantCalls: 5},
		{n: 1000, chunks: 7, workers: 3, wantCalls: 7},
	} {
		seen := make([]int, tc.n)
		var mu sync.Mutex
		busy := make([]bool, tc.workers)
		var sizes [][2]int
		Run(tc.n, tc.chunks, tc.workers, func(k, lo, hi int) {
			mu.Lock()
			if k < 0 || k >= tc.workers || busy[k] {
				t.Errorf("Run(%d, %d, %d): worker %d out of range or already busy", tc.n, tc.chunks, tc.workers, k)
			}
			busy[k] = true
			sizes = append(sizes, [2]int{lo, hi - lo})
			mu.Unlock()
			for i := lo; i < hi; i++ {
				seen[i]++
			}
			mu.Lock()
			busy[k] = false
			mu.Unlock()
		})
		if len(sizes) != tc.wantCalls {
			t.Errorf("Run(%d, %d, %d): %d calls, want %d", tc.n, tc.chunks, tc.workers, len(sizes), tc.wantCalls)
		}
		slices.SortFunc(sizes, func(a, b [2]int) int { return a[0] - b[0] })
		for i := 1; i < len(sizes); i++ {
			if sizes[i][1] > sizes[i-1][1] {
				t.Errorf("Run(%d, %d, %d): chunk at %d holds %d items, more than the one before it (%d)", tc.n, tc.chunks, tc.workers, sizes[i][0], sizes[i][1], sizes[i-1][1])
			}
		}
		for i, k := range seen {
			if k != 1 {
				t.Errorf("Run(%d, %d, %d): item %d handed out %d times, want 1", tc.n, tc.chunks, tc.workers, i, k)
				break
			}
		}
	}
}

// TestSplitDynamicNested runs splits inside the chunks of a split, and
// splits from several goroutines at once: those that find workerPool busy
// start goroutines of their own; every item must still be done once.
func TestSplitDynamicNested(t *testing.T) {
	const outer, inner = 6, 50
	var seen [outer * inner]atomic.Int32
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			Run(outer, outer, 3, func(_, lo, hi int) {
				for i := lo; i < hi; i++ {
					Run(inner, 7, 2, func(_, a, b int) {
						for j := a; j < b; j++ {
							seen[i*inner+j].Add(1)
						}
					})
				}
			})
		})
	}
	wg.Wait()
	for i := range seen {
		if got := seen[i].Load(); got != 3 {
			t.Fatalf("item %d done %d times, want 3 (once per split)", i, got)
		}
	}
}

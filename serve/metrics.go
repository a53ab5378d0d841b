package serve

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
)

// metrics are the server's counters and histograms, written in the
// Prometheus text exposition format (version 0.0.4) by hand: three metric
// families do not justify a client library and its dependencies.
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // (path, code) → count
	latency  map[string]*histogram
	batch    *histogram
	forward  *histogram
}

// latencyBuckets are request durations in seconds.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newMetrics(maxBatch int) *metrics {
	var sizes []float64
	for b := 1; b < maxBatch; b *= 2 {
		sizes = append(sizes, float64(b))
	}
	sizes = append(sizes, float64(maxBatch))
	return &metrics{
		requests: make(map[[2]string]uint64),
		latency:  make(map[string]*histogram),
		batch:    &histogram{bounds: sizes},
		forward:  &histogram{bounds: latencyBuckets},
	}
}

// histogram counts observations at or below each bound.
type histogram struct {
	bounds []float64
	counts []uint64 // per bound, not cumulative; one more for +Inf
	sum    float64
	n      uint64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(h.bounds)+1)
	}
	i, _ := slices.BinarySearch(h.bounds, v) // the first bound ≥ v
	h.counts[i]++
	h.sum += v
	h.n++
}

// write writes the histogram's series; labels is "" or `path="/x",`.
func (h *histogram) write(w io.Writer, name, labels string) {
	var cum uint64
	for i, b := range h.bounds {
		if h.counts != nil {
			cum += h.counts[i]
		}
		fmt.Fprintf(w, "%s_bucket{%sle=\"%s\"} %d\n", name, labels, strconv.FormatFloat(b, 'g', -1, 64), cum)
	}
	fmt.Fprintf(w, "%s_bucket{%sle=\"+Inf\"} %d\n", name, labels, h.n)
	braces := ""
	if labels != "" {
		braces = "{" + labels[:len(labels)-1] + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %s\n%s_count%s %d\n", name, braces, strconv.FormatFloat(h.sum, 'g', -1, 64), name, braces, h.n)
}

func (m *metrics) request(path string, code int, seconds float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[2]string{path, strconv.Itoa(code)}]++
	h, ok := m.latency[path]
	if !ok {
		h = &histogram{bounds: latencyBuckets}
		m.latency[path] = h
	}
	h.observe(seconds)
}

func (m *metrics) forwardPass(images int, seconds float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batch.observe(float64(images))
	m.forward.observe(seconds)
}

// write writes every metric in the text exposition format.
func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintln(w, "# HELP zoo_http_requests_total HTTP requests by path and status code.")
	fmt.Fprintln(w, "# TYPE zoo_http_requests_total counter")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	for _, k := range keys {
		fmt.Fprintf(w, "zoo_http_requests_total{path=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	fmt.Fprintln(w, "# HELP zoo_http_request_duration_seconds HTTP request latency by path, from the request's arrival to the answer.")
	fmt.Fprintln(w, "# TYPE zoo_http_request_duration_seconds histogram")
	paths := make([]string, 0, len(m.latency))
	for p := range m.latency {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		m.latency[p].write(w, "zoo_http_request_duration_seconds", fmt.Sprintf("path=%q,", p))
	}
	fmt.Fprintln(w, "# HELP zoo_batch_size Images per forward pass.")
	fmt.Fprintln(w, "# TYPE zoo_batch_size histogram")
	m.batch.write(w, "zoo_batch_size", "")
	fmt.Fprintln(w, "# HELP zoo_forward_duration_seconds Duration of each batched forward pass.")
	fmt.Fprintln(w, "# TYPE zoo_forward_duration_seconds histogram")
	m.forward.write(w, "zoo_forward_duration_seconds", "")
}

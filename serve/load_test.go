package serve

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gozoo/gozoo/predict"
	"github.com/gozoo/gozoo/zoo/vgg"
)

// TestLoad is a bounded load test on loopback: N requests from C concurrent
// clients, batched (MaxBatch 16) against unbatched (MaxBatch 1), reporting
// throughput and p50/p99 latency. Environment: ZOO_LOAD_MODEL (default
// vgg11_bn), ZOO_LOAD_WIDTH (default 0.0625), ZOO_LOAD_N (default 160),
// ZOO_LOAD_C (default 16). docs/serving.md has the numbers.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	model := envOr("ZOO_LOAD_MODEL", "vgg11_bn")
	width, errW := strconv.ParseFloat(envOr("ZOO_LOAD_WIDTH", "0.0625"), 64)
	n, errN := strconv.Atoi(envOr("ZOO_LOAD_N", "160"))
	c, errC := strconv.Atoi(envOr("ZOO_LOAD_C", "16"))
	if err := errors.Join(errW, errN, errC); err != nil || width <= 0 || n < 1 || c < 1 {
		t.Fatalf("ZOO_LOAD_WIDTH=%g, ZOO_LOAD_N=%d, ZOO_LOAD_C=%d (%v): set a positive width and whole numbers n, c ≥ 1, or unset them", width, n, c, err)
	}
	m, err := vgg.New(model, vgg.Options{WidthMult: width, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	body := encodePNG(t, testImage(64, 48))
	for _, mode := range []struct {
		name     string
		maxBatch int
	}{{"unbatched", 1}, {"batched", 16}} {
		t.Run(mode.name, func(t *testing.T) {
			p, err := predict.New(m, predict.Options{MaxBatch: 16})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			url, _ := startServer(t, p, Config{MaxBatch: mode.maxBatch, MaxWait: 5 * time.Millisecond})
			load(url, body, 2*c, c) // warm up: build the graphs
			text := metricsText(t, url)
			passes0, images0 := metricValue(t, text, "zoo_batch_size_count"), metricValue(t, text, "zoo_batch_size_sum")
			r := load(url, body, n, c)
			text = metricsText(t, url)
			passes := metricValue(t, text, "zoo_batch_size_count") - passes0
			images := metricValue(t, text, "zoo_batch_size_sum") - images0
			t.Logf("%s width %g, max-batch %d: %d requests from %d clients: %.1f req/s, p50 %.1f ms, p99 %.1f ms, mean batch %.2f",
				model, width, mode.maxBatch, n, c, r.throughput, r.p50, r.p99, images/passes)
			if r.failed > 0 {
				t.Errorf("%d of %d requests failed", r.failed, n)
			}
			if mode.maxBatch > 1 && images/passes <= 1 {
				t.Errorf("mean batch %.2f with %d concurrent clients: want > 1", images/passes, c)
			}
		})
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

type loadResult struct {
	throughput float64 // requests per second
	p50, p99   float64 // milliseconds
	failed     int
}

// load sends n POST /predict requests from c concurrent clients.
func load(url string, body []byte, n, c int) loadResult {
	var (
		mu        sync.Mutex
		latencies []float64
		failed    int
		wg        sync.WaitGroup
	)
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c}, Timeout: time.Minute}
	start := time.Now()
	for range c {
		wg.Go(func() {
			for range next {
				t0 := time.Now()
				resp, err := client.Post(url+"/predict", "image/png", bytes.NewReader(body))
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				ms := float64(time.Since(t0).Microseconds()) / 1000
				mu.Lock()
				latencies = append(latencies, ms)
				if !ok {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	client.CloseIdleConnections()
	slices.Sort(latencies)
	q := func(f float64) float64 { return latencies[min(len(latencies)-1, int(f*float64(len(latencies))))] }
	return loadResult{throughput: float64(n) / elapsed, p50: q(0.50), p99: q(0.99), failed: failed}
}

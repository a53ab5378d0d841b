package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gozoo/gozoo/predict"
	"github.com/gozoo/gozoo/zoo/vgg"
)

// newPredictor returns a predictor of VGG-11-BN at 1/16 width, seeded weights.
func newPredictor(t testing.TB) *predict.Predictor {
	t.Helper()
	m, err := vgg.New("vgg11_bn", vgg.Options{WidthMult: 0.0625, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	p, err := predict.New(m, predict.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startServer serves on a real loopback listener until the test ends; it
// returns the base URL.
func startServer(t testing.TB, p *predict.Predictor, cfg Config) (string, *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(p, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		s.Close()
	})
	return "http://" + ln.Addr().String(), s
}

func testImage(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 4), uint8(y * 3), 90, 255})
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func multipartBody(t testing.TB, field string, data []byte) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("note", "a field before the image")
	fw, err := mw.CreateFormFile(field, "cat.png")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

func jsonBody(s string) []byte {
	b, _ := json.Marshal(map[string]string{"image": s})
	return b
}

// pngOfSize returns a 1×1 PNG whose header claims w×h pixels.
func pngOfSize(t testing.TB, w, h int) []byte {
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	put := func(i, v int) { b[i], b[i+1], b[i+2], b[i+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v) }
	put(16, w)
	put(20, h)
	crc := crc32IEEE(b[12:29])
	put(29, int(crc))
	return b
}

func crc32IEEE(b []byte) uint32 {
	c := ^uint32(0)
	for _, v := range b {
		c ^= uint32(v)
		for range 8 {
			c = c>>1 ^ 0xedb88320&-(c&1)
		}
	}
	return ^c
}

func post(t testing.TB, c *http.Client, url, ct string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return do(t, c, req)
}

func do(t testing.TB, c *http.Client, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: status %d, body is not JSON: %v", req.Method, req.URL, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", req.Method, req.URL, ct)
	}
	return resp.StatusCode, out
}

func TestPredictInputStyles(t *testing.T) {
	p := newPredictor(t)
	url, _ := startServer(t, p, Config{})
	img := testImage(48, 40)
	pngB, jpgB := encodePNG(t, img), encodeJPEG(t, img)
	want, err := p.Predict([]image.Image{img}, 0)
	if err != nil {
		t.Fatal(err)
	}
	mpCT, mpImage := multipartBody(t, "image", pngB)
	mpCT2, mpFile := multipartBody(t, "file", pngB)
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		name, query, ct string
		body            []byte
		top             int
		exact           bool // a PNG of img: the same pixels as want
	}{
		{"multipart image", "", mpCT, mpImage, 5, true},
		{"multipart file", "?top=2", mpCT2, mpFile, 2, true},
		{"raw png", "", "image/png", pngB, 5, true},
		{"raw jpeg", "?top=10", "image/jpeg", jpgB, 10, false},
		{"octet-stream", "", "application/octet-stream", pngB, 5, true},
		{"json base64", "", "application/json", jsonBody(base64.StdEncoding.EncodeToString(pngB)), 5, true},
		{"json data url", "", "application/json; charset=utf-8", jsonBody("data:image/png;base64," + base64.StdEncoding.EncodeToString(pngB)), 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, got := post(t, c, url+"/predict"+tc.query, tc.ct, tc.body)
			if code != http.StatusOK {
				t.Fatalf("status %d (%v), want 200", code, got)
			}
			preds, _ := got["predictions"].([]any)
			top, _ := got["top"].([]any)
			if len(preds) != 10 || len(top) != tc.top {
				t.Fatalf("%d predictions and %d top classes, want 10 and %d", len(preds), len(top), tc.top)
			}
			first := top[0].(map[string]any)
			if got["predicted_class"] != first["class"] || got["label"] != first["label"] {
				t.Errorf("predicted_class %v %v, top[0] %v", got["predicted_class"], got["label"], first)
			}
			if tc.exact {
				wp := want[0].Top[0]
				if int(got["predicted_class"].(float64)) != wp.Index || math.Abs(got["probability"].(float64)-wp.Probability) > 1e-5 {
					t.Errorf("predicted %v with %v, want %d with %g (predict.Predictor's answer)", got["predicted_class"], got["probability"], wp.Index, wp.Probability)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	url, _ := startServer(t, newPredictor(t), Config{MaxBodyBytes: 64 << 10, MaxPixels: 1 << 20})
	pngB := encodePNG(t, testImage(40, 30))
	big := encodePNG(t, noise(200, 200)) // > 64 KiB of incompressible pixels
	mpCT, mpOther := multipartBody(t, "photo", pngB)
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		name, method, path, ct string
		body                   []byte
		want                   int
	}{
		{"GET predict", http.MethodGet, "/predict", "", nil, http.StatusMethodNotAllowed},
		{"PUT predict", http.MethodPut, "/predict", "image/png", pngB, http.StatusMethodNotAllowed},
		{"POST health", http.MethodPost, "/health", "", nil, http.StatusMethodNotAllowed},
		{"unknown path", http.MethodGet, "/nope", "", nil, http.StatusNotFound},
		{"not an image", http.MethodPost, "/predict", "image/png", []byte("this is text, not a PNG"), http.StatusBadRequest},
		{"truncated png", http.MethodPost, "/predict", "image/png", pngB[:len(pngB)/2], http.StatusBadRequest},
		{"empty body", http.MethodPost, "/predict", "image/png", nil, http.StatusBadRequest},
		{"zero-size png", http.MethodPost, "/predict", "image/png", pngOfSize(t, 0, 10), http.StatusBadRequest},
		{"huge dimensions", http.MethodPost, "/predict", "image/png", pngOfSize(t, 100000, 100000), http.StatusRequestEntityTooLarge},
		{"body too large", http.MethodPost, "/predict", "image/png", big, http.StatusRequestEntityTooLarge},
		{"json too large", http.MethodPost, "/predict", "application/json", jsonBody(base64.StdEncoding.EncodeToString(big)), http.StatusRequestEntityTooLarge},
		{"no content type", http.MethodPost, "/predict", "", pngB, http.StatusUnsupportedMediaType},
		{"text/plain", http.MethodPost, "/predict", "text/plain", pngB, http.StatusUnsupportedMediaType},
		{"bad content type", http.MethodPost, "/predict", "image/", pngB, http.StatusUnsupportedMediaType},
		{"not json", http.MethodPost, "/predict", "application/json", []byte("{image: 1"), http.StatusBadRequest},
		{"json number", http.MethodPost, "/predict", "application/json", []byte(`{"image": 5}`), http.StatusBadRequest},
		{"json unknown key", http.MethodPost, "/predict", "application/json", []byte(`{"img": "AAAA"}`), http.StatusBadRequest},
		{"json no image", http.MethodPost, "/predict", "application/json", []byte(`{}`), http.StatusBadRequest},
		{"bad base64", http.MethodPost, "/predict", "application/json", jsonBody("!!not base64!!"), http.StatusBadRequest},
		{"base64 of text", http.MethodPost, "/predict", "application/json", jsonBody(base64.StdEncoding.EncodeToString([]byte("hello"))), http.StatusBadRequest},
		{"multipart no field", http.MethodPost, "/predict", mpCT, mpOther, http.StatusBadRequest},
		{"multipart no boundary", http.MethodPost, "/predict", "multipart/form-data", pngB, http.StatusBadRequest},
		{"multipart garbage", http.MethodPost, "/predict", "multipart/form-data; boundary=xyz", []byte("garbage"), http.StatusBadRequest},
		{"bad top", http.MethodPost, "/predict?top=zero", "image/png", pngB, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, url+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			code, got := do(t, c, req)
			if code != tc.want {
				t.Errorf("status %d (%v), want %d", code, got, tc.want)
			}
			if msg, _ := got["error"].(string); msg == "" {
				t.Errorf("answer %v has no \"error\" message", got)
			}
		})
	}
	// The server still answers after all that.
	if code, got := post(t, c, url+"/predict", "image/png", pngB); code != http.StatusOK {
		t.Errorf("after the bad requests: status %d (%v), want 200", code, got)
	}
}

func noise(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	x := uint32(1)
	for i := range img.Pix {
		x = x*1664525 + 1013904223
		img.Pix[i] = byte(x >> 24)
	}
	return img
}

func TestHealth(t *testing.T) {
	url, _ := startServer(t, newPredictor(t), Config{MaxBatch: 4})
	req, _ := http.NewRequest(http.MethodGet, url+"/health", nil)
	code, got := do(t, http.DefaultClient, req)
	if code != http.StatusOK || got["status"] != "ok" || got["model"] != "vgg11_bn" || got["classes"] != 10.0 || got["max_batch"] != 4.0 {
		t.Errorf("GET /health: %d %v, want 200 with status ok, model vgg11_bn, 10 classes, max_batch 4", code, got)
	}
}

// metricsText fetches /metrics.
func metricsText(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type %q, want text/plain; version=0.0.4", ct)
	}
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue returns the value of the series named exactly series.
func metricValue(t testing.TB, text, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in\n%s", series, text)
	return 0
}

// TestBatching sends concurrent requests and checks on /metrics that they
// shared forward passes.
func TestBatching(t *testing.T) {
	url, _ := startServer(t, newPredictor(t), Config{MaxBatch: 8, MaxWait: 100 * time.Millisecond})
	body := encodePNG(t, testImage(32, 32))
	const n = 8
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			resp, err := http.Post(url+"/predict", "image/png", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: status %d, want 200", i, c)
		}
	}
	text := metricsText(t, url)
	passes := metricValue(t, text, "zoo_batch_size_count")
	images := metricValue(t, text, "zoo_batch_size_sum")
	single := metricValue(t, text, `zoo_batch_size_bucket{le="1"}`)
	if images != n || passes >= n || single == passes {
		t.Errorf("%g images in %g forward passes (%g of one image): want %d images in fewer passes", images, passes, single, n)
	}
	if got := metricValue(t, text, `zoo_http_requests_total{path="/predict",code="200"}`); got != n {
		t.Errorf("requests_total for /predict 200 = %g, want %d", got, n)
	}
	if got := metricValue(t, text, `zoo_http_request_duration_seconds_count{path="/predict"}`); got != n {
		t.Errorf("latency count for /predict = %g, want %d", got, n)
	}
	t.Logf("%g images in %g forward passes", images, passes)
}

// TestShutdown checks that a request in flight when the context is cancelled
// still gets its answer, that Serve returns, and that no goroutine is left.
func TestShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newPredictor(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	s := New(p, Config{MaxBatch: 16, MaxWait: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	tr := &http.Transport{}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	body := encodePNG(t, testImage(32, 32))
	if code, got := post(t, c, url+"/predict", "image/png", body); code != http.StatusOK { // warm up: build the graph
		t.Fatalf("status %d (%v)", code, got)
	}
	inflight := make(chan int, 1)
	go func() {
		resp, err := c.Post(url+"/predict", "image/png", bytes.NewReader(body))
		if err != nil {
			inflight <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // the request waits in its batch
	cancel()
	if code := <-inflight; code != http.StatusOK {
		t.Errorf("request in flight at shutdown: status %d, want 200", code)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return 5 s after cancel")
	}
	s.Close()
	tr.CloseIdleConnections()
	if _, err := c.Get(url + "/health"); err == nil {
		t.Error("the listener still answers after shutdown")
	}
	tr.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after shutdown, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestCancelledClient: a client that gives up while its request waits for a
// batch leaves nothing behind and the server goes on.
func TestCancelledClient(t *testing.T) {
	url, _ := startServer(t, newPredictor(t), Config{MaxBatch: 16, MaxWait: 200 * time.Millisecond})
	body := encodePNG(t, testImage(32, 32))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/predict", bytes.NewReader(body))
	req.Header.Set("Content-Type", "image/png")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a request cancelled after 50 ms got status %d", resp.StatusCode)
	}
	if code, got := post(t, http.DefaultClient, url+"/predict", "image/png", body); code != http.StatusOK {
		t.Errorf("after a cancelled request: status %d (%v), want 200", code, got)
	}
}

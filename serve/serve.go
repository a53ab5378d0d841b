// Package serve answers predictions over HTTP. Concurrent requests are
// batched: a single goroutine collects up to Config.MaxBatch preprocessed
// images, waiting at most Config.MaxWait after the first, and runs them as
// one forward pass of a predict.Predictor.
//
// Endpoints:
//
//	POST /predict   an image as a multipart form (field "image" or "file"), a
//	                raw body (Content-Type image/png, image/jpeg or
//	                application/octet-stream) or JSON {"image": "<base64>"}
//	                (a data: URL prefix is accepted); ?top=K sets how many
//	                classes "top" lists (default Config.TopK).
//	GET  /health    {"status": "ok", "model": ..., "classes": ..., "input": [3, H, W],
//	                "max_batch": ...}
//	GET  /metrics   Prometheus text format: requests by path and status code,
//	                latency histograms, batch sizes, forward-pass durations
//
// A prediction answers
//
//	{"predictions": [{"class": 0, "label": "airplane", "probability": 0.01}, ...],
//	 "predicted_class": 3, "label": "cat", "probability": 0.72,
//	 "top": [{"class": 3, "label": "cat", "probability": 0.72}, ...]}
//
// where "predictions" holds every class in class order and "top" the K most
// probable, most probable first. Errors answer {"error": "..."} with a 4xx
// status for bad input (400 malformed, 405 wrong method, 413 too large, 415
// wrong content type) and 503 while shutting down.
package serve

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gozoo/gozoo/predict"
)

// Config configures a Server; the zero value of each field means its default.
type Config struct {
	MaxBatch     int           // images per forward pass; default 16 (1 turns batching off)
	MaxWait      time.Duration // how long a batch waits for more images after its first; default 5ms
	MaxBodyBytes int64         // largest request body; default 10 MiB
	MaxPixels    int           // largest image, width × height; default 16 megapixels
	TopK         int           // classes in "top" by default; default 5

	ReadHeaderTimeout time.Duration // default 10s
	ReadTimeout       time.Duration // whole request, body included; default 30s
	WriteTimeout      time.Duration // default 60s
	IdleTimeout       time.Duration // keep-alive connections; default 120s
	ShutdownTimeout   time.Duration // how long Serve waits for requests in flight; default 10s
	ErrorLog          *log.Logger   // the HTTP server's own errors; nil discards them
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 16
	}
	def(&c.MaxWait, 5*time.Millisecond)
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = 16 << 20
	}
	if c.TopK <= 0 {
		c.TopK = 5
	}
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.ReadTimeout, 30*time.Second)
	def(&c.WriteTimeout, 60*time.Second)
	def(&c.IdleTimeout, 120*time.Second)
	def(&c.ShutdownTimeout, 10*time.Second)
	if c.ErrorLog == nil {
		c.ErrorLog = log.New(io.Discard, "", 0)
	}
	return c
}

// Server serves one Predictor. Create it with New and release it with Close.
type Server struct {
	p       *predict.Predictor
	cfg     Config
	metrics *metrics
	queue   chan *job
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the batcher has returned
	once    sync.Once
	mux     *http.ServeMux
}

// job is one image waiting for its forward pass.
type job struct {
	ctx  context.Context
	x    []float32 // (3, H, W)
	k    int
	done chan result // buffered: the batcher never blocks on it
}

type result struct {
	pred predict.Prediction
	err  error
}

// New returns a server for p and starts its batcher.
func New(p *predict.Predictor, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		p:       p,
		cfg:     cfg,
		metrics: newMetrics(cfg.MaxBatch),
		queue:   make(chan *job, 4*cfg.MaxBatch),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		mux:     http.NewServeMux(),
	}
	s.mux.HandleFunc("/predict", s.handlePredict)
	s.mux.HandleFunc("/health", s.handleHealth)
	s.mux.HandleFunc("/metrics", s.handleMetrics)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": r.URL.Path + ": not found; the endpoints are POST /predict, GET /health and GET /metrics"})
	})
	go s.batcher()
	return s
}

// Handler returns the server's HTTP handler (for httptest or a mux of
// one's own).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		s.mux.ServeHTTP(rec, r)
		path := r.URL.Path
		switch path {
		case "/predict", "/health", "/metrics":
		default:
			path = "other" // bounded label values
		}
		s.metrics.request(path, rec.code, time.Since(start).Seconds())
	})
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Serve answers HTTP on ln until ctx is cancelled, then shuts down
// gracefully: it stops accepting, lets requests in flight finish (up to
// Config.ShutdownTimeout) and returns nil. It does not close the Server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          s.cfg.ErrorLog,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc // http.ErrServerClosed
	if err != nil {
		hs.Close()
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}

// Close stops the batcher: requests still waiting get 503. Call it after
// Serve has returned.
func (s *Server) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.stopped
	return nil
}

// batcher collects jobs into batches and runs them, until Close.
func (s *Server) batcher() {
	defer close(s.stopped)
	var timer *time.Timer
	for {
		var batch []*job
		select {
		case j := <-s.queue:
			batch = append(batch, j)
		case <-s.stop:
			return
		}
		if len(batch) < s.cfg.MaxBatch {
			if timer == nil {
				timer = time.NewTimer(s.cfg.MaxWait)
			} else {
				timer.Reset(s.cfg.MaxWait)
			}
		collect:
			for len(batch) < s.cfg.MaxBatch {
				select {
				case j := <-s.queue:
					batch = append(batch, j)
				case <-timer.C:
					break collect
				case <-s.stop:
					break collect
				}
			}
			timer.Stop()
		}
		s.run(batch)
	}
}

// run runs one batch; jobs whose request is gone are left out.
func (s *Server) run(batch []*job) {
	live := batch[:0]
	for _, j := range batch {
		if j.ctx.Err() == nil {
			live = append(live, j)
		}
	}
	if len(live) == 0 {
		return
	}
	per := s.p.InputSize()
	x := make([]float32, 0, len(live)*per)
	for _, j := range live {
		x = append(x, j.x...)
	}
	start := time.Now()
	preds, err := s.forward(x)
	s.metrics.forwardPass(len(live), time.Since(start).Seconds())
	for i, j := range live {
		if err != nil {
			j.done <- result{err: err}
			continue
		}
		p := preds[i]
		if j.k < len(p.Top) {
			p.Top = p.Top[:j.k]
		}
		j.done <- result{pred: p}
	}
}

// forward runs the predictor, turning a panic into an error so that one bad
// batch cannot take the server down.
func (s *Server) forward(x []float32) (preds []predict.Prediction, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serve: forward pass: %v", r)
		}
	}()
	return s.p.PredictInputs(x, 0)
}

// httpError is an error with the status it answers.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) *httpError {
	return &httpError{code, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		he = errorf(http.StatusServiceUnavailable, "request cancelled: %v", err)
	default:
		he = errorf(http.StatusInternalServerError, "%v", err)
	}
	if he.code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	writeJSON(w, he.code, map[string]string{"error": he.msg})
}

// Response is the answer of POST /predict.
type Response struct {
	Predictions    []predict.Class `json:"predictions"` // every class, in class order
	PredictedClass int             `json:"predicted_class"`
	Label          string          `json:"label"`
	Probability    float64         `json:"probability"`
	Top            []predict.Class `json:"top"` // the most probable, first
}

func (s *Server) handlePredict(w http.ResponseWriter, r *http.Request) {
	if err := s.predict(w, r); err != nil {
		writeError(w, err)
	}
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return errorf(http.StatusMethodNotAllowed, "%s /predict: use POST with an image", r.Method)
	}
	k := s.cfg.TopK
	if v := r.URL.Query().Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errorf(http.StatusBadRequest, "top=%q: want a positive whole number", v)
		}
		k = n
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	b, err := s.readImage(r)
	if err != nil {
		return err
	}
	img, err := predict.Decode(b, s.cfg.MaxPixels)
	switch {
	case errors.Is(err, predict.ErrTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "%v", err)
	case err != nil:
		return errorf(http.StatusBadRequest, "%v", err)
	}
	x, err := s.p.Transform().Apply(img, nil)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	j := &job{ctx: r.Context(), x: x, k: k, done: make(chan result, 1)}
	select {
	case s.queue <- j:
	case <-r.Context().Done():
		return r.Context().Err()
	case <-s.stop:
		return errorf(http.StatusServiceUnavailable, "the server is shutting down")
	}
	var res result
	select {
	case res = <-j.done:
	case <-r.Context().Done():
		return r.Context().Err()
	case <-s.stopped:
		return errorf(http.StatusServiceUnavailable, "the server is shutting down")
	}
	if res.err != nil {
		return res.err
	}
	all := make([]predict.Class, len(res.pred.Probabilities))
	for c, p := range res.pred.Probabilities {
		all[c] = predict.Class{Index: c, Label: s.p.Classes()[c], Probability: p}
	}
	best := res.pred.Top[0]
	writeJSON(w, http.StatusOK, Response{Predictions: all, PredictedClass: best.Index, Label: best.Label, Probability: best.Probability, Top: res.pred.Top})
	return nil
}

// readImage returns the image bytes of a request in any of the accepted styles.
func (s *Server) readImage(r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, errorf(http.StatusUnsupportedMediaType, "no Content-Type: send multipart/form-data, image/png, image/jpeg or application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, errorf(http.StatusUnsupportedMediaType, "Content-Type %q: %v", ct, err)
	}
	switch mt {
	case "image/png", "image/jpeg", "application/octet-stream":
		return readBody(r.Body)
	case "multipart/form-data":
		if params["boundary"] == "" {
			return nil, errorf(http.StatusBadRequest, "multipart/form-data without a boundary")
		}
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, errorf(http.StatusBadRequest, "multipart form: %v", err)
		}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return nil, errorf(http.StatusBadRequest, `multipart form without an "image" or "file" field`)
			}
			if err != nil {
				return nil, bodyError("multipart form", err)
			}
			if name := part.FormName(); name == "image" || name == "file" {
				return readBody(part)
			}
		}
	case "application/json":
		var req struct {
			Image *string `json:"image"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, bodyError(`JSON body: want {"image": "<base64>"}`, err)
		}
		if req.Image == nil {
			return nil, errorf(http.StatusBadRequest, `JSON body without "image": want {"image": "<base64>"}`)
		}
		data := *req.Image
		if strings.HasPrefix(data, "data:") { // a data URL
			if _, after, ok := strings.Cut(data, ";base64,"); ok {
				data = after
			}
		}
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, `"image" is not standard base64: %v`, err)
		}
		return b, nil
	}
	return nil, errorf(http.StatusUnsupportedMediaType, "Content-Type %q: send multipart/form-data, image/png, image/jpeg or application/json", mt)
}

func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, bodyError("body", err)
	}
	if len(b) == 0 {
		return nil, errorf(http.StatusBadRequest, "empty body: send an image")
	}
	return b, nil
}

// bodyError maps a failure to read the body: too large is 413, anything
// else 400.
func bodyError(what string, err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return errorf(http.StatusRequestEntityTooLarge, "%s: larger than the limit of %d bytes", what, mb.Limit)
	}
	return errorf(http.StatusBadRequest, "%s: %v", what, err)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.Method + " /health: use GET"})
		return
	}
	m := s.p.Model()
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "ok", "model": m.Name, "classes": len(s.p.Classes()),
		"input": []int{m.Opts.InChannels, m.Opts.Height, m.Opts.Width}, "max_batch": s.cfg.MaxBatch,
	})
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.Method + " /metrics: use GET"})
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w)
}

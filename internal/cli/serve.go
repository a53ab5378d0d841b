package cli

import (
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/gozoo/gozoo/serve"
	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/spf13/cobra"
)

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		src  = modelSource{batchFlag: "max-batch", defaultMaxBatch: 16}
		addr string
		cfg  serve.Config
	)
	cmd := &cobra.Command{
		Use:   "serve (--checkpoint DIR | --model NAME --weights FILE) [--addr HOST:PORT]",
		Short: "Serve predictions over HTTP: POST /predict, GET /health, GET /metrics",
		Long: `Serve a model over HTTP until SIGINT or SIGTERM, then finish the requests
in flight and exit.

  POST /predict   an image as a multipart form (field "image" or "file"), a raw
                  body (Content-Type image/png or image/jpeg) or JSON
                  {"image": "<base64>"}; ?top=K. Answers {"predictions": [every
                  class in class order], "predicted_class", "label",
                  "probability", "top": [the K most probable]}.
  GET  /health    {"status": "ok", "model": ...}
  GET  /metrics   Prometheus text format: requests by path and status code,
                  latency histograms, batch sizes, forward-pass durations.

Concurrent requests are batched: up to --max-batch images per forward pass,
waiting at most --max-wait after the first. Bad input gets a 4xx JSON error
{"error": "..."}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, desc, err := src.predictor(cmd)
			if err != nil {
				return err
			}
			defer p.Close()
			if p.Model().Opts.Head == vgg.HeadNone {
				return usageError{fmt.Errorf("serve: %s has no classifier head (--head none): it cannot answer /predict; serve a classifier, or extract its features with zoo features", desc)}
			}
			cfg.MaxBatch = src.maxBatch
			cfg.ErrorLog = log.New(stderr, "zoo serve: ", log.LstdFlags)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			s := serve.New(p, cfg)
			defer s.Close()
			fmt.Fprintf(stderr, "serving %s on http://%s (batch ≤ %d, wait ≤ %v); Ctrl-C stops\n", desc, ln.Addr(), cfg.MaxBatch, cfg.MaxWait)
			if err := s.Serve(cmd.Context(), ln); err != nil {
				return err
			}
			fmt.Fprintln(stderr, "stopped")
			return nil
		},
	}
	src.register(cmd)
	f := cmd.Flags()
	addDeviceFlag(f)
	f.Lookup("max-batch").Usage = "most images per forward pass (1 turns batching off)"
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	f.DurationVar(&cfg.MaxWait, "max-wait", 5*time.Millisecond, "how long a batch waits for more images after its first")
	f.Int64Var(&cfg.MaxBodyBytes, "max-body", 10<<20, "largest request body in bytes")
	f.IntVar(&cfg.MaxPixels, "max-pixels", 16<<20, "largest image in pixels (width × height), checked before decoding")
	f.IntVar(&cfg.TopK, "top", 5, "classes in \"top\" unless the request asks ?top=K")
	f.DurationVar(&cfg.ReadTimeout, "read-timeout", 30*time.Second, "time to read a whole request")
	f.DurationVar(&cfg.WriteTimeout, "write-timeout", 60*time.Second, "time to write a response")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long shutdown waits for requests in flight")
	return cmd
}

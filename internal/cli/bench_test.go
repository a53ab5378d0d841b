package cli

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets `zoo bench` run its measuring subprocesses from the test
// binary: they re-execute it with benchWorkerEnv set, and then it is zoo.
func TestMain(m *testing.M) {
	if os.Getenv(benchWorkerEnv) != "" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// tinyBench is the CI-sized benchmark: vgg11 at width 1/16, batch 2.
var tinyBench = []string{"bench", "vgg11", "--width", "0.0625", "--batch", "2", "--iters", "1", "--warmup", "0", "--mode", "both", "--quiet"}

func TestBenchTable(t *testing.T) {
	out, errOut, code := run(t, tinyBench...)
	if code != 0 {
		t.Fatalf("zoo %s: exit %d, stderr %q", strings.Join(tinyBench, " "), code, errOut)
	}
	for _, want := range []string{"model", "mode", "batch", "img/s median (min–max)", "ms/step", "GFLOP/s", "peak RSS", "Go heap", "kernels", "GOMAXPROCS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks column %q:\n%s", want, out)
		}
	}
	// One row per mode: vgg11 MODE 2 gozoo IMG (MIN–MAX) MS GFLOPS RSS MiB …
	row := regexp.MustCompile(`(?m)^vgg11\s+(train|infer)\s+2\s+gozoo\s+([0-9.]+) \(([0-9.]+)–([0-9.]+)\)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+) MiB\s.*\s(\d+)$`)
	rows := row.FindAllStringSubmatch(out, -1)
	if len(rows) != 2 || rows[0][1] != "train" || rows[1][1] != "infer" {
		t.Fatalf("want a train row and an infer row for vgg11, got %d rows:\n%s", len(rows), out)
	}
	for _, r := range rows {
		v := make([]float64, 6)
		for i := range v {
			v[i], _ = strconv.ParseFloat(r[i+2], 64)
		}
		img, lo, hi, ms, gflops, rss := v[0], v[1], v[2], v[3], v[4], v[5]
		if !(img > 0 && lo <= img && img <= hi) {
			t.Errorf("%s: img/s %g (%g–%g): want positive, min <= median <= max", r[1], img, lo, hi)
		}
		if got, want := ms, 2/img*1e3; got <= 0 || (got-want)/want > 0.05 || (want-got)/want > 0.05 {
			t.Errorf("%s: ms/step %g, want batch/img·s = %g", r[1], got, want)
		}
		if gflops <= 0 || rss < 5 || rss > 1<<14 {
			t.Errorf("%s: GFLOP/s %g, peak RSS %g MiB: want positive, and between 5 MiB and 16 GiB", r[1], gflops, rss)
		}
		if n, _ := strconv.Atoi(r[8]); n < 1 {
			t.Errorf("%s: GOMAXPROCS %d, want >= 1", r[1], n)
		}
	}
}

func TestBenchJSON(t *testing.T) {
	args := []string{"bench", "vgg11", "--width", "0.0625", "--batch", "1,2", "--iters", "1", "--warmup", "0", "--mode", "infer", "--threads", "1", "--rounds", "2", "--json", "-q"}
	out, errOut, code := run(t, args...)
	if code != 0 {
		t.Fatalf("zoo %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("got %d results, want 2 (batch 1 and 2)", len(rep.Results))
	}
	for i, r := range rep.Results {
		if r.Model != "vgg11" || r.Mode != "infer" || r.Batch != i+1 || r.Impl != "gozoo" || r.Threads != 1 || len(r.Times) != 2 || r.ImgPerSec.Median <= 0 || r.PeakRSS <= 0 {
			t.Errorf("result %d = %+v; want gozoo vgg11 infer batch %d, 1 thread, 2 times (rounds), positive img/s and RSS", i, r, i+1)
		}
	}
}

func TestBenchBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bench", "vgg11", "--batch", "0"}, "--batch 0"},
		{[]string{"bench", "vgg11", "--batch", "x"}, "--batch"},
		{[]string{"bench", "vgg11", "--mode", "eval"}, `--mode "eval": use train, infer or both`},
		{[]string{"bench", "vgg17"}, "valid names: vgg11"},
		{[]string{"bench", "resnet*"}, `no model matches "resnet*"`},
		{[]string{"bench", "vgg11", "--iters", "0"}, "--iters 0"},
		{[]string{"bench", "vgg11", "--warmup", "-1"}, "--warmup -1"},
		{[]string{"bench", "vgg11", "--rounds", "0"}, "--rounds 0"},
		{[]string{"bench", "vgg11", "--width", "0"}, "--width 0"},
		{[]string{"bench", "vgg11", "--threads", "-2"}, "--threads -2"},
	}
	for _, tt := range tests {
		_, errOut, code := run(t, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("zoo %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
	}
}

func TestBenchNoTorch(t *testing.T) {
	args := append(append([]string{}, tinyBench...), "--mode", "infer", "--vs-torch", "--python", "/nonexistent/python3")
	out, errOut, code := run(t, args...)
	if code != 0 {
		t.Fatalf("zoo %s: exit %d, stderr %q; want our numbers anyway", strings.Join(args, " "), code, errOut)
	}
	for _, s := range []struct{ name, text, want string }{
		{"stderr", errOut, "no PyTorch comparison, gozoo only"},
		{"stderr", errOut, "/nonexistent/python3"},
		{"stdout", out, "no PyTorch comparison"},
		{"stdout", out, "pass --python PATH"},
		{"stdout", out, "gozoo"},
	} {
		if !strings.Contains(s.text, s.want) {
			t.Errorf("%s lacks %q:\n%s", s.name, s.want, s.text)
		}
	}
	if strings.Contains(out, "pytorch") {
		t.Errorf("stdout has a pytorch row without torch:\n%s", out)
	}
}

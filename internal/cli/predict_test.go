package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gozoo/gozoo/safetensors"
	"github.com/gozoo/gozoo/zoo/vgg"
)

// writeTestImages writes two PNGs and a JPEG of different sizes, and three
// bad files; it returns the good paths and the bad ones.
func writeTestImages(t *testing.T, dir string) (good, bad []string) {
	t.Helper()
	for i, name := range []string{"a.png", "b.jpg", "c.png"} {
		img := image.NewNRGBA(image.Rect(0, 0, 40+10*i, 36))
		for y := range 36 {
			for x := range img.Bounds().Dx() {
				img.SetNRGBA(x, y, color.NRGBA{uint8(x * 5 * (i + 1)), uint8(y * 7), uint8(60 * i), 255})
			}
		}
		var b bytes.Buffer
		if strings.HasSuffix(name, ".png") {
			png.Encode(&b, img)
		} else {
			jpeg.Encode(&b, img, nil)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		good = append(good, path)
	}
	pngBytes, _ := os.ReadFile(good[0])
	for name, b := range map[string][]byte{"text.png": []byte("not an image"), "half.png": pngBytes[:len(pngBytes)/2], "empty.jpg": nil} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, b, 0o644)
		bad = append(bad, path)
	}
	return good, bad
}

// TestUsingATrainedModel trains a tiny model with zoo train (about 5 s) and
// runs zoo predict, zoo features and zoo serve on its checkpoint.
func TestUsingATrainedModel(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(dir, "run")
	if _, stderr, code := run(t, "train", "vgg11", "--bn", "--data", "sample", "--epochs", "1", "--width", "0.0625", "--out", ck, "--quiet"); code != 0 {
		t.Fatalf("zoo train: exit %d\n%s", code, stderr)
	}
	good, bad := writeTestImages(t, dir)

	t.Run("predict", func(t *testing.T) {
		stdout, stderr, code := run(t, append([]string{"predict", "--checkpoint", ck, "--top", "3"}, good...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		for _, path := range good {
			if !strings.Contains(stdout, path+"\n  1  ") {
				t.Errorf("no top classes for %s in\n%s", path, stdout)
			}
		}
		if n := len(regexp.MustCompile(`(?m)^  [123]  (airplane|automobile|bird|cat|deer|dog|frog|horse|ship|truck) +\(class \d\) +\d+\.\d\d%$`).FindAllString(stdout, -1)); n != 9 {
			t.Errorf("%d lines of CIFAR-10 classes with probabilities, want 3 per image (9):\n%s", n, stdout)
		}
	})

	t.Run("predict json with bad images", func(t *testing.T) {
		args := append([]string{"predict", "--checkpoint", ck, "--best", "--json"}, good[0], bad[0], good[1], bad[1], bad[2])
		stdout, stderr, code := run(t, args...)
		if code != 1 {
			t.Errorf("exit %d with bad images, want 1", code)
		}
		var got []imageResult
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("--json output: %v\n%s", err, stdout)
		}
		if len(got) != 5 || len(got[0].Top) != 5 || len(got[2].Top) != 5 || got[1].Error == "" || got[3].Error == "" || got[4].Error == "" {
			t.Fatalf("results %+v: want top-5 for images 0 and 2 and errors for 1, 3, 4", got)
		}
		var sum float64
		for _, c := range got[0].Top {
			sum += c.Probability
		}
		if sum <= 0 || sum > 1+1e-9 {
			t.Errorf("top-5 probabilities sum to %g, want in (0, 1]", sum)
		}
		for _, path := range bad {
			if !strings.Contains(stderr, path+": invalid image") {
				t.Errorf("stderr does not name %s:\n%s", path, stderr)
			}
		}
	})

	t.Run("predict usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"predict", good[0]},
			{"predict", "--checkpoint", ck, "--width", "0.5", good[0]},
			{"predict", "--model", "vgg11", good[0]},
			{"predict", "--checkpoint", ck, "--top", "0", good[0]},
			{"predict", "--checkpoint", ck},
		} {
			if _, _, code := run(t, args...); code != 2 {
				t.Errorf("zoo %s: exit %d, want 2", strings.Join(args, " "), code)
			}
		}
	})

	t.Run("features npy", func(t *testing.T) {
		out := filepath.Join(dir, "f.npy")
		args := append([]string{"features", "--checkpoint", ck, "--layer", "block4", "-o", out}, good...)
		stdout, stderr, code := run(t, args...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		hlen := int(binary.LittleEndian.Uint16(b[8:]))
		header := string(b[10 : 10+hlen])
		if !strings.Contains(header, "'shape': (3, 32, 2, 2)") || (10+hlen)%64 != 0 || len(b) != 10+hlen+4*3*32*4 {
			t.Errorf("npy header %q, %d bytes: want shape (3, 32, 2, 2), 64-byte aligned, %d bytes", header, len(b), 10+hlen+4*3*32*4)
		}
		if !strings.Contains(stdout, "shape (3, 32, 2, 2)") {
			t.Errorf("stdout %q does not give the shape", stdout)
		}
	})

	t.Run("features safetensors", func(t *testing.T) {
		out := filepath.Join(dir, "f.safetensors")
		args := append([]string{"features", "--checkpoint", ck, "--layer", "classifier.0", "-o", out}, good[0], bad[0], good[2])
		if _, stderr, code := run(t, args...); code != 1 || !strings.Contains(stderr, bad[0]) {
			t.Fatalf("exit %d, want 1 naming %s\n%s", code, bad[0], stderr)
		}
		f, err := safetensors.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		ft := f.Tensors["features"]
		if got := ft.Shape; len(got) != 2 || got[0] != 2 || got[1] != 10 {
			t.Errorf("features shape %v, want [2 10]", got)
		}
		var files []string
		json.Unmarshal([]byte(f.Metadata["gozoo.images"]), &files)
		if len(files) != 2 || files[0] != good[0] || files[1] != good[2] || f.Metadata["gozoo.layer"] != "classifier.0" {
			t.Errorf("metadata %v: want the two good images and the layer", f.Metadata)
		}
	})

	t.Run("features list and errors", func(t *testing.T) {
		stdout, _, code := run(t, "features", "--checkpoint", ck, "--list")
		if code != 0 || !strings.Contains(stdout, "features.0") || !strings.Contains(stdout, "block5") || !strings.Contains(stdout, "classifier.0") {
			t.Errorf("--list: exit %d\n%s", code, stdout)
		}
		for _, tc := range []struct {
			args []string
			want int
		}{
			{[]string{"features", "--checkpoint", ck, "-o", filepath.Join(dir, "x.npy"), good[0]}, 2},
			{[]string{"features", "--checkpoint", ck, "--layer", "block4", good[0]}, 2},
			{[]string{"features", "--checkpoint", ck, "--layer", "block4", "-o", filepath.Join(dir, "x.txt"), good[0]}, 2},
			{[]string{"features", "--checkpoint", ck, "--layer", "features.99", "-o", filepath.Join(dir, "x.npy"), good[0]}, 1},
			{[]string{"features", "--checkpoint", ck, "--layer", "block4", "-o", filepath.Join(dir, "x.npy"), bad[0]}, 1},
		} {
			if _, _, code := run(t, tc.args...); code != tc.want {
				t.Errorf("zoo %s: exit %d, want %d", strings.Join(tc.args, " "), code, tc.want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "x.npy")); err == nil {
			t.Error("a failed zoo features left x.npy behind")
		}
	})

	t.Run("serve", func(t *testing.T) {
		var errb syncBuffer
		root := NewRoot(io.Discard, &errb)
		root.SetArgs([]string{"serve", "--checkpoint", ck, "--addr", "127.0.0.1:0", "--max-batch", "4"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("zoo serve: %v", err)
			}
			if !strings.Contains(errb.String(), "stopped") {
				t.Errorf("stderr %q: want a stop message", errb.String())
			}
		}()
		url := ""
		for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			url = regexp.MustCompile(`http://[0-9.:]+`).FindString(errb.String())
		}
		if url == "" {
			t.Fatalf("zoo serve printed no address: %q", errb.String())
		}
		b, _ := os.ReadFile(good[1])
		resp, err := http.Post(url+"/predict?top=2", "image/jpeg", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Predictions []struct{ Label string }
			Label       string
			Top         []struct{ Probability float64 }
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST /predict: status %d, %v", resp.StatusCode, err)
		}
		if len(got.Predictions) != 10 || len(got.Top) != 2 || got.Predictions[3].Label != "cat" || got.Label == "" {
			t.Errorf("answer %+v: want 10 CIFAR-10 predictions (cat is class 3) and the top 2", got)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeRefusesFeatureModels: a model without a classifier head cannot
// answer /predict, so zoo serve refuses it before listening.
func TestServeRefusesFeatureModels(t *testing.T) {
	m, err := vgg.New("vgg11", vgg.Options{Head: vgg.HeadNone, WidthMult: 1.0 / 16})
	if err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(t.TempDir(), "w.safetensors")
	if err := m.SaveWeights(w); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, "serve", "--model", "vgg11", "--head", "none", "--width", "0.0625", "--weights", w, "--addr", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, "no classifier head") {
		t.Errorf("zoo serve of a features-only model: exit %d, %q", code, errOut)
	}
}

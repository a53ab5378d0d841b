package cifar10

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
)

// cacheDir returns opts.CacheDir, else $ZOO_DATA, else os.UserCacheDir()/gozoo.
func cacheDir(opts Options) (string, error) {
	if opts.CacheDir != "" {
		return opts.CacheDir, nil
	}
	if dir := os.Getenv("ZOO_DATA"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cifar10: no cache folder: %w; set ZOO_DATA or pass a data folder", err)
	}
	return filepath.Join(dir, "gozoo"), nil
}

// download fetches sp's tarball into dir and returns its path. It writes a
// temporary file in dir, checks its md5, then renames it into place, so an
// interrupted download never leaves a partial tarball under the final name.
func download(dir string, sp *spec, opts Options) (string, error) {
	url := sp.url
	if opts.DownloadURL != "" {
		url = opts.DownloadURL
	}
	want := sp.official.md5[sp.tarball]
	if opts.checks != nil {
		want = opts.checks.md5[sp.tarball]
	}
	final := filepath.Join(dir, sp.tarball)
	manual := fmt.Sprintf("download %s by hand and put it at %s (or pass its path or an extracted folder)", url, final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cifar10: download: %w; set Options.CacheDir (or ZOO_DATA) to a writable folder", err)
	}
	resp, err := http.Get(url)
	if err != nil {
		return "", fmt.Errorf("cifar10: download %s: %w; offline? %s", url, err, manual)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("cifar10: download %s: %s; %s", url, resp.Status, manual)
	}
	tmp, err := os.CreateTemp(dir, sp.tarball+".part-*")
	if err != nil {
		return "", fmt.Errorf("cifar10: download: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := md5.New()
	w := io.MultiWriter(tmp, h)
	if opts.Progress != nil {
		bar := progressbar.NewOptions64(resp.ContentLength,
			progressbar.OptionSetWriter(opts.Progress),
			progressbar.OptionSetDescription("downloading "+sp.tarball),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(opts.Progress) }),
		)
		defer bar.Close()
		w = io.MultiWriter(w, bar)
	}
	n, err := io.Copy(w, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("cifar10: download %s: %w after %d bytes; try again, or %s", url, err, n, manual)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return "", fmt.Errorf("cifar10: download %s: got %d bytes, want %d; try again, or %s", url, n, resp.ContentLength, manual)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("cifar10: download %s: md5 %s of %d bytes, want %s: %w; try again, or %s", url, got, n, want, ErrChecksum, manual)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("cifar10: download: %w", err)
	}
	return final, nil
}

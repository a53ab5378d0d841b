package cifar10

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestDownload(t *testing.T) {
	f := newFake(cifar10Spec, 2)
	body := f.tarGz(t)
	sum := md5.Sum(body)
	good := f.checks()
	good.md5[cifar10Spec.tarball] = hex.EncodeToString(sum[:])

	tests := []struct {
		name     string
		handler  http.HandlerFunc
		checksum bool   // want errors.Is(err, ErrChecksum)
		want     string // in the error; "" for success
	}{
		{"ok", func(w http.ResponseWriter, r *http.Request) { w.Write(body) }, false, ""},
		{"md5 mismatch", func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Replace(body, body[100:101], []byte{body[100] + 1}, 1))
		}, true, "md5"},
		{"truncated body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:len(body)/2])
		}, false, "unexpected EOF"},
		{"wrong size", func(w http.ResponseWriter, r *http.Request) { w.Write(append(body, 0)) }, true, "of " + strconv.Itoa(len(body)+1) + " bytes"},
		{"404", http.NotFound, false, "404 Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				tc.handler(w, r)
			}))
			defer srv.Close()
			cache := t.TempDir()
			var progress bytes.Buffer
			opts := Options{CacheDir: cache, Download: true, DownloadURL: srv.URL + "/cifar-10-binary.tar.gz", Progress: &progress, checks: good}
			d, err := Load("", Test, opts)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if d.Len() != 2 {
					t.Errorf("Len() = %d, want 2", d.Len())
				}
				if !strings.Contains(progress.String(), "downloading cifar-10-binary.tar.gz") {
					t.Errorf("progress = %q, want a bar", progress.String())
				}
				// The second load finds the tarball and does not download.
				if _, err := Load("", Train, opts); err != nil {
					t.Fatal(err)
				}
				if got := hits.Load(); got != 1 {
					t.Errorf("server hit %d times, want 1", got)
				}
			} else {
				if err == nil {
					t.Fatalf("Load: no error, want one containing %q", tc.want)
				}
				for _, s := range []string{tc.want, "put it at " + filepath.Join(cache, "cifar-10-binary.tar.gz")} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("Load: %v\nwant it to contain %q", err, s)
					}
				}
				if got := errors.Is(err, ErrChecksum); got != tc.checksum {
					t.Errorf("errors.Is(err, ErrChecksum) = %v, want %v", got, tc.checksum)
				}
			}
			entries, err := os.ReadDir(cache)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			want := "[]"
			if tc.want == "" {
				want = "[cifar-10-binary.tar.gz]"
			}
			if got := "[" + strings.Join(names, " ") + "]"; got != want {
				t.Errorf("cache holds %s, want %s (no temporary file left)", got, want)
			}
		})
	}
}

func TestDownloadOffline(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/cifar-100-binary.tar.gz"
	srv.Close() // nothing listens there any more
	cache := t.TempDir()
	_, err := Load("", Train, Options{Dataset: "cifar100", CacheDir: cache, Download: true, DownloadURL: url})
	if err == nil {
		t.Fatal("Load: no error, want one")
	}
	for _, s := range []string{"offline?", "put it at " + filepath.Join(cache, "cifar-100-binary.tar.gz")} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Load: %v\nwant it to contain %q", err, s)
		}
	}
}

func TestNoDownloadWithoutPermission(t *testing.T) {
	cache := t.TempDir()
	_, err := Load("", Train, Options{CacheDir: cache, DownloadURL: "http://127.0.0.1:1/never"})
	if err == nil || !strings.Contains(err.Error(), "allow a download") {
		t.Errorf("Load: %v, want an error suggesting Options.Download", err)
	}
}

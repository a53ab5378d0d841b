// Command gen compiles the kernels' CUDA C sources (src/*.cu) to PTX
// (ptx/*.ptx) with NVRTC, loaded at run time (no GPU needed). Run it with
// `go generate ./internal/cuda/kernels` from the repository root; on Debian,
// NVRTC is the package libnvrtc11.2 of the non-free component.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gozoo/gozoo/internal/cuda"
	"github.com/gozoo/gozoo/internal/cuda/kernels"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	n, err := cuda.LoadNVRTC(nil)
	if err != nil {
		return err
	}
	for _, m := range kernels.Modules() {
		ptx, err := kernels.Compile(n, m)
		if err != nil {
			return err
		}
		out := filepath.Join("ptx", m+".ptx")
		if err := os.WriteFile(out, ptx, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d bytes (NVRTC %s)\n", out, len(ptx), n.Path())
	}
	return nil
}

package safetensors

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile encodes tensors and metadata (see Encode) to path atomically:
// it writes a temporary file in the same directory, syncs it and renames it
// over path, so that a crash leaves either the old file or the new one.
func WriteFile(path string, tensors map[string]Tensor, metadata map[string]string) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := Encode(w, tensors, metadata); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("safetensors: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

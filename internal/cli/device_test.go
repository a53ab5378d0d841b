package cli

import (
	"strings"
	"testing"
)

// TestDeviceFlag checks --device on every command that has it: cpu is the
// default, anything but cpu or cuda is refused, and cuda fails fast on a
// machine without an NVIDIA driver (CI), before reading any model or data.
func TestDeviceFlag(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"train", "vgg11"},
		{"eval", "--checkpoint", "no-such-run"},
		{"predict", "--model", "vgg11", "--weights", "no-such.safetensors", "no-such.png"},
		{"serve", "--model", "vgg11", "--weights", "no-such.safetensors", "--addr", "127.0.0.1:0"},
	} {
		verb := args[0]
		t.Run(verb, func(t *testing.T) {
			_, stderr, code := run(t, append(args, "--device", "tpu")...)
			if code == 0 || !strings.Contains(stderr, `--device "tpu": want cpu or cuda`) {
				t.Errorf("zoo %s --device tpu: code %d, stderr %q; want a refusal", verb, code, stderr)
			}
			_, stderr, code = run(t, append(args, "--device", "cuda")...)
			if code == 0 {
				t.Fatalf("zoo %s --device cuda: code 0, want an error", verb)
			}
			if !strings.Contains(stderr, "no NVIDIA driver found (libcuda.so.1 not loadable)") {
				if !strings.Contains(stderr, "no-such") {
					t.Errorf("zoo %s --device cuda: stderr %q; want the no-driver error", verb, stderr)
				}
				t.Log("a GPU is present here: the command got past the device")
			}
		})
	}
}

package safetensors

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// re-encodes to a file that parses to the same tensors and metadata.
func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	if err := Encode(&buf, sampleTensors(), map[string]string{"k": "v"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, p.Tensors, p.Metadata); err != nil {
			t.Fatalf("Encode of a parsed file: %v", err)
		}
		q, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("Parse of a re-encoded file: %v", err)
		}
		checkEqual(t, q, p.Tensors, p.Metadata)
	})
}

package tensorboard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The reader below is independent of the writer: it unmasks the CRCs
// (the inverse of the writer's masking) and walks the protocol buffers
// field by field with the numbers of tensorflow's event.proto and
// summary.proto.

type event struct {
	wallTime    float64
	step        int64
	fileVersion string
	values      []value
}

type value struct {
	tag    string
	simple *float32
	image  *imageValue
	histo  *Histogram
}

type imageValue struct {
	height, width, colorspace int
	png                       []byte
}

// unmask inverts the TFRecord CRC masking.
func unmask(m uint32) uint32 {
	rot := m - 0xa282ead8
	return rot>>17 | rot<<15
}

// readRecords splits a TFRecord file, checking both CRCs of every record.
func readRecords(b []byte) ([][]byte, error) {
	table := crc32.MakeTable(crc32.Castagnoli)
	var recs [][]byte
	for len(b) > 0 {
		if len(b) < 12 {
			return nil, fmt.Errorf("truncated header: %d bytes", len(b))
		}
		n := binary.LittleEndian.Uint64(b)
		if got, want := crc32.Checksum(b[:8], table), unmask(binary.LittleEndian.Uint32(b[8:])); got != want {
			return nil, fmt.Errorf("record %d: length CRC %08x, stored %08x", len(recs), got, want)
		}
		if uint64(len(b)) < 16+n {
			return nil, fmt.Errorf("record %d: truncated data", len(recs))
		}
		data := b[12 : 12+n]
		if got, want := crc32.Checksum(data, table), unmask(binary.LittleEndian.Uint32(b[12+n:])); got != want {
			return nil, fmt.Errorf("record %d: data CRC %08x, stored %08x", len(recs), got, want)
		}
		recs = append(recs, data)
		b = b[16+n:]
	}
	return recs, nil
}

// fields calls f for every field of a message.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(b)
			x = uint64(u)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("field %d: wire type %d", num, typ)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func packedDoubles(b []byte) []float64 {
	var out []float64
	for i := 0; i+8 <= len(b); i += 8 {
		out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(b[i:])))
	}
	return out
}

func parseEvent(b []byte) (event, error) {
	var e event
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			e.wallTime = math.Float64frombits(x)
		case 2:
			e.step = int64(x)
		case 3:
			e.fileVersion = string(v)
		case 5: // Summary
			return fields(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				if num != 1 {
					return fmt.Errorf("summary field %d", num)
				}
				var val value
				err := fields(v, func(num protowire.Number, _ protowire.Type, v []byte, x uint64) error {
					switch num {
					case 1:
						val.tag = string(v)
					case 2:
						f := math.Float32frombits(uint32(x))
						val.simple = &f
					case 4:
						val.image = &imageValue{}
						return fields(v, func(num protowire.Number, _ protowire.Type, v []byte, x uint64) error {
							switch num {
							case 1:
								val.image.height = int(x)
							case 2:
								val.image.width = int(x)
							case 3:
								val.image.colorspace = int(x)
							case 4:
								val.image.png = v
							}
							return nil
						})
					case 5:
						h := &Histogram{}
						val.histo = h
						return fields(v, func(num protowire.Number, _ protowire.Type, v []byte, x uint64) error {
							switch num {
							case 1, 2, 3, 4, 5:
								*[]*float64{&h.Min, &h.Max, &h.Num, &h.Sum, &h.SumSquares}[num-1] = math.Float64frombits(x)
							case 6:
								h.Limits = packedDoubles(v)
							case 7:
								h.Counts = packedDoubles(v)
							}
							return nil
						})
					default:
						return fmt.Errorf("value field %d", num)
					}
					return nil
				})
				e.values = append(e.values, val)
				return err
			})
		default:
			return fmt.Errorf("event field %d", num)
		}
		return nil
	})
	return e, err
}

func readEvents(t *testing.T, path string) []event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readRecords(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var evs []event
	for i, r := range recs {
		e, err := parseEvent(r)
		if err != nil {
			t.Fatalf("%s: event %d: %v", path, i, err)
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 || evs[0].fileVersion != FileVersion {
		t.Fatalf("%s: the first event is not file_version %q", path, FileVersion)
	}
	return evs
}

// TestGolden pins the bytes against the ones tensorboard_logger's
// test_serialization expects (wall time 256.5 s; v/1 = 1.5 at step 1,
// v/22 = 16 at step 2).
func TestGolden(t *testing.T) {
	w, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.Now = func() time.Time { return time.Unix(256, 5e8) }
	var buf bytes.Buffer
	w.w.Reset(&buf) // capture what follows the file_version event
	if err := w.write(0, func(b []byte) []byte {
		return protowire.AppendString(protowire.AppendTag(b, 3, protowire.BytesType), FileVersion)
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Scalar("v/1", 1, 1.5); err != nil {
		t.Fatal(err)
	}
	if err := w.Scalar("v/22", 2, 16); err != nil {
		t.Fatal(err)
	}
	w.w.Flush()
	want := "\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK\"\t\x00\x00\x00\x00\x00\x08p@\x1a\rbrain.Event:2\xbc\x98!+" +
		"\x19\x00\x00\x00\x00\x00\x00\x00\x8b\xf1\x08(\t\x00\x00\x00\x00\x00\x08p@\x10\x01*\x0c\n\n\n\x03v/1\x15\x00\x00\xc0?,\xec\xc0\x87" +
		"\x1a\x00\x00\x00\x00\x00\x00\x00\x12\x9b\xd8-\t\x00\x00\x00\x00\x00\x08p@\x10\x02*\r\n\x0b\n\x04v/22\x15\x00\x00\x80A\x8f\xa3\xb6\x88"
	if got := buf.String(); got != want {
		t.Errorf("bytes\n got %q\nwant %q", got, want)
	}
	w.Close()
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(w.Path()), "events.out.tfevents.") {
		t.Errorf("file name %s: want events.out.tfevents.*", w.Path())
	}
	scalars := []struct {
		tag  string
		step int64
		v    float64
	}{{"train/loss", 1, 2.25}, {"train/loss", 2, 1.5}, {"lr", 2, 0.1}, {"test/accuracy", 7, -0.5}}
	for _, s := range scalars {
		if err := w.Scalar(s.tag, s.step, s.v); err != nil {
			t.Fatal(err)
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	img.Set(4, 2, color.RGBA{200, 10, 20, 255})
	if err := w.Image("grid", 3, img); err != nil {
		t.Fatal(err)
	}
	h, err := NewHistogram([]float32{0, 1, 1, 2, 3, 4, float32(math.NaN())}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Histogram("weights/w", 4, h); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Scalar("late", 1, 1); err == nil {
		t.Error("Scalar after Close: no error")
	}

	evs := readEvents(t, w.Path())
	if got, want := len(evs), 1+len(scalars)+2; got != want {
		t.Fatalf("%d events, want %d", got, want)
	}
	for i, s := range scalars {
		e := evs[1+i]
		if len(e.values) != 1 || e.values[0].simple == nil {
			t.Fatalf("event %d: %+v: want one simple value", 1+i, e)
		}
		if got := e.values[0]; got.tag != s.tag || e.step != s.step || *got.simple != float32(s.v) {
			t.Errorf("scalar %d = %s@%d %v, want %s@%d %v", i, got.tag, e.step, *got.simple, s.tag, s.step, s.v)
		}
		if math.Abs(e.wallTime-float64(time.Now().Unix())) > 60 {
			t.Errorf("wall_time %v: not now", e.wallTime)
		}
	}

	iv := evs[len(scalars)+1].values[0]
	if iv.tag != "grid" || iv.image == nil {
		t.Fatalf("image event: %+v", iv)
	}
	if iv.image.width != 5 || iv.image.height != 3 || iv.image.colorspace != 3 {
		t.Errorf("image header %dx%d colorspace %d, want 5x3 colorspace 3", iv.image.width, iv.image.height, iv.image.colorspace)
	}
	dec, err := png.Decode(bytes.NewReader(iv.image.png))
	if err != nil {
		t.Fatalf("the image is not a PNG: %v", err)
	}
	if got := dec.Bounds().Size(); got != image.Pt(5, 3) {
		t.Errorf("PNG size %v, want (5,3)", got)
	}
	if r, g, b, _ := dec.At(4, 2).RGBA(); r>>8 != 200 || g>>8 != 10 || b>>8 != 20 {
		t.Errorf("pixel (4,2) = %d,%d,%d, want 200,10,20", r>>8, g>>8, b>>8)
	}

	hv := evs[len(scalars)+2]
	if hv.step != 4 || hv.values[0].tag != "weights/w" || hv.values[0].histo == nil {
		t.Fatalf("histogram event: %+v", hv)
	}
	got := *hv.values[0].histo
	want := Histogram{Min: 0, Max: 4, Num: 6, Sum: 11, SumSquares: 31, Limits: []float64{1, 2, 3, 4}, Counts: []float64{1, 2, 1, 2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("histogram\n got %+v\nwant %+v", got, want)
	}
}

func TestCorruptRecord(t *testing.T) {
	w, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.Scalar("a", 1, 1)
	w.Close()
	b, _ := os.ReadFile(w.Path())
	b[len(b)-6] ^= 1 // inside the last record's data
	if _, err := readRecords(b); err == nil || !strings.Contains(err.Error(), "data CRC") {
		t.Errorf("flipped bit: error %v, want a data CRC mismatch", err)
	}
}

func TestNewFilePerWriter(t *testing.T) {
	dir := t.TempDir()
	a, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(dir) // same second, as a resumed run might be
	if err != nil {
		t.Fatal(err)
	}
	if a.Path() == b.Path() {
		t.Errorf("two writers share %s", a.Path())
	}
	a.Close()
	b.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*tfevents*"))
	if len(files) != 2 {
		t.Errorf("%d event files, want 2", len(files))
	}
}

func TestNewHistogram(t *testing.T) {
	tests := []struct {
		name           string
		vs             []float64
		bins           int
		limits, counts []float64
		err            bool
	}{
		{"spread", []float64{-1, 0, 0.5, 1}, 2, []float64{0, 1}, []float64{1, 3}, false},
		{"constant", []float64{2, 2, 2}, 5, []float64{2}, []float64{3}, false},
		{"infinities left out", []float64{math.Inf(1), 1, 3, math.Inf(-1)}, 2, []float64{2, 3}, []float64{1, 1}, false},
		{"no finite value", []float64{math.NaN()}, 3, nil, nil, true},
		{"empty", nil, 3, nil, nil, true},
		{"no buckets", []float64{1}, 0, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHistogram(tt.vs, tt.bins)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if fmt.Sprint(h.Limits, h.Counts) != fmt.Sprint(tt.limits, tt.counts) {
				t.Errorf("limits %v counts %v, want %v %v", h.Limits, h.Counts, tt.limits, tt.counts)
			}
		})
	}
}

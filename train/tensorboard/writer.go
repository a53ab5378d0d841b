// Package tensorboard writes TensorBoard event files from Go, without
// TensorFlow: scalars, images and histograms, and a training-loop Hook that
// logs a run with them.
//
// An event file is a sequence of TFRecords, each holding one serialized
// tensorflow.Event protocol buffer. The protocol buffers are encoded by hand
// with protowire; the field numbers are those of tensorflow's
// core/util/event.proto and core/framework/summary.proto (cited at each
// encoder). Point TensorBoard at the folder: tensorboard --logdir DIR.
package tensorboard

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// FileVersion is the file_version of the first event of every file.
const FileVersion = "brain.Event:2"

// Writer appends events to one event file. Every process writes its own
// file (a resumed run adds a new one next to the old), which TensorBoard
// reads as one run. A Writer is not safe for concurrent use.
type Writer struct {
	f    *os.File
	w    *bufio.Writer
	path string
	// Now stamps each event's wall_time; time.Now unless set.
	Now func() time.Time
}

// Create makes dir and a new file events.out.tfevents.<unix time>.<hostname>
// in it (with a numeric suffix if another writer took that name in the same
// second), and writes the file_version event.
func Create(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	base := filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%d.%s", time.Now().Unix(), host))
	path := base
	var f *os.File
	for i := 1; ; i++ {
		f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			break
		}
		path = base + "." + strconv.Itoa(i)
	}
	if err != nil {
		return nil, fmt.Errorf("tensorboard: %w", err)
	}
	w := &Writer{f: f, w: bufio.NewWriterSize(f, 64<<10), path: path, Now: time.Now}
	if err := w.write(0, func(b []byte) []byte {
		return protowire.AppendString(protowire.AppendTag(b, 3, protowire.BytesType), FileVersion) // Event.file_version = 3
	}); err != nil {
		f.Close()
		return nil, err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path returns the event file's path.
func (w *Writer) Path() string { return w.path }

// Scalar writes one scalar value (Summary.Value.simple_value, a float32).
func (w *Writer) Scalar(tag string, step int64, v float64) error {
	return w.summary(tag, step, func(b []byte) []byte {
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type) // Value.simple_value = 2
		return protowire.AppendFixed32(b, math.Float32bits(float32(v)))
	})
}

// Image writes img as a PNG image summary (Summary.Image).
func (w *Writer) Image(tag string, step int64, img image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("tensorboard: image %s: %w", tag, err)
	}
	r := img.Bounds()
	colorspace := 4 // RGBA
	switch m := img.(type) {
	case *image.Gray, *image.Gray16:
		colorspace = 1
	case interface{ Opaque() bool }:
		if m.Opaque() {
			colorspace = 3 // png.Encode drops the alpha channel
		}
	}
	// Summary.Image: height = 1, width = 2, colorspace = 3 (1 grey, 3 RGB,
	// 4 RGBA), encoded_image_string = 4.
	var im []byte
	im = protowire.AppendTag(im, 1, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(r.Dy()))
	im = protowire.AppendTag(im, 2, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(r.Dx()))
	im = protowire.AppendTag(im, 3, protowire.VarintType)
	im = protowire.AppendVarint(im, uint64(colorspace))
	im = protowire.AppendTag(im, 4, protowire.BytesType)
	im = protowire.AppendBytes(im, buf.Bytes())
	return w.summary(tag, step, func(b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, 4, protowire.BytesType), im) // Value.image = 4
	})
}

// Histogram writes a histogram summary (Summary.Value.histo).
func (w *Writer) Histogram(tag string, step int64, h Histogram) error {
	if len(h.Limits) != len(h.Counts) || len(h.Limits) == 0 {
		return fmt.Errorf("tensorboard: histogram %s: %d limits and %d counts: build it with NewHistogram", tag, len(h.Limits), len(h.Counts))
	}
	// HistogramProto: min = 1, max = 2, num = 3, sum = 4, sum_squares = 5
	// (doubles), bucket_limit = 6 and bucket = 7 (packed doubles).
	var hp []byte
	for i, v := range []float64{h.Min, h.Max, h.Num, h.Sum, h.SumSquares} {
		hp = protowire.AppendTag(hp, protowire.Number(i+1), protowire.Fixed64Type)
		hp = protowire.AppendFixed64(hp, math.Float64bits(v))
	}
	for i, vs := range [][]float64{h.Limits, h.Counts} {
		hp = protowire.AppendTag(hp, protowire.Number(6+i), protowire.BytesType)
		hp = protowire.AppendVarint(hp, uint64(8*len(vs)))
		for _, v := range vs {
			hp = protowire.AppendFixed64(hp, math.Float64bits(v))
		}
	}
	return w.summary(tag, step, func(b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, 5, protowire.BytesType), hp) // Value.histo = 5
	})
}

// summary writes an Event holding a Summary of one Value with tag, whose
// value field value appends.
func (w *Writer) summary(tag string, step int64, value func([]byte) []byte) error {
	// Summary.Value: tag = 1, then the value (oneof).
	v := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), tag)
	v = value(v)
	// Summary: repeated Value value = 1.
	s := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), v)
	return w.write(step, func(b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, 5, protowire.BytesType), s) // Event.summary = 5
	})
}

// write frames an Event with wall_time, step and the field what appends as
// one TFRecord.
func (w *Writer) write(step int64, what func([]byte) []byte) error {
	if w.f == nil {
		return fmt.Errorf("tensorboard: write to closed %s", w.path)
	}
	t := w.Now()
	// Event: wall_time = 1 (double seconds), step = 2 (int64).
	ev := protowire.AppendTag(nil, 1, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(float64(t.UnixNano())/1e9))
	if step != 0 {
		ev = protowire.AppendTag(ev, 2, protowire.VarintType)
		ev = protowire.AppendVarint(ev, uint64(step))
	}
	ev = what(ev)
	if _, err := w.w.Write(record(ev)); err != nil {
		return fmt.Errorf("tensorboard: %w", err)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's checksum: the CRC-32C of b, rotated right by 15
// bits plus 0xa282ead8 (tensorflow/core/lib/hash/crc32c.h, Mask).
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// record frames data as a TFRecord: the length (uint64), the masked CRC of
// those 8 bytes, the data and the masked CRC of the data, little-endian.
func record(data []byte) []byte {
	b := make([]byte, 0, len(data)+16)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint32(b, maskedCRC(b[:8]))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, maskedCRC(data))
}

// Flush writes the buffered events to the file.
func (w *Writer) Flush() error {
	if w.f == nil {
		return nil
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("tensorboard: %w", err)
	}
	return nil
}

// Close flushes and closes the file; later writes fail.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.Flush()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("tensorboard: %w", cerr)
	}
	w.f = nil
	return err
}

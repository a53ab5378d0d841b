package predict

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestTransformMatchesTorchvision compares Apply (mean 0, std 1) with
// torchvision's Resize(32) + CenterCrop(32) on PIL images (testdata/gen/gen.py).
// PIL rounds to 8 bits after each pass, so up to about one level differs.
func TestTransformMatchesTorchvision(t *testing.T) {
	tf := Transform{Height: 32, Width: 32, Std: [3]float32{1, 1, 1}}
	for _, name := range []string{"down", "tall", "up", "alpha"} {
		t.Run(name, func(t *testing.T) {
			in := readPNG(t, "resize_"+name+".png")
			want := readPNG(t, "resize_"+name+"_want.png")
			got, err := tf.Apply(in, nil)
			if err != nil {
				t.Fatal(err)
			}
			wp := planes(want)
			var worst float64
			for i := range got {
				worst = max(worst, math.Abs(float64(got[i]-wp[i])))
			}
			t.Logf("max |Go − torchvision| = %.2f/255", 255*worst)
			if worst > 1.5/255 {
				t.Errorf("max difference from torchvision %.2f/255, want ≤ 1.5/255", 255*worst)
			}
		})
	}
}

func readPNG(t *testing.T, name string) image.Image {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	img, err := Decode(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestTransformConstantAndNormalization(t *testing.T) {
	tf := Transform{Height: 8, Width: 6, Mean: [3]float32{0.5, 0.25, 0}, Std: [3]float32{0.5, 0.25, 2}}
	c := color.NRGBA{R: 255, G: 0, B: 51, A: 255}
	want := [3]float32{(1 - 0.5) / 0.5, (0 - 0.25) / 0.25, (0.2 - 0) / 2}
	for _, size := range []image.Point{{1, 1}, {6, 8}, {100, 7}, {13, 300}} {
		img := image.NewNRGBA(image.Rect(5, 5, 5+size.X, 5+size.Y)) // a non-zero origin too
		for y := 5; y < 5+size.Y; y++ {
			for x := 5; x < 5+size.X; x++ {
				img.SetNRGBA(x, y, c)
			}
		}
		got, err := tf.Apply(img, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3*8*6 {
			t.Fatalf("%v: %d values, want %d", size, len(got), 3*8*6)
		}
		for i, v := range got {
			if ch := i / 48; math.Abs(float64(v-want[ch])) > 1e-5 {
				t.Fatalf("%v: value %d (channel %d) = %g, want %g", size, i, ch, v, want[ch])
			}
		}
	}
}

func TestResizedSize(t *testing.T) {
	for _, tc := range []struct{ w, h, tw, th, rw, rh int }{
		{57, 41, 32, 32, 44, 32},
		{40, 131, 32, 32, 32, 104},
		{32, 32, 32, 32, 32, 32},
		{20, 25, 32, 32, 32, 40},
		{100, 100, 64, 32, 64, 64},
		{300, 100, 64, 32, 96, 32},
	} {
		if rw, rh := resizedSize(tc.w, tc.h, tc.tw, tc.th); rw != tc.rw || rh != tc.rh {
			t.Errorf("resizedSize(%d, %d, %d, %d) = %d×%d, want %d×%d", tc.w, tc.h, tc.tw, tc.th, rw, rh, tc.rw, tc.rh)
		}
	}
}

// pngOfSize returns a 1×1 PNG whose header claims w×h pixels (checksum fixed).
func pngOfSize(t testing.TB, w, h uint32) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func TestDecode(t *testing.T) {
	var pngBuf, jpgBuf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	png.Encode(&pngBuf, img)
	jpeg.Encode(&jpgBuf, img, nil)
	for _, tc := range []struct {
		name      string
		b         []byte
		maxPixels int
		want      error
	}{
		{"png", pngBuf.Bytes(), 0, nil},
		{"jpeg", jpgBuf.Bytes(), 0, nil},
		{"at the limit", pngBuf.Bytes(), 1200, nil},
		{"over the limit", pngBuf.Bytes(), 1199, ErrTooLarge},
		{"huge header", pngOfSize(t, 1<<20, 1<<20), 0, ErrTooLarge},
		{"zero width", pngOfSize(t, 0, 10), 0, ErrInvalidImage},
		{"empty", nil, 0, ErrInvalidImage},
		{"text", []byte("hello, world"), 0, ErrInvalidImage},
		{"truncated png", pngBuf.Bytes()[:pngBuf.Len()/2], 0, ErrInvalidImage},
		{"truncated jpeg", jpgBuf.Bytes()[:jpgBuf.Len()/2], 0, ErrInvalidImage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.b, tc.maxPixels)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode: error %v, want %v", err, tc.want)
			}
			if tc.want == nil && got.Bounds().Dx() != 40 {
				t.Errorf("decoded width %d, want 40", got.Bounds().Dx())
			}
		})
	}
}

func TestTransformEmptyImage(t *testing.T) {
	_, err := Transform{Height: 4, Width: 4, Std: [3]float32{1, 1, 1}}.Apply(image.NewRGBA(image.Rect(0, 0, 0, 5)), nil)
	if !errors.Is(err, ErrInvalidImage) {
		t.Errorf("Apply of a 0×5 image: error %v, want ErrInvalidImage", err)
	}
}

func TestWriteNPYMatchesNumPy(t *testing.T) {
	for name, shape := range map[string][]int{"vec": {3}, "mat": {2, 3}, "nchw": {2, 1, 2, 2}} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", "npy_"+name+".npy"))
			if err != nil {
				t.Fatal(err)
			}
			tt := &Tensor{Shape: shape, Data: make([]float32, shapeSize(shape))}
			for i := range tt.Data {
				tt.Data[i] = float32(i)*0.5 - 1
			}
			var got bytes.Buffer
			if err := tt.WriteNPY(&got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("WriteNPY:\n got %q\nwant %q", got.Bytes(), want)
			}
		})
	}
	if err := (&Tensor{Shape: []int{2, 2}, Data: make([]float32, 3)}).WriteNPY(&bytes.Buffer{}); err == nil {
		t.Error("WriteNPY of 3 values with shape (2, 2): no error")
	}
}

package predict

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers JPEG with image.Decode
	_ "image/png"  // registers PNG with image.Decode
	"math"
)

// Errors about image content, wrapped by Decode and Transform.Apply; test them
// with errors.Is.
var (
	// ErrInvalidImage: the bytes are not a decodable PNG or JPEG image
	// (unknown format, truncated or corrupt data, zero width or height).
	ErrInvalidImage = errors.New("invalid image")
	// ErrTooLarge: the image has more pixels than allowed.
	ErrTooLarge = errors.New("image too large")
)

// DefaultMaxPixels is Decode's default limit: 40 megapixels.
const DefaultMaxPixels = 40 << 20

// Decode decodes a PNG or JPEG image held in b. It reads the header first
// and refuses an image of more than maxPixels pixels (0 means
// DefaultMaxPixels) before decoding it, so a small file declaring a huge
// image costs no memory.
func Decode(b []byte, maxPixels int) (image.Image, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: not a PNG or JPEG image (%v)", ErrInvalidImage, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("%w: %s of size %dx%d has no pixels", ErrInvalidImage, format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, fmt.Errorf("%w: %s of %dx%d has %d pixels, the limit is %d; scale it down first",
			ErrTooLarge, format, cfg.Width, cfg.Height, int64(cfg.Width)*int64(cfg.Height), maxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v (truncated or corrupt?)", ErrInvalidImage, err)
	}
	return img, nil
}

// Transform turns an image into a model input.
type Transform struct {
	Height, Width int        // the model's input size
	Mean, Std     [3]float32 // per channel (R, G, B): (pixel/255 − Mean) / Std
}

// Apply resizes img so it covers Height×Width, crops the centre and
// normalizes it (see the package comment). dst, if it has room for
// 3·Height·Width values, receives the result; it returns (3, Height, Width)
// row-major: the R plane, then G, then B.
func (t Transform) Apply(img image.Image, dst []float32) ([]float32, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: size %dx%d has no pixels", ErrInvalidImage, w, h)
	}
	rw, rh := resizedSize(w, h, t.Width, t.Height)
	src := planes(img)
	x := resizeH(src, w, h, rw) // (3, h, rw)
	x = resizeV(x, rw, h, rh)   // (3, rh, rw)
	top := int(math.Round(float64(rh-t.Height) / 2))
	left := int(math.Round(float64(rw-t.Width) / 2))
	n := 3 * t.Height * t.Width
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	for c := range 3 {
		for y := range t.Height {
			row := x[(c*rh+top+y)*rw+left:][:t.Width]
			out := dst[(c*t.Height+y)*t.Width:][:t.Width]
			for i, v := range row {
				out[i] = (v - t.Mean[c]) / t.Std[c]
			}
		}
	}
	return dst, nil
}

// resizedSize is the size an image of w×h is scaled to so that it covers
// tw×th: torchvision's Resize(S) for a square target (the shorter side
// becomes S, the longer ⌊long·S/short⌋), the same scale rule otherwise.
func resizedSize(w, h, tw, th int) (rw, rh int) {
	if tw == th { // torchvision's integer rule
		if w <= h {
			return tw, max(th, h*tw/w)
		}
		return max(tw, w*th/h), th
	}
	s := max(float64(tw)/float64(w), float64(th)/float64(h))
	return max(tw, int(float64(w)*s)), max(th, int(float64(h)*s))
}

// planes converts img to straight RGB in [0, 1]: (3, h, w) row-major.
func planes(img image.Image) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]float32, 3*w*h)
	r, g, bl := out[:w*h], out[w*h:2*w*h], out[2*w*h:]
	set := func(i int, cr, cg, cb float32) { r[i], g[i], bl[i] = cr, cg, cb }
	switch m := img.(type) {
	case *image.YCbCr: // JPEG
		for y := range h {
			for x := range w {
				c := m.YCbCrAt(b.Min.X+x, b.Min.Y+y)
				cr, cg, cb := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				set(y*w+x, float32(cr)/255, float32(cg)/255, float32(cb)/255)
			}
		}
	case *image.NRGBA: // PNG with alpha
		for y := range h {
			p := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				set(y*w+x, float32(p[4*x])/255, float32(p[4*x+1])/255, float32(p[4*x+2])/255)
			}
		}
	case *image.RGBA: // opaque PNG; premultiplied in general
		for y := range h {
			p := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				a := float32(p[4*x+3])
				if a == 0 {
					set(y*w+x, 0, 0, 0)
					continue
				}
				set(y*w+x, float32(p[4*x])/a, float32(p[4*x+1])/a, float32(p[4*x+2])/a)
			}
		}
	case *image.Gray:
		for y := range h {
			p := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range w {
				v := float32(p[x]) / 255
				set(y*w+x, v, v, v)
			}
		}
	default:
		for y := range h {
			for x := range w {
				c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
				set(y*w+x, float32(c.R)/65535, float32(c.G)/65535, float32(c.B)/65535)
			}
		}
	}
	return out
}

// taps are the input samples and weights of one output sample.
type taps struct {
	start int       // first input sample
	w     []float32 // weights of samples start, start+1, ...
}

// filterTaps returns PIL's antialiased bilinear filter from in samples to
// out: a triangle of half-width max(1, in/out) input samples around each
// output sample's centre, normalized to sum to 1.
func filterTaps(in, out int) []taps {
	scale := float64(in) / float64(out)
	fs := max(scale, 1)
	support := fs // the triangle's support is 1 at scale 1
	t := make([]taps, out)
	for o := range out {
		center := (float64(o) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		ws := make([]float64, hi-lo)
		var sum float64
		for i := range ws {
			d := math.Abs((float64(i+lo) - center + 0.5) / fs)
			if d < 1 {
				ws[i] = 1 - d
			}
			sum += ws[i]
		}
		w := make([]float32, len(ws))
		for i := range ws {
			w[i] = float32(ws[i] / sum) // sum > 0: the centre tap is within the support
		}
		t[o] = taps{lo, w}
	}
	return t
}

// resizeH resamples the rows of x (3, h, w) to width ow: (3, h, ow).
func resizeH(x []float32, w, h, ow int) []float32 {
	if ow == w {
		return x
	}
	t := filterTaps(w, ow)
	out := make([]float32, 3*h*ow)
	for r := range 3 * h {
		src, dst := x[r*w:(r+1)*w], out[r*ow:(r+1)*ow]
		for o, tp := range t {
			var s float32
			for i, wt := range tp.w {
				s += wt * src[tp.start+i]
			}
			dst[o] = s
		}
	}
	return out
}

// resizeV resamples the columns of x (3, h, w) to height oh: (3, oh, w).
func resizeV(x []float32, w, h, oh int) []float32 {
	if oh == h {
		return x
	}
	t := filterTaps(h, oh)
	out := make([]float32, 3*oh*w)
	for c := range 3 {
		plane := x[c*h*w : (c+1)*h*w]
		for o, tp := range t {
			dst := out[(c*oh+o)*w : (c*oh+o+1)*w]
			for i, wt := range tp.w {
				src := plane[(tp.start+i)*w : (tp.start+i+1)*w]
				for j, v := range src {
					dst[j] += wt * v
				}
			}
		}
	}
	return out
}

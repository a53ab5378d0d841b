package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"path/filepath"
	"strings"

	"github.com/gozoo/gozoo/safetensors"
	"github.com/gozoo/gozoo/zoo/vgg"
	"github.com/spf13/cobra"
)

func newFeaturesCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		src        = modelSource{defaultMaxBatch: 32}
		layer, out string
		list       bool
	)
	cmd := &cobra.Command{
		Use:   "features (--checkpoint DIR | --model NAME --weights FILE) --layer NAME IMAGE... -o FILE",
		Short: "Extract a layer's activations for images into .npy or .safetensors",
		Long: `Extract the activations of one layer (features.30, classifier.0, or a stage
block1 … block5: the output of its max pool) for PNG and JPEG images,
preprocessed as zoo predict does. The output is (N, C, h, w) for a feature map
and (N, F) after flattening, float32, in the order of the images.

-o FILE.npy writes NumPy's format (numpy.load reads it); -o FILE.safetensors
writes one tensor named "features" with the layer, model and image files in
its metadata (safetensors.safe_open(...).metadata()). The file is written
atomically. --list prints the layer names.

An image that cannot be read is reported and left out; the exit status is then 1.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !list {
				switch {
				case layer == "":
					return usageError{fmt.Errorf("no layer: pass --layer NAME (zoo features --list prints them)")}
				case out == "":
					return usageError{fmt.Errorf("no output: pass -o FILE.npy or -o FILE.safetensors")}
				case len(args) == 0:
					return usageError{fmt.Errorf("no images: pass one or more PNG or JPEG files")}
				}
			}
			ext := strings.ToLower(filepath.Ext(out))
			if !list && ext != ".npy" && ext != ".safetensors" {
				return usageError{fmt.Errorf("-o %s: the output must end in .npy or .safetensors", out)}
			}
			p, desc, err := src.predictor(cmd)
			if err != nil {
				return err
			}
			defer p.Close()
			if list {
				for _, l := range p.Model().Layers {
					fmt.Fprintf(stdout, "%-14s %-18s %s\n", l.Name, l.Kind, shape(l.Shape))
				}
				for _, l := range p.Model().Layers {
					if l.Kind == vgg.MaxPool && l.Stage > 0 {
						fmt.Fprintf(stdout, "%-14s %-18s %s\n", fmt.Sprintf("block%d", l.Stage), "= "+l.Name, shape(l.Shape))
					}
				}
				return nil
			}
			imgs, errs := readImages(args)
			var (
				good  []image.Image
				files []string
			)
			for i, img := range imgs {
				if errs[i] != nil {
					fmt.Fprintln(stderr, "zoo:", errs[i])
					continue
				}
				good = append(good, img)
				files = append(files, args[i])
			}
			failed := len(args) - len(good)
			if len(good) == 0 {
				return errors.New("no image could be read; nothing written")
			}
			t, err := p.Features(good, layer)
			if err != nil {
				return err
			}
			var n int64
			if ext == ".npy" {
				n, err = writeAtomic(out, t.WriteNPY)
			} else {
				names, _ := json.Marshal(files)
				meta := map[string]string{"gozoo.layer": layer, "gozoo.model": p.Model().Name, "gozoo.images": string(names)}
				err = safetensors.WriteFile(out, map[string]safetensors.Tensor{"features": safetensors.FromFloat32(t.Shape, t.Data)}, meta)
				n = -1
			}
			if err != nil {
				return err
			}
			size := ""
			if n >= 0 {
				size = fmt.Sprintf(" (%d bytes)", n)
			}
			fmt.Fprintf(stdout, "wrote %s%s: %s of %s for %s, shape %s\n", out, size, layer, desc, plural(len(good), "image"), shape(t.Shape))
			if failed > 0 {
				return errors.New(plural(failed, "image") + " could not be read (see above) and were left out")
			}
			return nil
		},
	}
	src.register(cmd)
	f := cmd.Flags()
	f.StringVar(&layer, "layer", "", "the layer: features.N, classifier.N, flatten, or block1 … block5")
	f.StringVarP(&out, "output", "o", "", "the file to write: FILE.npy or FILE.safetensors")
	f.BoolVar(&list, "list", false, "print the model's layer names and shapes")
	return cmd
}

package predict_test

import (
	"fmt"
	"image"
	"image/color"
	"log"

	"github.com/gozoo/gozoo/predict"
	"github.com/gozoo/gozoo/zoo/vgg"
)

func Example() {
	// A trained model would come from a checkpoint (m.LoadWeights or
	// zoo predict --checkpoint); fresh seeded weights keep the example small.
	m, err := vgg.New("vgg11", vgg.Options{WidthMult: 0.0625, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	p, err := predict.New(m, predict.Options{Classes: []string{
		"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	img := image.NewUniform(color.RGBA{200, 30, 30, 255}) // any image.Image
	photo := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := range 480 {
		for x := range 640 {
			photo.Set(x, y, img.At(x, y))
		}
	}
	preds, err := p.Predict([]image.Image{photo, photo}, 3)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(preds), "predictions, top", len(preds[0].Top), "of", len(preds[0].Probabilities), "classes")
	f, err := p.Features([]image.Image{photo, photo}, "block4")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("block4 features:", f.Shape)
	// Output:
	// 2 predictions, top 3 of 10 classes
	// block4 features: [2 32 2 2]
}

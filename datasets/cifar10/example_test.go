package cifar10_test

import (
	"context"
	"fmt"
	"log"

	"github.com/gozoo/gozoo/datasets/cifar10"
)

// Load the embedded sample and read one epoch of shuffled, augmented,
// normalized batches.
func Example() {
	train, err := cifar10.Sample(cifar10.Train) // or cifar10.Load(path, cifar10.Train, cifar10.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(train.Name, train.Len(), "images of", len(train.Classes), "classes, first a", train.Classes[train.Labels[0]])

	loader, err := cifar10.NewLoader(train, cifar10.LoaderConfig{BatchSize: 64, Shuffle: true, Augment: true, Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	images := 0
	for batch, err := range loader.Epoch(context.Background(), 0) {
		if err != nil {
			log.Fatal(err)
		}
		images += batch.Len() // batch.Images is (N, 3, 32, 32) float32
	}
	fmt.Println(loader.NumBatches(), "batches,", images, "images")
	// Output:
	// cifar10 2000 images of 10 classes, first a frog
	// 32 batches, 2000 images
}

// Print the figures `zoo data info` shows.
func ExampleInspect() {
	info, err := cifar10.Inspect("sample", cifar10.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Dataset, info.Checksum)
	for _, s := range info.Splits {
		fmt.Printf("%-5v %4d images, %d per class, mean %.3f\n", s.Split, s.Images, s.PerClass[0], s.Mean)
	}
	// Output:
	// cifar10 ok: embedded sample, md5 matches the one recorded when it was drawn
	// train 2000 images, 200 per class, mean [0.492 0.484 0.448]
	// test   500 images, 50 per class, mean [0.500 0.490 0.454]
}

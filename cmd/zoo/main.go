// Command zoo builds, inspects, trains and benchmarks the models of gozoo.
//
//	zoo models
//	zoo summary vgg16 --bn
//	zoo graph vgg11 --format dot
//
// Run "zoo help" for the full list of commands.
package main

import (
	"os"

	"github.com/gozoo/gozoo/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}

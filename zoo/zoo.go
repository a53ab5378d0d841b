// Package zoo is gozoo's model registry: every model it can build, by name.
//
// Names are sorted; Lookup resolves a name (with "--bn" folded in as the
// "_bn" suffix) and reports an unknown one with the list of valid names;
// Match filters the registry with a shell glob such as "vgg1*".
package zoo

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/gozoo/gozoo/zoo/vgg"
)

// Entry is one registered model.
type Entry struct {
	Name   string // e.g. "vgg16_bn"
	Family string // e.g. "vgg"
	Paper  string
}

// Arch returns the entry's architecture under opts.
func (e Entry) Arch(opts vgg.Options) (*vgg.Arch, error) { return vgg.NewArch(e.Name, opts) }

// New builds the entry's model, with initialised weights, under opts.
func (e Entry) New(opts vgg.Options) (*vgg.Model, error) { return vgg.New(e.Name, opts) }

const vggPaper = "Very Deep Convolutional Networks for Large-Scale Image Recognition (arXiv:1409.1556)"

// Entries returns every registered model, sorted by name.
func Entries() []Entry {
	var es []Entry
	for _, name := range vgg.Names() {
		es = append(es, Entry{Name: name, Family: "vgg", Paper: vggPaper})
	}
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return es
}

// Names returns the registered model names, sorted.
func Names() []string {
	var names []string
	for _, e := range Entries() {
		names = append(names, e.Name)
	}
	return names
}

// Lookup returns the entry of name. With bn set, "vgg16" means "vgg16_bn"
// (the command line's "vgg16 --bn"); "vgg16_bn" with bn set is the same model.
func Lookup(name string, bn bool) (Entry, error) {
	if bn && !strings.HasSuffix(name, "_bn") {
		name += "_bn"
	}
	for _, e := range Entries() {
		if e.Name == name {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("zoo: unknown model %q; valid names: %s", name, strings.Join(Names(), ", "))
}

// Match returns the entries whose names match the shell glob pattern
// (path.Match syntax: "vgg1*", "vgg?6_bn"). A malformed pattern is an error;
// a pattern matching nothing returns no entries and no error.
func Match(pattern string) ([]Entry, error) {
	var out []Entry
	for _, e := range Entries() {
		ok, err := path.Match(pattern, e.Name)
		if err != nil {
			return nil, fmt.Errorf("zoo: bad pattern %q: %w", pattern, err)
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

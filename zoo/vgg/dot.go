package vgg

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	G "gorgonia.org/gorgonia"
)

// WriteDot writes the graph in Graphviz DOT: one node per Gorgonia node
// (inputs and parameters as ellipses, operations as boxes labelled with the
// op, its output shape and, for a layer's output, the layer name), edges in
// the direction data flows. Gorgonia's own ToDot prints every value and runs
// to hundreds of megabytes for a full VGG; this prints none.
func (g *Graph) WriteDot(w io.Writer) error {
	layerOf := make(map[*G.Node]string)
	for name, n := range g.nodes {
		if old, ok := layerOf[n]; !ok || strings.HasPrefix(old, "block") {
			layerOf[n] = name
		}
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "digraph %q {\n\trankdir=TB;\n\tnode [fontname=\"Helvetica\", fontsize=10];\n", g.Model.Name)
	for _, n := range g.G.AllNodes() {
		var label, shape string
		if n.Op() == nil {
			label = fmt.Sprintf("%s\\n%v", n.Name(), n.Shape())
			shape = "ellipse"
		} else {
			label = fmt.Sprintf("%v\\n%v", n.Op(), n.Shape())
			if name, ok := layerOf[n]; ok {
				label = name + "\\n" + label
			}
			shape = "box"
		}
		fmt.Fprintf(bw, "\tn%d [label=\"%s\", shape=%s];\n", n.ID(), strings.ReplaceAll(label, `"`, `\"`), shape)
	}
	for _, n := range g.G.AllNodes() {
		children := g.G.From(n.ID())
		for children.Next() {
			fmt.Fprintf(bw, "\tn%d -> n%d;\n", children.Node().ID(), n.ID())
		}
	}
	fmt.Fprintln(bw, "}")
	return bw.Flush()
}

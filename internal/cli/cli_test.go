package cli

import (
	"bytes"
	"strings"
	"testing"
)

// run runs the zoo command line in-process.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestSummaryParamCounts(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"summary", "vgg11", "--head", "imagenet"}, "total parameters: 132,863,336 (132863336)"},
		{[]string{"summary", "vgg16", "--bn", "--head", "imagenet"}, "total parameters: 138,365,992 (138365992)"},
		{[]string{"summary", "vgg16_bn", "--head", "imagenet"}, "total parameters: 138,365,992"},
		{[]string{"summary", "vgg19", "--bn", "--head", "imagenet"}, "total parameters: 143,678,248"},
		{[]string{"summary", "vgg16"}, "total parameters: 14,719,818"},
		{[]string{"summary", "vgg16", "--bn"}, "total parameters: 14,728,266"},
		{[]string{"summary", "vgg19_bn"}, "total parameters: 20,040,522"},
		{[]string{"summary", "vgg11", "--classes", "100", "--input", "3x64x64"}, "(100)"},
	}
	for _, tt := range tests {
		out, errOut, code := run(t, tt.args...)
		if code != 0 || !strings.Contains(out, tt.want) {
			t.Errorf("zoo %s: exit %d, stderr %q; stdout lacks %q:\n%s", strings.Join(tt.args, " "), code, errOut, tt.want, out)
		}
	}
}

func TestSummaryTable(t *testing.T) {
	out, _, _ := run(t, "summary", "vgg16", "--bn")
	for _, want := range []string{"features.0", "Conv2d(3, 64, kernel_size=(3, 3)", "(64, 32, 32)", "1,792", "features.43", "(512, 1, 1)", "classifier.0", "(10)"} {
		if !strings.Contains(out, want) {
			t.Errorf("zoo summary vgg16 --bn lacks %q:\n%s", want, out)
		}
	}
}

func TestModels(t *testing.T) {
	out, _, code := run(t, "models")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"vgg11", "vgg19_bn", "138,357,544", "15.47", "0.313"} {
		if !strings.Contains(out, want) {
			t.Errorf("zoo models lacks %q:\n%s", want, out)
		}
	}
	if out, _, _ := run(t, "models", "vgg1?_bn"); strings.Count(out, "_bn") != 4 {
		t.Errorf("zoo models vgg1?_bn should list the 4 BN models:\n%s", out)
	}
}

func TestGraphDot(t *testing.T) {
	out, errOut, code := run(t, "graph", "vgg11", "--bn", "--width", "0.0625", "--format", "dot")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "digraph") || !strings.Contains(out, "features.0.weight") {
		t.Errorf("zoo graph: exit %d, stderr %q, stdout starts %.200q", code, errOut, out)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"summary", "vgg17"}, 2, "valid names: vgg11"},
		{[]string{"summary", "vgg16", "--input", "3x16x16"}, 1, "too small"},
		{[]string{"summary", "vgg16", "--input", "3xAx16"}, 2, "CxHxW"},
		{[]string{"summary", "vgg16", "--width", "0"}, 2, "width"},
		{[]string{"summary", "vgg16", "--head", "mlp"}, 1, "unknown head"},
		{[]string{"summary", "vgg16", "--nope"}, 2, "unknown flag"},
		{[]string{"graph", "vgg11", "--format", "png"}, 2, "only format"},
		{[]string{"models", "vgg[1"}, 2, "bad pattern"},
	}
	for _, tt := range tests {
		_, errOut, code := run(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("zoo %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.want)
		}
	}
}

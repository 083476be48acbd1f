package archtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/galeproject/gale"

// rules maps each library package (its path inside the module, "" for the
// root package) to what it may import besides the standard library: Gale
// packages by path, third-party modules by path prefix (ending in "/" or a
// whole module path). A package missing from the table fails the test
// until its rule is written here and in its doc comment.
//
// Commands, benchmarks and samples (cmd/, bench/, examples/ and their
// counterparts under beam/) are assembly points and may import anything.
var rules = map[string][]string{
	// The user API and its wiring (doc.go of package gale).
	"": {"backends", "backends/aws", "backends/azure", "backends/gcp", "backends/ibm", "backends/local",
		"backends/objstore", "backends/process", "engine", "glider", "glider/gliderstore", "internal/coder",
		"internal/kernel", "internal/strtab", "planner", "probe", "shuffle", "shuffle/extsort", "state", "ui"},

	"backends":                       {},
	"backends/objstore":              {},
	"backends/objstore/objstoretest": {"backends/objstore"},
	"backends/local":                 {"backends"},
	"backends/process":               {"backends"},
	"backends/faulty":                {"backends"},
	"backends/sim":                   {"backends", "probe"},
	"backends/aws":                   {"backends", "backends/objstore", "github.com/aws/"},
	"backends/gcp": {"backends", "backends/objstore", "cloud.google.com/go/",
		"github.com/GoogleCloudPlatform/functions-framework-go/", "golang.org/x/oauth2", "google.golang.org/"},
	"backends/azure":             {"backends", "backends/objstore", "github.com/Azure/azure-sdk-for-go/"},
	"backends/azure/host":        {"backends/azure"},
	"backends/azure/azuritetest": {"internal/standin"},
	"backends/ibm":               {"backends", "backends/objstore", "github.com/IBM/ibm-cos-sdk-go/"},
	"backends/ibm/controller":    {"backends/ibm"},
	// The program's assembly point: the only library package that knows
	// every backend (backends/config/doc.go).
	"backends/config": {"", "backends", "backends/aws", "backends/azure", "backends/azure/host",
		"backends/gcp", "backends/ibm", "backends/process", "backends/sim", "engine", "gopkg.in/yaml.v3"},

	"planner": {},
	// The shuffle's formats and partitioners (shuffle/doc.go); its
	// object-store writer and reader (shuffle/objects).
	"shuffle":         {"github.com/cespare/xxhash/v2"},
	"shuffle/objects": {"shuffle", "backends/objstore"},
	"shuffle/extsort": {},
	"engine": {"backends", "backends/objstore", "planner", "shuffle", "shuffle/objects", "glider", "internal/kernel",
		"github.com/klauspost/compress/", "golang.org/x/sys/unix"},
	"engine/enginetest": {},
	// The fault-injection suite holds tests only (chaos/doc.go).
	"chaos": {},

	"glider":               {"glider/internal/wire", "shuffle"},
	"glider/internal/wire": {"internal/frame"},
	"glider/gliderstore":   {"backends/objstore", "glider"},

	"probe":      {"backends", "backends/objstore"},
	"probe/plot": {"probe", "gonum.org/v1/plot"},

	"state":               {"internal/coder", "state/internal/wal", "state/internal/wire", "state/ring", "github.com/cespare/xxhash/v2", "go.etcd.io/raft/v3"},
	"state/internal/wal":  {},
	"state/internal/wire": {"internal/frame"},
	"state/ring":          {"github.com/cespare/xxhash/v2"},
	"state/threads":       {"backends", "backends/local", "state"},

	"ui": {"engine"},

	"internal/archtest":    {},
	"internal/coder":       {},
	"internal/frame":       {},
	"internal/kernel":      {},
	"internal/strtab":      {},
	"internal/wordref":     {},
	"internal/standin":     {},
	"internal/textgen":     {"golang.org/x/sync/errgroup"},
	"internal/gensort":     {"golang.org/x/sync/errgroup"},
	"internal/cache":       {"internal/textgen", "github.com/dustin/go-humanize"},
	"internal/awsstandin":  {"internal/standin"},
	"internal/browsertest": {"internal/standin", "github.com/chromedp/"},

	// The Beam runner's module (beam/go.mod).
	"beam/galerunner": {"", "backends", "backends/config", "backends/local", "backends/objstore", "engine", "ui",
		"beam/internal/stages", "beam/internal/worker", "github.com/apache/beam/sdks/v2/",
		"github.com/dustin/go-humanize", "google.golang.org/protobuf/"},
	"beam/internal/stages": {"github.com/apache/beam/sdks/v2/", "google.golang.org/protobuf/"},
	"beam/internal/worker": {"backends/objstore", "engine", "shuffle", "shuffle/objects", "shuffle/extsort", "beam/internal/stages",
		"github.com/apache/beam/sdks/v2/", "github.com/dustin/go-humanize", "google.golang.org/protobuf/"},
	"beam/conformance":      {"beam/conformance/hook"},
	"beam/conformance/hook": {"beam/galerunner", "github.com/apache/beam/sdks/v2/"},
}

// assembly reports whether a package is a command, benchmark or sample.
func assembly(rel string) bool {
	for _, p := range []string{"cmd/", "bench/", "examples/", "beam/cmd/", "beam/bench/", "beam/examples/"} {
		if strings.HasPrefix(rel, p) {
			return true
		}
	}
	return false
}

// allowed reports whether rule admits the import path imp.
func allowed(rule []string, imp string) bool {
	for _, r := range rule {
		switch {
		case strings.Contains(strings.SplitN(r, "/", 2)[0], "."):
			// A third-party module: a prefix ending in "/", or the
			// module's own path and its subpackages.
			if strings.HasSuffix(r, "/") && strings.HasPrefix(imp, r) || imp == r || strings.HasPrefix(imp, r+"/") {
				return true
			}
		case r == "":
			if imp == module {
				return true
			}
		default:
			if imp == module+"/"+r {
				return true
			}
		}
	}
	return false
}

// standard reports whether an import path is in the standard library.
func standard(imp string) bool {
	return !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")
}

type pkg struct {
	rel     string
	imports []string
}

// list runs go list over both modules (go.work joins them) and returns
// every package with its non-test imports.
func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command(goTool(), "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...", module+"/beam/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		pkgs = append(pkgs, pkg{rel: rel, imports: f[1:]})
	}
	return pkgs
}

// goTool is the go command of the toolchain running the test, or the one
// on PATH.
func goTool() string {
	g := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(g); err != nil {
		return "go"
	}
	return g
}

// TestImportRules fails on any import outside the rules, on a library
// package without a rule, and on a rule for a package that is gone.
func TestImportRules(t *testing.T) {
	pkgs := list(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.rel] = true
		if assembly(p.rel) {
			continue
		}
		rule, ok := rules[p.rel]
		if !ok {
			t.Errorf("package %q has no import rule: add one to rules in internal/archtest/arch_test.go and state it in the package's doc comment", p.rel)
			continue
		}
		for _, imp := range p.imports {
			if standard(imp) || allowed(rule, imp) {
				continue
			}
			name := p.rel
			if name == "" {
				name = "gale (the root package)"
			}
			t.Errorf("%s imports %s, which its rule does not allow (%s): change the code, or the rule here and in the package's doc comment together",
				name, imp, describe(rule))
		}
	}
	var gone []string
	for rel := range rules {
		if !seen[rel] {
			gone = append(gone, rel)
		}
	}
	slices.Sort(gone)
	for _, rel := range gone {
		t.Errorf("rules name package %q, which no longer exists: remove its rule", rel)
	}
}

func describe(rule []string) string {
	if len(rule) == 0 {
		return "the standard library only"
	}
	names := make([]string, len(rule))
	for i, r := range rule {
		if r == "" {
			r = "gale"
		}
		names[i] = r
	}
	return "the standard library and " + strings.Join(names, ", ")
}

// TestRulesCatchAForbiddenImport checks the checker on made-up imports:
// a planner that imported the engine, or an engine that imported a cloud
// SDK, must fail.
func TestRulesCatchAForbiddenImport(t *testing.T) {
	for _, c := range []struct {
		pkg, imp string
		ok       bool
	}{
		{"planner", module + "/engine", false},
		{"engine", "github.com/aws/aws-sdk-go-v2/service/s3", false},
		{"engine", module + "/backends/config", false},
		{"backends", module, false},
		{"engine", module + "/planner", true},
		{"engine", "github.com/klauspost/compress/zstd", true},
		{"backends/aws", "github.com/aws/aws-sdk-go-v2/service/s3", true},
		{"backends/config", module, true},
		{"probe/plot", "gonum.org/v1/plot/vg", true},
		{"probe/plot", "gonum.org/v1/plotter", false},
		{"shuffle", module + "/backends/objstore", false},
		{"shuffle", module + "/engine", false},
		{"shuffle/objects", module + "/engine", false},
		{"beam/internal/worker", "github.com/cespare/xxhash/v2", false},
		{"shuffle/objects", module + "/backends/objstore", true},
	} {
		if got := allowed(rules[c.pkg], c.imp); got != c.ok {
			t.Errorf("rule of %q admits %s: %v, want %v", c.pkg, c.imp, got, c.ok)
		}
	}
}

package docref

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/aptfleet/aptfleet/"

// TestAllowedImports holds the code to the arrows docs/architecture.md allows
// ("Allowed imports"): it reads the imports of every non-test Go file in the
// module and fails on an arrow the page forbids.
func TestAllowedImports(t *testing.T) {
	imports := map[string]map[string]bool{} // package dir -> module packages it imports
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		if imports[pkg] == nil {
			imports[pkg] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if strings.HasPrefix(p, module) {
				imports[pkg][strings.TrimPrefix(p, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports["cmd/puller"]) == 0 {
		t.Fatalf("read no imports of cmd/puller from %s: the walk is broken", root)
	}
	under := func(p, part string) bool { return p == part || strings.HasPrefix(p, part+"/") }
	rules := []struct {
		name   string
		from   func(string) bool
		denied func(string) bool
	}{
		{"nothing imports cmd", func(string) bool { return true }, func(p string) bool { return under(p, "cmd") }},
		{"the notifier stays small: no puller, repo, pkgbuild or userdata",
			func(p string) bool { return under(p, "notifier") },
			func(p string) bool {
				return under(p, "puller") || under(p, "repo") || under(p, "pkgbuild") || under(p, "userdata")
			}},
		{"repo knows no agent, builder, notifier or user-data",
			func(p string) bool { return under(p, "repo") },
			func(p string) bool {
				return under(p, "puller") || under(p, "pkgbuild") || under(p, "notifier") || under(p, "userdata")
			}},
		{"pkgbuild builds packages only: no repo, puller, notifier or user-data",
			func(p string) bool { return under(p, "pkgbuild") },
			func(p string) bool {
				return under(p, "repo") || under(p, "puller") || under(p, "notifier") || under(p, "userdata")
			}},
		{"the root package puller declares the vocabulary its children implement: it imports none of them",
			func(p string) bool { return p == "puller" },
			func(p string) bool { return strings.HasPrefix(p, "puller/") }},
		{"shared leaf packages import no part",
			func(p string) bool {
				return p == "internal/event" || p == "internal/debian" || p == "internal/docref" ||
					p == "internal/tail" || p == "internal/wait"
			},
			func(p string) bool { return !under(p, "internal") }},
	}
	for pkg, ims := range imports {
		for im := range ims {
			for _, r := range rules {
				if r.from(pkg) && r.denied(im) {
					t.Errorf("%s imports %s: not allowed (%s; see docs/architecture.md)", pkg, im, r.name)
				}
			}
		}
	}
}

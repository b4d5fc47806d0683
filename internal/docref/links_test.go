package docref

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var mdLink = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)\s]*)?\)`)

// TestDocsLinked checks that every page in docs/ is linked from the README and
// that every relative link in the README, CONTRIBUTING.md and docs/ names a
// file that exists.
func TestDocsLinked(t *testing.T) {
	root := "../.."
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no docs pages under %s/docs (%v)", root, err)
	}
	files := append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "CONTRIBUTING.md")}, pages...)
	linkedFromReadme := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			p := filepath.Clean(filepath.Join(filepath.Dir(f), target))
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s links to %s, which does not exist", f, target)
			}
			if filepath.Base(f) == "README.md" && filepath.Dir(f) == root {
				linkedFromReadme[p] = true
			}
		}
	}
	for _, p := range pages {
		if !linkedFromReadme[filepath.Clean(p)] {
			t.Errorf("%s is not linked from README.md", p)
		}
	}
}

// Package jenkins holds the example Jenkinsfile; its test keeps the
// pipeline's pkgbuild command lines in step with the real CLI.
package jenkins

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pkgbuildLine matches a pkgbuild invocation and captures the subcommand and
// the rest of the line.
var pkgbuildLine = regexp.MustCompile(`\bpkgbuild (build|publish|promote|yank|prune|verify|list)\b(.*)`)

var flagRE = regexp.MustCompile(`(?:^|\s)(--[a-z][a-z-]*)`)

func TestJenkinsfileUsesRealFlags(t *testing.T) {
	src, err := os.ReadFile("Jenkinsfile")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]map[string]bool{}
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "//") {
			continue
		}
		m := pkgbuildLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if used[m[1]] == nil {
			used[m[1]] = map[string]bool{}
		}
		for _, f := range flagRE.FindAllStringSubmatch(m[2], -1) {
			used[m[1]][f[1]] = true
		}
	}
	for _, sub := range []string{"build", "publish", "promote", "verify"} {
		if used[sub] == nil {
			t.Errorf("the pipeline never runs pkgbuild %s", sub)
		}
	}

	bin := filepath.Join(t.TempDir(), "pkgbuild")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/aptfleet/aptfleet/cmd/pkgbuild").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pkgbuild: %v\n%s", err, out)
	}
	for sub, flags := range used {
		t.Run(sub, func(t *testing.T) {
			help, err := exec.CommandContext(t.Context(), bin, sub, "--help").CombinedOutput()
			if err != nil {
				t.Fatalf("pkgbuild %s --help: %v\n%s", sub, err, help)
			}
			for f := range flags {
				if !regexp.MustCompile(regexp.QuoteMeta(f) + `\b`).Match(help) {
					t.Errorf("the pipeline passes %s to pkgbuild %s, which has no such flag:\n%s", f, sub, help)
				}
			}
		})
	}
}

// The pipeline's braces, brackets and parentheses pair up outside strings
// and comments: a cheap guard against a broken edit, as no Groovy parser
// runs here.
func TestJenkinsfileBalanced(t *testing.T) {
	src, err := os.ReadFile("Jenkinsfile")
	if err != nil {
		t.Fatal(err)
	}
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	s := string(src)
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case strings.HasPrefix(s[i:], "//"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case strings.HasPrefix(s[i:], "'''"), strings.HasPrefix(s[i:], `"""`):
			end := strings.Index(s[i+3:], s[i:i+3])
			if end < 0 {
				t.Fatalf("unterminated %s string at byte %d", s[i:i+3], i)
			}
			i += 3 + end + 2
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], s[i])
			if end < 0 || strings.Contains(s[i+1:i+1+end], "\n") {
				t.Fatalf("unterminated string at byte %d", i)
			}
			i += end + 1
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case pairs[c] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				t.Fatalf("unbalanced %c at byte %d", c, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed %q", string(stack))
	}
}

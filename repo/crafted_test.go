package repo_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/internal/testenv/s3server"
	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/internal/repotest"
)

// craftedDeb builds a .deb whose control file is control, verbatim, with
// testdata/crafted-deb.sh (ar and tar); control2, when set, is a second
// control file in the same control.tar.gz.
func craftedDeb(t *testing.T, dir, name, control, control2 string) string {
	t.Helper()
	testenv.NeedTools(t, "ar", "tar", "gzip")
	c1 := filepath.Join(dir, name+".control")
	if err := os.WriteFile(c1, []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(dir, name+".deb"), c1}
	if control2 != "" {
		c2 := filepath.Join(dir, name+".control2")
		if err := os.WriteFile(c2, []byte(control2), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, c2)
	}
	script, _ := filepath.Abs("testdata/crafted-deb.sh")
	if out, err := exec.Command(script, args...).CombinedOutput(); err != nil {
		t.Fatalf("crafted-deb.sh: %v: %s", err, out)
	}
	return args[0]
}

const craftedTail = "Maintainer: aptfleet tests <tests@aptfleet.invalid>\nDescription: crafted package\n"

// craftedCases are control files the repository must refuse, each with
// the field the one-line error names, and whether dpkg-deb refuses it too.
var craftedCases = []struct {
	name, control, control2 string
	field                   string // in the error message
	dpkgRefuses             bool
}{
	{"duplicate Version", "Package: webapp\nVersion: 1.0-1\nVersion: 99:9.9\nArchitecture: amd64\n" + craftedTail, "", `"Version" (line 3): given twice`, true},
	{"lower-case duplicate", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nversion: 99:9.9\npackage: webapp\n" + craftedTail, "", `"version" (line 4): given twice`, true},
	{"lower-case field", "Package: hello\nversion: 1.0-1\nArchitecture: amd64\n" + craftedTail, "", `"version" (line 2): spelled differently from Debian's "Version"`, false},
	{"space-padded name", "Package: hello\nVersion : 1.0-1\nArchitecture: amd64\n" + craftedTail, "", `"Version " (line 2): not a valid field name`, false},
	{"continued Package", "Package: hello\n webapp\nVersion: 1.0-1\nArchitecture: amd64\n" + craftedTail, "", `"Package" (line 1): continuation line 2`, false},
	{"continuation first", " Package: hello\nVersion: 1.0-1\nArchitecture: amd64\n" + craftedTail, "", "line 1: continuation line before any field", true},
	{"comment", "Package: hello\n# Version: 2\nVersion: 1.0-1\nArchitecture: amd64\n" + craftedTail, "", `"# Version" (line 2): not a valid field name`, false},
	{"Source escapes the pool", "Package: hello\nSource: ../../..\nVersion: 1.0-1\nArchitecture: amd64\n" + craftedTail, "", `"Source" (line 2): "../../.." is not a source package name`, false},
	{"Source split", "Package: hello\nSource: x\n y\nVersion: 1.0-1\nArchitecture: amd64\n" + craftedTail, "", `"Source" (line 2): continuation line 3`, false},
	{"Source bad version", "Package: hello\nSource: hello (1.0 1)\nVersion: 1.0-1\nArchitecture: amd64\n" + craftedTail, "", `"Source" (line 2)`, false},
	{"Section injects fields", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nSection: web\n Version: 99\n" + craftedTail, "", `"Section" (line 4): continuation line 5`, false},
	{"Section syntax", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nSection: web server\n" + craftedTail, "", `"Section" (line 4): "web server" is not a Debian section`, false},
	{"Priority", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nPriority: urgent\n" + craftedTail, "", `"Priority" (line 4): "urgent" is not one of`, false},
	{"Homepage injects a unit section", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nHomepage: http://x\n [Service]\n ExecStartPre=+/bin/touch /root/pwned\n" + craftedTail, "", `"Homepage" (line 4): continuation line 5`, false},
	{"Homepage not a URL", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nHomepage: javascript:alert(1)\n" + craftedTail, "", `"Homepage" (line 4)`, false},
	{"control character", "Package: hello\nVersion: 1.0-1\rVersion: 2\nArchitecture: amd64\n" + craftedTail, "", `line 2: control character '\r'`, false},
	{"bad Package", "Package: Hello_World\nVersion: 1.0-1\nArchitecture: amd64\n" + craftedTail, "", `"Package" (line 1): "Hello_World" is not a Debian package name`, false},
	{"control file over the limit", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nDepends: libc6\n" + craftedTail + strings.Repeat(" "+strings.Repeat("x", 1023)+"\n", 1030), "", "control file is 105", false},
	{"two control files", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\n" + craftedTail, "Package: webapp\nVersion: 99:9.9\nArchitecture: amd64\n" + craftedTail, "control.tar.gz holds two control files", false},
}

// TestCraftedDebsRefused publishes each crafted .deb into a repository that
// already holds a dist, on the directory store and on versitygw: each is
// refused with a one-line error naming the file and the field, and not one
// object is written.
func TestCraftedDebsRefused(t *testing.T) {
	key := repotest.NewKey(t, t.TempDir(), "")
	debs := t.TempDir()
	good := repotest.WriteDeb(t, debs, repotest.Spec{Name: "webapp", Version: "1.4.0-1"})
	stores := map[string]func(t *testing.T) *repo.Repo{
		"dir": func(t *testing.T) *repo.Repo {
			s, err := dir.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return &repo.Repo{Store: s, Signer: key.Signer}
		},
		"versitygw": func(t *testing.T) *repo.Repo {
			return s3Repo(t, s3server.Versitygw(t, s3server.VersitygwOptions{}), "apt", key)
		},
	}
	for _, storeName := range []string{"dir", "versitygw"} {
		t.Run(storeName, func(t *testing.T) {
			r := stores[storeName](t)
			ctx := context.Background()
			if _, err := r.Publish(ctx, "staging", "", []string{good}); err != nil {
				t.Fatal(err)
			}
			before := storeKeys(t, r.Store)
			for _, c := range craftedCases {
				t.Run(c.name, func(t *testing.T) {
					deb := craftedDeb(t, t.TempDir(), "crafted", c.control, c.control2)
					_, err := r.Publish(ctx, "staging", "", []string{deb})
					if err == nil {
						t.Fatalf("published; list: %v", listOf(t, r, "staging"))
					}
					msg := err.Error()
					if !strings.Contains(msg, deb) || !strings.Contains(msg, c.field) || strings.Contains(msg, "\n") || !errors.Is(err, repo.ErrBadDeb) {
						t.Errorf("error %q: want one line naming %s and %s (ErrBadDeb)", msg, deb, c.field)
					}
					if after := storeKeys(t, r.Store); strings.Join(after, " ") != strings.Join(before, " ") {
						t.Errorf("objects changed: before %v, after %v", before, after)
					}
				})
			}
			if got := listOf(t, r, "staging"); strings.Join(got, "|") != "webapp 1.4.0-1 amd64" {
				t.Errorf("staging = %v", got)
			}
		})
	}
}

// TestCraftedDebsDpkgAgrees checks the fixtures against dpkg-deb: what
// dpkg's own parser refuses is refused there too (the fixtures are real
// .debs, and the refusals are not an artefact of this parser), and a plain
// crafted .deb is read by dpkg as expected.
func TestCraftedDebsDpkgAgrees(t *testing.T) {
	testenv.NeedTools(t, "dpkg-deb")
	for _, c := range craftedCases {
		if !c.dpkgRefuses {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			deb := craftedDeb(t, t.TempDir(), "crafted", c.control, c.control2)
			if out, err := exec.Command("dpkg-deb", "--show", deb).CombinedOutput(); err == nil {
				t.Errorf("dpkg-deb --show accepted it: %s", out)
			}
		})
	}
	ok := craftedDeb(t, t.TempDir(), "ok", "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\n"+craftedTail, "")
	if out, err := exec.Command("dpkg-deb", "--show", ok).CombinedOutput(); err != nil || string(out) != "hello\t1.0-1\n" {
		t.Errorf("dpkg-deb --show on a plain crafted .deb: %q %v", out, err)
	}
}

// TestParsePackagesStrict: the index reader refuses what the publisher
// refuses, so a Packages file written by another tool cannot be read one
// way here and another way by apt.
func TestParsePackagesStrict(t *testing.T) {
	entry := "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nFilename: pool/main/h/hello/hello_1.0-1_amd64.deb\nSize: 10\nSHA256: 00\n"
	if _, err := repo.ParsePackages([]byte(entry), "main"); err != nil {
		t.Fatalf("plain entry: %v", err)
	}
	for name, text := range map[string]string{
		"duplicate":     entry + "Version: 99:9.9\n",
		"case-folded":   entry + "version: 99:9.9\n",
		"space-padded":  strings.Replace(entry, "Version:", "Version :", 1),
		"continued":     strings.Replace(entry, "Filename: pool/main/h/hello/hello_1.0-1_amd64.deb\n", "Filename: pool/main/h/hello/hello_1.0-1_amd64.deb\n x\n", 1),
		"second Source": entry + "Source: a\nSource: b\n",
	} {
		if _, err := repo.ParsePackages([]byte(entry+"\n"+text), "main"); !errors.Is(err, repo.ErrBadControl) {
			t.Errorf("%s: got %v, want ErrBadControl", name, err)
		}
	}
}

func storeKeys(t *testing.T, s repo.Store) []string {
	t.Helper()
	var keys []string
	if err := s.List(context.Background(), "", func(o repo.Object) error {
		keys = append(keys, o.Key+"@"+o.ETag)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

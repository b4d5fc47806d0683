package debian_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aptfleet/aptfleet/internal/debian"
	"github.com/aptfleet/aptfleet/internal/testenv"
)

// versionTests is the verdict for each version; TestValidateVersionDpkg
// checks every verdict against dpkg itself.
var versionTests = []struct {
	v     string
	valid bool
}{
	{"0", true},
	{"1.0", true},
	{"1.0-1", true},
	{"1.4.0-1", true},
	{"2:1.4.0~rc1-3", true},
	{"2:1.0~rc1+dfsg-1+b2", true},
	{"1.0+3.gabc1234-42", true},
	{"0.0.0+17.g1a2b3c4.dirty-1", true},
	{"1.0-beta-2", true}, // upstream "1.0-beta", revision "2"
	{"1.0-1-2", true},
	{"1.0~", true},
	{"1:2:3-4", true},   // with an epoch, the upstream part may hold ':'
	{"2:1.0:1-1", true}, // likewise
	{"1.0:1", false},    // without one, "1.0" is read as the epoch
	{"1.0:1-1", false},  // likewise
	{"1.0 beta", false},
	{"1.0 1", false},
	{"-1", false},
	{"", false},
	{"beta", false},
	{"a1.0", false},
	{"1.0-", false},
	{"a:1.0", false},
	{"x:1.0", false},
	{":1.0", false},
	{"1:", false},
	{"1.0-1_2", false},
	{"1.0_1", false},
	{"1.0-r:1", false},
	{"1.0-a:b", false},
	{"99999999999:1.0", false},
}

func TestParseVersion(t *testing.T) {
	for _, tt := range versionTests {
		t.Run(tt.v, func(t *testing.T) {
			v, err := debian.ParseVersion(tt.v)
			if (err == nil) != tt.valid {
				t.Fatalf("ParseVersion(%q) = %v, want valid=%v", tt.v, err, tt.valid)
			}
			if (debian.CheckVersion(tt.v) == nil) != tt.valid {
				t.Errorf("CheckVersion(%q) disagrees with ParseVersion", tt.v)
			}
			if err != nil {
				if !errors.Is(err, debian.ErrBadVersion) {
					t.Errorf("error %v does not wrap ErrBadVersion", err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.v)) {
					t.Errorf("error %q does not name the input", err)
				}
				return
			}
			if v.String() != tt.v && debian.CompareVersions(v.String(), tt.v) != 0 {
				t.Errorf("String() = %q, not equal to %q", v.String(), tt.v)
			}
		})
	}
}

// TestParseVersionMessages pins the wording users see from pkgbuild.
func TestParseVersionMessages(t *testing.T) {
	for in, want := range map[string]string{
		"1.0 beta": `"1.0 beta" is not a valid Debian version: it contains whitespace`,
		"-1":       `"-1" is not a valid Debian version: it must start with a digit`,
		"a:1.0":    `"a:1.0" is not a valid Debian version: epoch "a" is not a number`,
		"1.0-1_2":  `"1.0-1_2" is not a valid Debian version: revision "1_2" must be letters, digits, '+', '.' or '~'`,
	} {
		if err := debian.CheckVersion(in); err == nil || err.Error() != want {
			t.Errorf("CheckVersion(%q) = %v, want %s", in, err, want)
		}
	}
}

func TestValidateVersionDpkg(t *testing.T) {
	testenv.NeedTools(t, "dpkg")
	for _, tt := range versionTests {
		err := exec.Command("dpkg", "--validate-version", tt.v).Run()
		if (err == nil) != tt.valid {
			t.Errorf("dpkg --validate-version %q: %v, want valid=%v", tt.v, err, tt.valid)
		}
	}
}

func TestValidRevision(t *testing.T) {
	for s, want := range map[string]bool{"1": true, "42": true, "1+b1": true, "0~bpo1.1": true, "": false, "4 2": false, "1-2": false, "a:b": false, "1_2": false} {
		if got := debian.ValidRevision(s); got != want {
			t.Errorf("ValidRevision(%q) = %v, want %v", s, got, want)
		}
		if want && debian.CheckVersion("1.0-"+s) != nil {
			t.Errorf("revision %q is valid but 1.0-%s is not", s, s)
		}
	}
}

func TestCompareVersionsTable(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.0-0", 0},
		{"0:1.0", "1.0", 0},
		{"1.0~rc1", "1.0", -1},
		{"1.0~~", "1.0~", -1},
		{"1.0~", "1.0", -1},
		{"1.0", "1.0a", -1},
		{"1.0a", "1.0+", -1},
		{"1.0-1", "1.0-1+b1", -1},
		{"1:0.1", "9.9", 1},
		{"1.10", "1.9", 1},
		{"1.010", "1.10", 0},
		{"1.0-1", "1.0-1.1", -1},
		{"2.0-1~bpo1", "2.0-1", -1},
		{"1.0.0", "1.0", 1},
		{"a", "1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			if got := debian.CompareVersions(tt.a, tt.b); got != tt.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := debian.CompareVersions(tt.b, tt.a); got != -tt.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

// randomVersion generates versions dense in the tricky parts: epochs,
// tildes, leading zeros, letters and symbols, revisions.
func randomVersion(r *rand.Rand) string {
	part := func(alphabet string, n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if r.IntN(3) == 0 {
				fmt.Fprint(&b, r.IntN(3)*r.IntN(12))
				if r.IntN(4) == 0 {
					b.WriteString("0")
				}
			} else {
				b.WriteByte(alphabet[r.IntN(len(alphabet))])
			}
		}
		return b.String()
	}
	v := fmt.Sprint(r.IntN(3)) + part("0123456789.~+-abAZz", r.IntN(6))
	if r.IntN(4) == 0 {
		v = fmt.Sprint(r.IntN(3)) + ":" + v
	}
	if r.IntN(2) == 0 || strings.Contains(v, "-") {
		v += "-" + part("0123456789.~+bZ", 1+r.IntN(4))
	}
	return v
}

// TestCompareVersionsAgainstDpkg sorts thousands of generated versions with
// CompareVersions and asks dpkg --compare-versions about every adjacent
// pair (strictly lower, or equal where CompareVersions says equal) and
// about random pairs; dpkg's order is total, so agreement on adjacent pairs
// means the whole sort agrees with dpkg.
func TestCompareVersionsAgainstDpkg(t *testing.T) {
	testenv.NeedTools(t, "dpkg")
	r := rand.New(rand.NewPCG(1, 2))
	n := 2500
	if testing.Short() {
		n = 300
	}
	var vs []string
	for len(vs) < n {
		v := randomVersion(r)
		if _, err := debian.ParseVersion(v); err != nil {
			continue // dpkg refuses invalid versions outright
		}
		vs = append(vs, v)
	}
	slices.SortStableFunc(vs, debian.CompareVersions)
	type pair struct {
		a, b string
		want int
	}
	var pairs []pair
	for i := 1; i < len(vs); i++ {
		pairs = append(pairs, pair{vs[i-1], vs[i], debian.CompareVersions(vs[i-1], vs[i])})
	}
	for i := 0; i < n/2; i++ {
		a, b := vs[r.IntN(len(vs))], vs[r.IntN(len(vs))]
		pairs = append(pairs, pair{a, b, debian.CompareVersions(a, b)})
	}
	op := map[int]string{-1: "lt", 0: "eq", 1: "gt"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	work := make(chan pair)
	for w := 0; w < runtime.NumCPU()*2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				err := exec.Command("dpkg", "--compare-versions", p.a, op[p.want], p.b).Run()
				if err != nil {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("dpkg disagrees: %q %s %q", p.a, op[p.want], p.b))
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range pairs {
		work <- p
	}
	close(work)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d pairs disagree with dpkg, e.g.:\n%s", len(bad), len(pairs), strings.Join(bad[:min(10, len(bad))], "\n"))
	}
	t.Logf("%d versions, %d pairs checked against dpkg", len(vs), len(pairs))
}

// TestValidateVersionAgainstDpkg asks dpkg --validate-version about
// generated strings, valid and not, from an alphabet that includes the
// characters each part refuses.
func TestValidateVersionAgainstDpkg(t *testing.T) {
	testenv.NeedTools(t, "dpkg")
	r := rand.New(rand.NewPCG(3, 4))
	n := 600
	if testing.Short() {
		n = 100
	}
	const alphabet = "019a.+~-:_"
	var bad []string
	for i := 0; i < n; i++ {
		b := make([]byte, 1+r.IntN(7))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		ours := debian.CheckVersion(s) == nil
		theirs := exec.Command("dpkg", "--validate-version", s).Run() == nil
		if ours != theirs {
			bad = append(bad, fmt.Sprintf("%q: ours valid=%v, dpkg valid=%v", s, ours, theirs))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d strings disagree with dpkg, e.g.:\n%s", len(bad), n, strings.Join(bad[:min(10, len(bad))], "\n"))
	}
}

func FuzzCompareVersions(f *testing.F) {
	testenv.NeedTools(f, "dpkg")
	for _, s := range [][2]string{{"1.0~rc1-1", "1.0-1"}, {"2:1", "1:9"}, {"1.0+b1", "1.0.1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := debian.CompareVersions(a, b), debian.CompareVersions(b, a)
		if ab != -ba {
			t.Fatalf("not antisymmetric: %q %q: %d %d", a, b, ab, ba)
		}
		if _, err := debian.ParseVersion(a); err != nil {
			return
		}
		if _, err := debian.ParseVersion(b); err != nil {
			return
		}
		op := map[int]string{-1: "lt", 0: "eq", 1: "gt"}[ab]
		if err := exec.Command("dpkg", "--compare-versions", a, op, b).Run(); err != nil {
			t.Fatalf("dpkg disagrees: %q %s %q", a, op, b)
		}
	})
}

package repo_test

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/repo"
)

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
			if got := repo.CompareVersions(tt.a, tt.b); got != tt.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := repo.CompareVersions(tt.b, tt.a); got != -tt.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"1.0-1", true}, {"2:1.0~rc1+dfsg-1+b2", true}, {"1.0-1-2", true}, {"0", true}, {"1:2:3-4", true},
		{"", false}, {"a1.0", false}, {"1.0-", false}, {"x:1.0", false}, {":1.0", false}, {"1.0 1", false},
		{"1.0_1", false}, {"1.0-1_2", false}, {"1.0-a:b", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := repo.ParseVersion(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseVersion(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err == nil && repo.CompareVersions(v.String(), tt.in) != 0 {
				t.Errorf("String() = %q, not equal to %q", v.String(), tt.in)
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
		if _, err := repo.ParseVersion(v); err != nil {
			continue // dpkg refuses invalid versions outright
		}
		vs = append(vs, v)
	}
	slices.SortStableFunc(vs, repo.CompareVersions)
	type pair struct {
		a, b string
		want int
	}
	var pairs []pair
	for i := 1; i < len(vs); i++ {
		pairs = append(pairs, pair{vs[i-1], vs[i], repo.CompareVersions(vs[i-1], vs[i])})
	}
	for i := 0; i < n/2; i++ {
		a, b := vs[r.IntN(len(vs))], vs[r.IntN(len(vs))]
		pairs = append(pairs, pair{a, b, repo.CompareVersions(a, b)})
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

func FuzzCompareVersions(f *testing.F) {
	testenv.NeedTools(f, "dpkg")
	for _, s := range [][2]string{{"1.0~rc1-1", "1.0-1"}, {"2:1", "1:9"}, {"1.0+b1", "1.0.1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := repo.CompareVersions(a, b), repo.CompareVersions(b, a)
		if ab != -ba {
			t.Fatalf("not antisymmetric: %q %q: %d %d", a, b, ab, ba)
		}
		if _, err := repo.ParseVersion(a); err != nil {
			return
		}
		if _, err := repo.ParseVersion(b); err != nil {
			return
		}
		op := map[int]string{-1: "lt", 0: "eq", 1: "gt"}[ab]
		if err := exec.Command("dpkg", "--compare-versions", a, op, b).Run(); err != nil {
			t.Fatalf("dpkg disagrees: %q %s %q", a, op, b)
		}
	})
}

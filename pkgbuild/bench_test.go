package pkgbuild_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/pkgbuild"
)

// benchTreeSize is the size of the generated app tree: 200 MiB, or
// $APTFLEET_BENCH_TREE_MB MiB (for profiling on a smaller tree).
var benchTreeSize = func() int64 {
	if mb, err := strconv.Atoi(os.Getenv("APTFLEET_BENCH_TREE_MB")); err == nil && mb > 0 {
		return int64(mb) << 20
	}
	return 200 << 20
}()

// makeBenchTree writes a deterministic app tree of about size bytes under
// root/opt/bigapp: half pseudo-text (compressible, like code and assets),
// half random bytes (like already-compressed images), in files of 4 KiB to
// 4 MiB in nested directories. It also writes root/DEBIAN/control for
// dpkg-deb and returns the tree's path.
func makeBenchTree(tb testing.TB, root string, size int64) string {
	tb.Helper()
	tree := filepath.Join(root, "opt", "bigapp")
	rng := rand.New(rand.NewChaCha8([32]byte{'a', 'p', 't', 'f', 'l', 'e', 'e', 't'}))
	words := strings.Fields("the quick brown fox jumps over a lazy dog func return error nil " +
		"package import http server request response context value string int byte slice map " +
		"deploy fleet instance version release health check drain restart unit service target")
	var written int64
	for i := 0; written < size; i++ {
		dir := filepath.Join(tree, fmt.Sprintf("d%02d", i%16), fmt.Sprintf("s%02d", (i/16)%8))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		n := int64(4<<10) << rng.IntN(11) // 4 KiB .. 4 MiB
		n = min(n, size-written)
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%04d", i)))
		if err != nil {
			tb.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<16)
		if i%2 == 0 {
			buf := make([]byte, 1<<16)
			for left := n; left > 0; left -= int64(len(buf)) {
				for j := range buf {
					buf[j] = byte(rng.Uint32())
				}
				w.Write(buf[:min(int64(len(buf)), left)])
			}
		} else {
			var c int64
			for c < n {
				word := words[rng.IntN(len(words))]
				if rng.IntN(12) == 0 {
					word = fmt.Sprintf("%s%d", word, rng.IntN(1000))
				}
				sep := " "
				if rng.IntN(10) == 0 {
					sep = "\n"
				}
				k, _ := w.WriteString(word + sep)
				c += int64(k)
			}
		}
		if err := w.Flush(); err != nil {
			tb.Fatal(err)
		}
		f.Close()
		written += n
	}
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		tb.Fatal(err)
	}
	control := "Package: bigapp\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: B <b@example.com>\nDescription: benchmark tree\n"
	if err := os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		tb.Fatal(err)
	}
	return tree
}

var (
	benchOnce sync.Once
	benchWork string // holds root/ (the tree + DEBIAN/control), the specs and the packages
	benchTree string // root/opt/bigapp
	benchErr  error
)

// TestMain removes the benchmark's tree, which is shared by every run of the
// benchmark function in this process.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchWork != "" {
		os.RemoveAll(benchWork)
	}
	os.Exit(code)
}

// BenchmarkBuildVsDpkgDeb builds the same 200 MB tree with pkgbuild and with
// `dpkg-deb --build` (after writing DEBIAN/md5sums, so both packages have
// the same members) with the same compressor and level (gzip -9; zstd -3),
// alternating in the same run, and reports for each the median wall time and
// CPU time (user+system) per build, and the ratios (target: <= 1.3). CPU time
// is reported because wall time on a shared machine also measures the
// machine's other load.
func BenchmarkBuildVsDpkgDeb(b *testing.B) {
	testenv.NeedTools(b, "dpkg-deb")
	benchOnce.Do(func() {
		if benchWork, benchErr = os.MkdirTemp("", "aptfleet-bench-build-"); benchErr != nil {
			return
		}
		benchTree = makeBenchTree(b, filepath.Join(benchWork, "root"), benchTreeSize)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	for _, c := range []struct {
		name, compression string
		dpkgArgs          []string
	}{
		{"gzip-9", "gzip", []string{"-Zgzip", "-z9"}},
		{"zstd-3", "zstd:3", []string{"-Zzstd", "-z3"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			specPath := filepath.Join(benchWork, c.name+".yaml")
			if err := os.WriteFile(specPath, []byte(fmt.Sprintf(`name: bigapp
version: 1.0-1
maintainer: B <b@example.com>
description: benchmark tree
compression: %q
files:
  - {src: %s, dst: /opt/bigapp}
`, c.compression, benchTree)), 0o644); err != nil {
				b.Fatal(err)
			}
			spec := loadSpec(b, specPath)
			spec.ModTime = epoch
			benchPair(b, c.name, spec, c.dpkgArgs)
		})
	}
}

// benchPair runs b.N builds with each tool and reports them.
func benchPair(b *testing.B, name string, spec *pkgbuild.Spec, dpkgArgs []string) {
	root := filepath.Join(benchWork, "root")
	var wallPkg, wallDpkg, cpuPkg, cpuDpkg []time.Duration
	var sizePkg, sizeDpkg int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runPkg := func() {
			out := filepath.Join(benchWork, "pkgbuild.deb")
			cpu0 := selfCPU()
			start := time.Now()
			f, err := os.Create(out)
			if err != nil {
				b.Fatal(err)
			}
			if err := pkgbuild.Build(spec, f); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			wallPkg = append(wallPkg, time.Since(start))
			cpuPkg = append(cpuPkg, selfCPU()-cpu0)
			fi, _ := os.Stat(out)
			sizePkg = fi.Size()
		}
		runDpkg := func() {
			out := filepath.Join(benchWork, "dpkg-deb.deb")
			start := time.Now()
			// Both packages get the same members: pkgbuild (nfpm) writes
			// md5sums itself, for dpkg-deb it is written first, as
			// dh_md5sums does in a Debian build.
			script := `cd "$1" && find opt -type f -print0 | sort -z | xargs -0 md5sum > DEBIAN/md5sums && exec dpkg-deb --root-owner-group ` +
				strings.Join(dpkgArgs, " ") + ` --build "$1" "$2"`
			cmd := exec.Command("/bin/sh", "-ec", script, "sh", root, out)
			cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1767323045")
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("dpkg-deb: %v: %s", err, o)
			}
			wallDpkg = append(wallDpkg, time.Since(start))
			// The rusage of a waited-for process includes its reaped
			// children (md5sum; dpkg-deb compresses in a child process).
			cpuDpkg = append(cpuDpkg, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
			fi, _ := os.Stat(out)
			sizeDpkg = fi.Size()
		}
		// Alternate which goes first so neither always gets the warmer cache.
		if i%2 == 0 {
			runPkg()
			runDpkg()
		} else {
			runDpkg()
			runPkg()
		}
	}
	b.StopTimer()
	wp, wd, cp, cd := median(wallPkg), median(wallDpkg), median(cpuPkg), median(cpuDpkg)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(wp.Seconds(), "pkgbuild-s/op")
	b.ReportMetric(wd.Seconds(), "dpkg-deb-s/op")
	b.ReportMetric(cp.Seconds(), "pkgbuild-cpu-s/op")
	b.ReportMetric(cd.Seconds(), "dpkg-deb-cpu-s/op")
	b.ReportMetric(wp.Seconds()/wd.Seconds(), "wall-ratio")
	b.ReportMetric(cp.Seconds()/cd.Seconds(), "cpu-ratio")
	b.Logf("\n%-24s %10s %10s %10s\n%-24s %9.2fs %9.2fs %9.1fM\n%-24s %9.2fs %9.2fs %9.1fM\n%-24s %10.2f %10.2f\n(median of %d builds each; load average %s)",
		fmt.Sprintf("%s, %d MiB tree", name, benchTreeSize>>20), "wall", "cpu", "deb",
		"pkgbuild build", wp.Seconds(), cp.Seconds(), float64(sizePkg)/(1<<20),
		"dpkg-deb --build", wd.Seconds(), cd.Seconds(), float64(sizeDpkg)/(1<<20),
		"ratio", wp.Seconds()/wd.Seconds(), cp.Seconds()/cd.Seconds(), len(wallPkg), loadAvg())
}

// selfCPU returns this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

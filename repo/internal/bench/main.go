// Command bench measures publishing one .deb into a dist that already lists
// N package versions, with aptfleet (`pkgbuild publish`) and with Debian's
// aptly 1.5 (`aptly repo add` + `aptly publish update`), side by side in one
// run against the same S3-compatible server (gofakes3 on loopback, every
// request counted at the server). It prints a table: median wall time of
// each tool, S3 requests and bytes uploaded per publish, peak resident memory
// of the publishing process, and the ratio to aptly.
//
//	go run ./repo/internal/bench [-versions 1000,10000,50000] [-runs 5] [-work DIR]
//
// The .debs (50 names x up to 1,000 versions) are generated with nfpm, as pkgbuild
// builds packages, and kept in -work between runs.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const (
	names       = 50   // package names; versions per name = N / names
	maxVersions = 1000 // versions per name at most: 50,000 in a dist
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := runBench(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: "+err.Error())
		os.Exit(1)
	}
}

type options struct {
	sizes []int
	runs  int
	work  string
	tools map[string]bool
	bin   string
}

func parse(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	versions := fs.String("versions", "1000,10000,50000", "comma-separated dist sizes (package versions already listed); multiples of 50, at most 50000")
	runs := fs.Int("runs", 5, "measured publishes per tool and size (the median is reported)")
	work := fs.String("work", filepath.Join(os.TempDir(), "aptfleet-bench"), "work directory; generated .debs are kept there")
	tools := fs.String("tools", "aptfleet,aptly", "tools to measure")
	bin := fs.String("pkgbuild", "", "pkgbuild binary to measure (default: build ./cmd/pkgbuild)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{runs: *runs, work: *work, tools: map[string]bool{}, bin: *bin}
	for _, f := range strings.Split(*versions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n%names != 0 || n > names*maxVersions {
			return options{}, fmt.Errorf("-versions %q: want positive multiples of %d up to %d", *versions, names, names*maxVersions)
		}
		o.sizes = append(o.sizes, n)
	}
	for _, t := range strings.Split(*tools, ",") {
		if t != "aptfleet" && t != "aptly" {
			return options{}, fmt.Errorf("-tools %q: unknown tool %q (want aptfleet, aptly)", *tools, t)
		}
		o.tools[t] = true
	}
	if o.runs < 1 {
		return options{}, fmt.Errorf("-runs %d: want at least 1", o.runs)
	}
	return o, nil
}

// row is one tool at one size.
type row struct {
	tool    string
	size    int
	results []result
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	loadStart := loadavg()
	maxPer := slices.Max(o.sizes) / names
	// Measured packages: new versions above every seeded one.
	variants := 2 // aptly runs twice: defaults, and without Contents and bz2
	extraVersions := make([]int, 0)
	for v := maxVersions + 1; v <= maxVersions+o.runs*(variants+1); v++ {
		extraVersions = append(extraVersions, v)
	}
	logf("generating %d .debs in %s", names*(maxPer+len(extraVersions)), o.work)
	start := time.Now()
	debDir := filepath.Join(o.work, "debs")
	base, err := generate(ctx, debDir, seq(0, names), seq(1, maxPer+1))
	if err != nil {
		return err
	}
	extra, err := generate(ctx, debDir, []int{0}, extraVersions)
	if err != nil {
		return err
	}
	logf("generated in %.1fs", time.Since(start).Seconds())

	k, err := makeKeys(filepath.Join(o.work, "keys"))
	if err != nil {
		return err
	}
	srv, err := newServer("aptfleet", "aptly")
	if err != nil {
		return err
	}
	defer srv.Close()

	bin := o.bin
	if o.tools["aptfleet"] && bin == "" {
		if bin, err = buildPkgbuild(ctx, o.work); err != nil {
			return fmt.Errorf("build pkgbuild: %w", err)
		}
	}

	var rows []row
	for _, n := range o.sizes {
		seedSet := seedDebs(base, n/names)
		prefix := fmt.Sprintf("n%d", n)
		next := 0
		type tool struct {
			name    string
			publish func(context.Context, pkg) (result, error)
		}
		var tools []tool
		var check func(context.Context, int, []pkg) error
		var published []pkg
		if o.tools["aptfleet"] {
			a, err := newAptfleet(bin, o.work, srv.URL, "aptfleet", prefix, k)
			if err != nil {
				return err
			}
			logf("aptfleet: seeding %d versions", len(seedSet))
			t := time.Now()
			if err := a.seed(ctx, seedSet); err != nil {
				return fmt.Errorf("aptfleet seed: %w", err)
			}
			logf("aptfleet: seeded in %.1fs", time.Since(t).Seconds())
			tools = append(tools, tool{"aptfleet", a.publish})
			check = a.check
		}
		if o.tools["aptly"] {
			for _, lean := range []bool{false, true} {
				a, err := newAptly(o.work, srv.URL, "aptly", prefix+map[bool]string{false: "-defaults", true: "-lean"}[lean], k)
				if err != nil {
					return err
				}
				name := "aptly 1.5"
				if lean {
					a.flags = []string{"-skip-contents", "-skip-bz2"}
					name = "aptly 1.5 -skip-contents -skip-bz2"
				}
				logf("%s: seeding %d versions", name, len(seedSet))
				t := time.Now()
				if err := a.seed(ctx, seedSet); err != nil {
					return fmt.Errorf("aptly seed: %w", err)
				}
				logf("%s: seeded in %.1fs", name, time.Since(t).Seconds())
				tools = append(tools, tool{name, a.publish})
			}
		}
		byTool := map[string]*row{}
		for _, t := range tools {
			rows = append(rows, row{tool: t.name, size: n})
		}
		for i := range rows {
			if rows[i].size == n {
				byTool[rows[i].tool] = &rows[i]
			}
		}
		// Interleave the tools run by run so drift hits them alike.
		for r := 0; r < o.runs; r++ {
			for _, t := range tools {
				p := extra[next%len(extra)]
				next++
				srv.reset()
				res, err := t.publish(ctx, p)
				if err != nil {
					return fmt.Errorf("%s publish at %d: %w", t.name, n, err)
				}
				res.counts = srv.take()
				logf("%-34s n=%-6d run %d: %.3fs (CPU %.2fs) %d requests (%s) %s uploaded, %s peak", t.name, n, r+1,
					res.Wall.Seconds(), res.CPU.Seconds(), res.Requests, res.kinds(), size(res.Uploaded), size(res.MaxRSS))
				byTool[t.name].results = append(byTool[t.name].results, res)
				if t.name == "aptfleet" {
					published = append(published, p)
				}
			}
		}
		if check != nil {
			if err := check(ctx, n+len(published), published); err != nil {
				return fmt.Errorf("aptfleet's repository after the runs at %d: %w", n, err)
			}
			logf("aptfleet: verify passed; list shows all %d versions", n+len(published))
		}
	}
	printTable(stdout, rows, o.runs, loadStart, loadavg())
	return nil
}

// loadavg returns the 1-minute load average, "" where unknown.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// seedDebs picks the first per versions of every name.
func seedDebs(all []pkg, per int) []pkg {
	var out []pkg
	for _, p := range all {
		v, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p.Version, "1.0."), "-1"))
		if v <= per {
			out = append(out, p)
		}
	}
	return out
}

func median[T any](xs []T, key func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = key(x)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func printTable(w io.Writer, rows []row, runs int, loadStart, loadEnd string) {
	fmt.Fprintf(w, "\npublish one .deb into a dist of N versions, gofakes3 on loopback, median of %d runs (%d CPUs, load average %s at start, %s at end)\n\n",
		runs, runtime.NumCPU(), loadStart, loadEnd)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\tN\tmedian s\tmin s\tmax s\tCPU s\tS3 requests\tuploaded\tpeak RSS\tvs aptly\t")
	ref := map[int]float64{}
	for _, r := range rows {
		if strings.HasPrefix(r.tool, "aptly") {
			m := median(r.results, func(x result) float64 { return x.Wall.Seconds() })
			if old, ok := ref[r.size]; !ok || m < old {
				ref[r.size] = m // the faster aptly variant
			}
		}
	}
	for _, r := range rows {
		wall := func(x result) float64 { return x.Wall.Seconds() }
		m := median(r.results, wall)
		byWall := func(a, b result) int { return cmp.Compare(a.Wall, b.Wall) }
		lo := slices.MinFunc(r.results, byWall).Wall.Seconds()
		hi := slices.MaxFunc(r.results, byWall).Wall.Seconds()
		cpu := median(r.results, func(x result) float64 { return x.CPU.Seconds() })
		req := median(r.results, func(x result) float64 { return float64(x.Requests) })
		up := median(r.results, func(x result) float64 { return float64(x.Uploaded) })
		rss := slices.MaxFunc(r.results, func(a, b result) int { return cmp.Compare(a.MaxRSS, b.MaxRSS) }).MaxRSS
		ratio := ""
		if a := ref[r.size]; a > 0 && !strings.HasPrefix(r.tool, "aptly") {
			ratio = fmt.Sprintf("%.1fx faster", a/m)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%s\t%s\t%s\t\n", r.tool, r.size, m, lo, hi, cpu,
			fmt.Sprintf("%g (%s)", req, r.results[len(r.results)/2].kinds()), size(int64(up)), size(rss), ratio)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nCPU: median user+system time of the publishing process(es); S3 requests: median count, with the kinds of one run;")
	fmt.Fprintln(w, "uploaded: request body bytes (median); peak RSS: largest of the runs (aptly: of repo add and publish update).")
}

func size(b int64) string {
	switch {
	case b >= 10<<20:
		return fmt.Sprintf("%.0f MB", float64(b)/(1<<20))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

func itoa(n int) string { return strconv.Itoa(n) }

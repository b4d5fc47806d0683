package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/internal/tail"
)

// result is one measured publish.
type result struct {
	Wall   time.Duration
	CPU    time.Duration // user + system time of the processes involved
	MaxRSS int64         // bytes, the largest of the processes involved
	counts
}

// timeBin is GNU time. It stands between this process and the measured one
// because a child's ru_maxrss starts from the memory of the process that
// forked it (the kernel carries the old address space's high-water mark
// across exec): measured directly, every tool would be charged for this
// process and its in-memory S3 server. GNU time's own footprint is about
// 2 MB.
const timeBin = "/usr/bin/time"

// run runs a command in dir with env added to the environment and returns
// its wall time and peak resident memory.
func run(ctx context.Context, dir string, env []string, args ...string) (result, error) {
	rssFile := filepath.Join(dir, ".maxrss")
	cmd := exec.CommandContext(ctx, timeBin, append([]string{"-f", "%M %U %S", "-o", rssFile, "--"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return result{}, fmt.Errorf("%s %s: %v: %s", args[0], strings.Join(args[1:min(len(args), 4)], " "), err, tail.Lines(out.Bytes(), 5))
	}
	b, err := os.ReadFile(rssFile)
	if err != nil {
		return result{}, err
	}
	var kb int64
	var user, sys float64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d %f %f", &kb, &user, &sys); err != nil {
		return result{}, fmt.Errorf("%s: %q: %w", timeBin, b, err)
	}
	cpu := time.Duration((user + sys) * float64(time.Second))
	return result{Wall: wall, CPU: cpu, MaxRSS: kb * 1024}, nil
}

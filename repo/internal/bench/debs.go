package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// pkg is one generated package.
type pkg struct {
	Name, Version, Path string
	upstream            string // Version without the Debian revision
}

// pkgName and pkgVersion name the n-th package and its v-th version (v from
// 1). Versions sort as dpkg sorts them: 1.0.1-1 < 1.0.2-1 < ... < 1.0.1000-1.
func pkgName(n int) string    { return fmt.Sprintf("bench-app-%02d", n) }
func pkgVersion(v int) string { return upstream(v) + "-1" }
func upstream(v int) string   { return fmt.Sprintf("1.0.%d", v) }

// generate builds (or finds, from an earlier run) the .deb of every
// (name, version) in names x versions under dir, with nfpm as pkgbuild does.
func generate(ctx context.Context, dir string, names, versions []int) ([]pkg, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	payload := filepath.Join(dir, "payload.txt")
	if err := os.WriteFile(payload, bytes.Repeat([]byte("aptfleet publish benchmark payload\n"), 16), 0o644); err != nil {
		return nil, err
	}
	var todo []pkg
	for _, n := range names {
		for _, v := range versions {
			p := pkg{Name: pkgName(n), Version: pkgVersion(v), upstream: upstream(v)}
			p.Path = filepath.Join(dir, fmt.Sprintf("%s_%s_amd64.deb", p.Name, p.Version))
			todo = append(todo, p)
		}
	}
	work := make(chan pkg)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if err := buildDeb(p, payload); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, p := range todo {
		if _, err := os.Stat(p.Path); err == nil {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		work <- p
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return todo, ctx.Err()
}

func buildDeb(p pkg, payload string) error {
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:        p.Name,
		Arch:        "amd64",
		Platform:    "linux",
		Version:     p.upstream,
		Release:     "1",
		Section:     "web",
		Priority:    "optional",
		Maintainer:  "Bench <bench@example.com>",
		Description: "Benchmark package " + p.Name + "\nGenerated for the publish benchmark.",
		Homepage:    "https://example.com/" + p.Name,
		MTime:       time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Overridables: nfpm.Overridables{
			Depends: []string{"libc6 (>= 2.36)", "adduser"},
			Contents: files.Contents{{
				Source:      payload,
				Destination: "/usr/share/" + p.Name + "/VERSION",
			}},
		},
	})
	info.VersionSchema = "none"
	if got := info.Version + "-" + info.Release; got != p.Version {
		return fmt.Errorf("build %s: version %s, want %s", p.Name, got, p.Version)
	}
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return fmt.Errorf("build %s %s: %w", p.Name, p.Version, err)
	}
	tmp := p.Path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p.Path)
}

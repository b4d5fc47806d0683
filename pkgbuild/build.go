package pkgbuild

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Build writes the .deb described by s to w. s must have a version. Build
// writes its generated files (units, scripts, docs) to a temporary directory
// it removes before returning.
func Build(s *Spec, w io.Writer) error {
	if s.Version == "" {
		return s.bad("version", "missing (set it in the spec, or pass --version)")
	}
	tmp, err := os.MkdirTemp("", "pkgbuild-")
	if err != nil {
		return fmt.Errorf("build %s: %w", s.Name, err)
	}
	defer os.RemoveAll(tmp)
	info, err := s.Info(tmp)
	if err != nil {
		return err
	}
	if err := deb.Default.Package(info, w); err != nil {
		return fmt.Errorf("build %s: %w", s.Name, err)
	}
	return nil
}

// Info assembles the nfpm description of the package, writing the generated
// files it refers to into dir.
func (s *Spec) Info(dir string) (*nfpm.Info, error) {
	var contents files.Contents
	add := func(c *files.Content) { contents = append(contents, c) }
	gen := func(name string, data []byte, mode os.FileMode) (string, error) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		return p, os.WriteFile(p, data, mode)
	}

	for _, list := range []struct {
		files  []File
		config bool
	}{{s.Files, false}, {s.ConfigFiles, true}} {
		for _, f := range list.files {
			src := s.path(f.Src)
			fi, err := os.Stat(src)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.file, err)
			}
			typ := files.TypeFile
			if list.config {
				typ = files.TypeConfig
			}
			if !fi.IsDir() {
				add(&files.Content{Source: src, Destination: f.Dst, Type: typ,
					FileInfo: &files.ContentFileInfo{Mode: os.FileMode(f.Mode), MTime: s.ModTime}})
				continue
			}
			tree, err := s.expandTree(src, f.Dst, typ, os.FileMode(f.Mode))
			if err != nil {
				return nil, err
			}
			contents = append(contents, tree...)
		}
	}

	var generated []genFile
	for _, u := range s.Units() {
		generated = append(generated, genFile{UnitDir + "/" + u.Name, u.Content, files.TypeFile})
	}
	if len(s.procs) > 0 || len(s.Environment) > 0 {
		generated = append(generated, genFile{s.EnvironmentFile(), s.EnvironmentFileContent(), files.TypeConfig})
	}
	docDir := "/usr/share/doc/" + s.Name
	if s.Copyright == "" {
		generated = append(generated, genFile{docDir + "/copyright", s.copyrightFile(), files.TypeFile})
	} else {
		add(&files.Content{Source: s.path(s.Copyright), Destination: docDir + "/copyright",
			FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: s.ModTime}})
	}
	if len(s.LintianOverrides) > 0 {
		var b strings.Builder
		for _, o := range s.LintianOverrides {
			fmt.Fprintf(&b, "%s: %s\n", s.Name, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(o), s.Name+":")))
		}
		generated = append(generated, genFile{"/usr/share/lintian/overrides/" + s.Name, []byte(b.String()), files.TypeFile})
	}
	changelog, err := s.changelog()
	if err != nil {
		return nil, err
	}
	generated = append(generated, genFile{docDir + "/" + s.changelogName(), changelog, files.TypeFile})

	for _, g := range generated {
		p, err := gen(filepath.Join("files", g.dst), g.data, 0o644)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", s.Name, err)
		}
		add(&files.Content{Source: p, Destination: g.dst, Type: g.typ,
			FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: s.ModTime}})
	}

	scripts, err := s.MaintainerScripts()
	if err != nil {
		return nil, err
	}
	var nfpmScripts nfpm.Scripts
	for _, sc := range []struct {
		name, body string
		dst        *string
	}{
		{"preinst", scripts.PreInst, &nfpmScripts.PreInstall},
		{"postinst", scripts.PostInst, &nfpmScripts.PostInstall},
		{"prerm", scripts.PreRm, &nfpmScripts.PreRemove},
		{"postrm", scripts.PostRm, &nfpmScripts.PostRemove},
	} {
		if sc.body == "" {
			continue
		}
		// The hooks passed sh -n alone; the script that wraps them must too.
		if line, msg, err := shellSyntax(sc.body); err != nil || msg != "" {
			if err != nil {
				return nil, fmt.Errorf("build %s: %s: %w", s.Name, sc.name, err)
			}
			return nil, fmt.Errorf("build %s: the generated %s does not parse (sh -n: line %d: %s)", s.Name, sc.name, line, msg)
		}
		p, err := gen(filepath.Join("scripts", sc.name), []byte(sc.body), 0o755)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", s.Name, err)
		}
		*sc.dst = p
	}

	compression := s.Compression
	if compression == "gzip" {
		compression = "gzip:9"
	}
	info := &nfpm.Info{
		Name:          s.Name,
		Arch:          s.Arch,
		Platform:      "linux",
		Version:       s.Version,
		VersionSchema: "none",
		Section:       s.Section,
		Priority:      s.Priority,
		Maintainer:    s.Maintainer,
		Description:   strings.TrimSpace(s.Description),
		Homepage:      s.Homepage,
		MTime:         s.ModTime,
		Overridables: nfpm.Overridables{
			Depends:    trimAll(s.Depends),
			Recommends: trimAll(s.Recommends),
			Conflicts:  trimAll(s.Conflicts),
			Replaces:   trimAll(s.Replaces),
			Provides:   trimAll(s.Provides),
			Contents:   contents,
			// Modes come from the build tree without group/other write, so
			// a checkout's umask does not change the package.
			Umask:   0o022,
			Scripts: nfpmScripts,
			Deb:     nfpm.Deb{Compression: compression},
		},
	}
	return info, nil
}

// expandTree lists the tree at src as package contents under dst, in walk
// (lexical) order, stamped with s.ModTime so the build tree's file times do
// not leak into the package. mode, when not zero, applies to regular files.
func (s *Spec) expandTree(src, dst, typ string, mode os.FileMode) (files.Contents, error) {
	var out files.Contents
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		fi := &files.ContentFileInfo{MTime: s.ModTime}
		c := &files.Content{Source: p, Destination: target, Type: typ, FileInfo: fi}
		switch {
		case d.IsDir():
			c.Type, c.Source, fi.Mode = files.TypeDir, "", info.Mode().Perm()&^0o022
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			c.Type, c.Source = files.TypeSymlink, link
		case info.Mode().IsRegular():
			fi.Mode = mode
		default:
			return fmt.Errorf("%s: not a regular file, directory or symlink", p)
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.file, err)
	}
	return out, nil
}

// generatedPaths returns the package paths pkgbuild writes itself.
func (s *Spec) generatedPaths() []string {
	docDir := "/usr/share/doc/" + s.Name
	paths := []string{s.EnvironmentFile(), docDir + "/changelog.Debian.gz", docDir + "/changelog.gz",
		"/usr/share/lintian/overrides/" + s.Name}
	if s.Copyright == "" {
		paths = append(paths, docDir+"/copyright")
	}
	for _, u := range s.Units() {
		paths = append(paths, UnitDir+"/"+u.Name)
	}
	return paths
}

// genFile is a file pkgbuild generates into the package.
type genFile struct {
	dst  string
	data []byte
	typ  string // files.TypeFile or files.TypeConfig
}

func trimAll(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// copyrightFile is a machine-readable copyright file naming the maintainer
// and the license.
func (s *Spec) copyrightFile() []byte {
	var b strings.Builder
	b.WriteString("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
	fmt.Fprintf(&b, "Upstream-Name: %s\n", s.Name)
	fmt.Fprintf(&b, "Upstream-Contact: %s\n", s.Maintainer)
	if s.Homepage != "" {
		fmt.Fprintf(&b, "Source: %s\n", s.Homepage)
	}
	fmt.Fprintf(&b, "\nFiles: *\nCopyright: %d %s\nLicense: %s\n", s.buildTime().Year(), s.Maintainer, s.License)
	fmt.Fprintf(&b, "\nLicense: %s\n See the license of the %s project", s.License, s.Name)
	if s.Homepage != "" {
		fmt.Fprintf(&b, " at %s", s.Homepage)
	}
	b.WriteString(".\n")
	return []byte(b.String())
}

// changelogName is changelog.Debian.gz for a version with a Debian revision,
// changelog.gz for a native version, as Debian policy asks.
func (s *Spec) changelogName() string {
	if strings.Contains(s.Version, "-") {
		return "changelog.Debian.gz"
	}
	return "changelog.gz"
}

// changelog is a one-entry Debian changelog for this build, gzipped
// reproducibly (no name, the spec's time).
func (s *Spec) changelog() ([]byte, error) {
	t := s.buildTime()
	text := fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n",
		s.Name, s.Version, s.Version, s.Maintainer, t.UTC().Format(time.RFC1123Z))
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	zw.ModTime = t.UTC()
	if _, err := zw.Write([]byte(text)); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildTime is ModTime, or now when it is zero.
func (s *Spec) buildTime() time.Time {
	if s.ModTime.IsZero() {
		return time.Now().UTC()
	}
	return s.ModTime.UTC()
}

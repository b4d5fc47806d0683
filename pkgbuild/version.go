package pkgbuild

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aptfleet/aptfleet/internal/debian"
)

var describePattern = regexp.MustCompile(`^v?([0-9][A-Za-z0-9.+~_-]*?)(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)
var hashPattern = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)

// VersionFromDescribe turns `git describe --tags --long --always --dirty`
// output into a Debian version. A tag "v1.4.0" with 3 commits on top of it at
// g1a2b3c gives "1.4.0+3.g1a2b3c" (and "1.4.0" with none); a pre-release tag
// "v1.4.0-rc1" gives "1.4.0~rc1" so it sorts before 1.4.0; a dirty tree adds
// "+dirty"; output without a tag (just a hash) gives "0.0.0+<commits>.g<hash>".
// commits is the number of commits (git rev-list --count HEAD), used only
// without a tag. build, when not empty, becomes the Debian revision
// (BUILD_NUMBER); otherwise the revision is "1".
func VersionFromDescribe(describe string, commits int, build string) (string, error) {
	describe = strings.TrimSpace(describe)
	var v string
	if m := hashPattern.FindStringSubmatch(describe); m != nil && !strings.Contains(describe, ".") {
		v = fmt.Sprintf("0.0.0+%d.g%s", commits, m[1])
		if m[2] != "" {
			v += ".dirty"
		}
	} else if m := describePattern.FindStringSubmatch(describe); m != nil {
		upstream := m[1]
		// Pre-release markers sort before the release in Debian with '~'.
		upstream = strings.ReplaceAll(upstream, "_", ".")
		if i := strings.IndexByte(upstream, '-'); i >= 0 {
			upstream = upstream[:i] + "~" + strings.ReplaceAll(upstream[i+1:], "-", ".")
		}
		v = upstream
		var local []string
		if m[2] != "" && m[2] != "0" {
			local = append(local, m[2], "g"+m[3])
		}
		if m[4] != "" {
			local = append(local, "dirty")
		}
		if len(local) > 0 {
			v += "+" + strings.Join(local, ".")
		}
	} else {
		return "", fmt.Errorf("git describe output %q: not a version tag", describe)
	}
	rev := "1"
	if build = strings.TrimSpace(build); build != "" {
		if !debian.ValidRevision(build) {
			return "", fmt.Errorf("BUILD_NUMBER %q: not usable as a Debian revision (letters, digits, '+', '.', '~')", build)
		}
		rev = build
	}
	v += "-" + rev
	if err := debian.CheckVersion(v); err != nil {
		return "", fmt.Errorf("git describe output %q: %w", describe, err)
	}
	return v, nil
}

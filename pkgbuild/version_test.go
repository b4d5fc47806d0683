package pkgbuild_test

import (
	"os/exec"
	"testing"

	"github.com/aptfleet/aptfleet/pkgbuild"
)

func TestVersionFromDescribe(t *testing.T) {
	tests := []struct {
		name     string
		describe string
		commits  int
		build    string
		want     string
		wantErr  bool
	}{
		{"on a tag", "v1.4.0-0-g1a2b3c4", 9, "", "1.4.0-1", false},
		{"on a tag with a build number", "v1.4.0-0-g1a2b3c4", 9, "42", "1.4.0-42", false},
		{"commits after a tag", "v1.4.0-3-g1a2b3c4", 9, "", "1.4.0+3.g1a2b3c4-1", false},
		{"dirty tree", "v1.4.0-0-g1a2b3c4-dirty", 9, "7", "1.4.0+dirty-7", false},
		{"dirty with commits", "v1.4.0-3-g1a2b3c4-dirty", 9, "", "1.4.0+3.g1a2b3c4.dirty-1", false},
		{"tag without v", "2.0-1-gabcdef0", 9, "", "2.0+1.gabcdef0-1", false},
		{"pre-release tag", "v1.4.0-rc1-0-g1a2b3c4", 9, "", "1.4.0~rc1-1", false},
		{"pre-release with commits", "v1.4.0-rc.1-2-g1a2b3c4", 9, "", "1.4.0~rc.1+2.g1a2b3c4-1", false},
		{"no tag", "1a2b3c4", 17, "", "0.0.0+17.g1a2b3c4-1", false},
		{"no tag, dirty", "1a2b3c4-dirty", 17, "3", "0.0.0+17.g1a2b3c4.dirty-3", false},
		{"bad build number", "v1.4.0-0-g1a2b3c4", 9, "4 2", "", true},
		{"not a version tag", "release-x", 9, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pkgbuild.VersionFromDescribe(tt.describe, tt.commits, tt.build)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// Versions derived along a history must sort as the history does.
	history := []string{"aaaaaaa", "v1.0.0-rc1-0-gbbbbbbb", "v1.0.0-rc1-2-gccccccc", "v1.0.0-0-gddddddd", "v1.0.0-1-geeeeeee", "v1.0.1-0-gfffffff"}
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		return
	}
	var prev string
	for _, d := range history {
		v, err := pkgbuild.VersionFromDescribe(d, 3, "")
		if err != nil {
			t.Fatal(err)
		}
		if prev != "" {
			if err := exec.Command(dpkg, "--compare-versions", prev, "lt", v).Run(); err != nil {
				t.Errorf("%s does not sort before %s", prev, v)
			}
		}
		prev = v
	}
}

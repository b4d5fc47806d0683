package pkgbuild_test

import (
	"testing"

	"github.com/aptfleet/aptfleet/internal/docref"
	"github.com/aptfleet/aptfleet/pkgbuild"
)

// TestSpecReference holds docs/configuration.md's package.yaml table to
// pkgbuild.Spec: every field has a row and every row names a field.
func TestSpecReference(t *testing.T) {
	keys, err := docref.Keys("../docs/configuration.md", "package.yaml")
	if err != nil {
		t.Fatal(err)
	}
	missing, extra := docref.Diff(docref.Fields(pkgbuild.Spec{}), keys)
	for _, k := range missing {
		t.Errorf("package.yaml field %s has no row in docs/configuration.md", k)
	}
	for _, k := range extra {
		t.Errorf("docs/configuration.md names %s, which pkgbuild.Spec does not have", k)
	}
}

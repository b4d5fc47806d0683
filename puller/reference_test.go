package puller_test

import (
	"testing"

	"github.com/aptfleet/aptfleet/internal/docref"
	"github.com/aptfleet/aptfleet/puller"
)

// TestConfigReference holds docs/configuration.md's puller.yaml table to
// puller.Config: every field has a row and every row names a field.
func TestConfigReference(t *testing.T) {
	keys, err := docref.Keys("../docs/configuration.md", "puller.yaml")
	if err != nil {
		t.Fatal(err)
	}
	missing, extra := docref.Diff(docref.Fields(puller.Config{}), keys)
	for _, k := range missing {
		t.Errorf("puller.yaml key %s has no row in docs/configuration.md", k)
	}
	for _, k := range extra {
		t.Errorf("docs/configuration.md names %s, which puller.Config does not have", k)
	}
}

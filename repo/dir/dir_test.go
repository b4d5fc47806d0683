package dir_test

import (
	"testing"

	"github.com/aptfleet/aptfleet/repo"
	"github.com/aptfleet/aptfleet/repo/dir"
	"github.com/aptfleet/aptfleet/repo/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) repo.Store {
		s, err := dir.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

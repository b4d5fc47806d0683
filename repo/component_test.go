package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aptfleet/aptfleet/repo"
)

// TestReaderComponents: a reader limited to the components an apt source
// lists (as the agent's is, from apps[].component) sees only their
// packages; without a limit it reads every component. A host's apt with
// "Components: main" cannot install a version published to another
// component, so the agent must not pick it.
func TestReaderComponents(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.repo.Publish(ctx, "production", "main", []string{f.deb("hello", "1.0-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.Publish(ctx, "production", "contrib", []string{f.deb("hello", "2.0-1")}); err != nil {
		t.Fatal(err)
	}
	versions := func(components ...string) string {
		r := &repo.Reader{Store: f.repo.Store, Keyring: f.key.Signer.Keyring(), Components: components}
		pkgs, err := r.Index(ctx, "production")
		if err != nil {
			t.Fatal(err)
		}
		var vs []string
		for _, p := range pkgs {
			vs = append(vs, p.Component+":"+p.Version)
		}
		return strings.Join(vs, " ")
	}
	for _, tt := range []struct {
		components []string
		want       string
	}{
		{nil, "contrib:2.0-1 main:1.0-1"},
		{[]string{"main"}, "main:1.0-1"},
		{[]string{"contrib"}, "contrib:2.0-1"},
		{[]string{"non-free"}, ""},
	} {
		if got := versions(tt.components...); got != tt.want {
			t.Errorf("components %v: %q, want %q", tt.components, got, tt.want)
		}
	}
}

// TestRollbackRefusesSeveralComponents: rollback of an app in two
// components of a dist is refused with one line naming them, nothing
// changed; yank still takes a version out.
func TestRollbackRefusesSeveralComponents(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.repo.Publish(ctx, "production", "main", []string{f.deb("hello", "1.0-1"), f.deb("hello", "1.1-1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.Publish(ctx, "production", "contrib", []string{f.deb("hello", "2.0-1")}); err != nil {
		t.Fatal(err)
	}
	before := treeHash(t, f.root)
	_, err := f.repo.Rollback(ctx, "production", "hello", "")
	if !errors.Is(err, repo.ErrSeveralComponents) || !strings.Contains(err.Error(), "components contrib, main of production") {
		t.Fatalf("Rollback: %v, want ErrSeveralComponents naming contrib and main", err)
	}
	if treeHash(t, f.root) != before {
		t.Error("the refused rollback changed the repository")
	}
	if _, err := f.repo.Yank(ctx, "production", []repo.Ref{{Name: "hello", Version: "2.0-1"}}); err != nil {
		t.Fatalf("yank: %v", err)
	}
	res, err := f.repo.Rollback(ctx, "production", "hello", "")
	if err != nil || res.Target != "1.0-1" {
		t.Errorf("rollback in one component: %+v, %v", res, err)
	}
}

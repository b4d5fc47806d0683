package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/redis/go-redis/v9"
	"github.com/zclconf/go-cty/cty"
)

// RolesFile is the Redis roles file, relative to the repository's root: the
// one source of each role's ACL for the locks Terraform module, the docs and
// the tests.
const RolesFile = "terraform/modules/locks/roles.json.tftpl"

// RedisRole is one role of the roles file.
type RedisRole struct {
	UserName     string `json:"user_name"`
	About        string `json:"about"`
	AccessString string `json:"access_string"`
}

// RedisRoles renders the roles file for key prefix prefix with the template
// engine Terraform's templatefile uses, and returns the roles by name.
func RedisRoles(t testing.TB, prefix string) map[string]RedisRole {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, RolesFile))
	if err != nil {
		t.Fatal(err)
	}
	expr, diags := hclsyntax.ParseTemplate(src, RolesFile, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		t.Fatalf("%s: %s", RolesFile, diags)
	}
	val, diags := expr.Value(&hcl.EvalContext{Variables: map[string]cty.Value{"prefix": cty.StringVal(prefix)}})
	if diags.HasErrors() {
		t.Fatalf("%s: %s", RolesFile, diags)
	}
	var file struct {
		Rule  string               `json:"rule"`
		Roles map[string]RedisRole `json:"roles"`
	}
	if err := json.Unmarshal([]byte(val.AsString()), &file); err != nil {
		t.Fatalf("%s: %v", RolesFile, err)
	}
	if len(file.Roles) == 0 {
		t.Fatalf("%s: no roles", RolesFile)
	}
	return file.Roles
}

// repoRoot is the nearest directory above the working directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = up
	}
}

// AddUsers creates an ACL user on r for each role, with the role's access
// string and a password of its own, and returns the passwords by role name.
// The default user keeps its access, for the test's own setup and checks.
func (r *Redis) AddUsers(t testing.TB, roles map[string]RedisRole) map[string]string {
	t.Helper()
	admin := r.Admin(t)
	pw := map[string]string{}
	for name, role := range roles {
		pw[name] = "pw-" + name + "-" + strings.Repeat("x", 16)
		args := []any{"ACL", "SETUSER", role.UserName, "reset", ">" + pw[name]}
		for _, f := range strings.Fields(role.AccessString) {
			args = append(args, f)
		}
		if err := admin.Do(context.Background(), args...).Err(); err != nil {
			t.Fatalf("role %s: ACL SETUSER %s: %v", name, role.AccessString, err)
		}
	}
	return pw
}

// Admin returns a client of r as its default user, closed in t.Cleanup.
func (r *Redis) Admin(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.Password, TLSConfig: r.TLSConfig})
	t.Cleanup(func() { c.Close() })
	return c
}

// Denied returns the ACL LOG's entries (what Redis refused, to whom, and
// why), one line each, skipping go-redis's CLIENT SETINFO at connect, which
// it sends on every connection and ignores when refused.
func (r *Redis) Denied(t testing.TB) []string {
	t.Helper()
	res, err := r.Admin(t).Do(context.Background(), "ACL", "LOG", "128").Slice()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range res {
		m := map[string]any{}
		switch e := e.(type) {
		case map[any]any:
			for k, v := range e {
				m[fmt.Sprint(k)] = v
			}
		case []any:
			for i := 0; i+1 < len(e); i += 2 {
				m[fmt.Sprint(e[i])] = e[i+1]
			}
		}
		if m["object"] == "client|setinfo" {
			continue
		}
		out = append(out, fmt.Sprintf("%v: %v %v (%v)", m["username"], m["reason"], m["object"], m["context"]))
	}
	return out
}

// ResetDenied empties the ACL LOG.
func (r *Redis) ResetDenied(t testing.TB) {
	t.Helper()
	if err := r.Admin(t).Do(context.Background(), "ACL", "LOG", "RESET").Err(); err != nil {
		t.Fatal(err)
	}
}

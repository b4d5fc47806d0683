package userdata_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/userdata"
)

// TestTerraformAgrees renders the template with the terraform binary's own
// templatefile (a configuration without providers, so `terraform apply` works
// offline) and with Render, for every shape of configuration, and compares
// the bytes. terraform cannot be built with `go install` (its go.mod has
// replace directives), so this test needs it on PATH; the fleet module's
// call is also evaluated with the HCL engine in the terraform package's tests.
func TestTerraformAgrees(t *testing.T) {
	testenv.NeedTools(t, "terraform")
	tmpl, err := filepath.Abs(userdata.TemplateName)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  func(*testing.T) userdata.Config
	}{
		{"minimal", minimal},
		{"full", full},
		{"lab", lab},
		{"haproxy", haproxy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(t)
			want, err := userdata.Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			vars, err := cfg.Vars()
			if err != nil {
				t.Fatal(err)
			}
			obj := cty.ObjectVal(map[string]cty.Value{"vars": cty.ObjectVal(vars)})
			tfvars, err := ctyjson.Marshal(obj, obj.Type())
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			main := `variable "vars" {
  type = any
}

output "rendered" {
  value = templatefile(` + "\"" + tmpl + "\"" + `, var.vars)
}
`
			write(t, filepath.Join(dir, "main.tf"), []byte(main))
			write(t, filepath.Join(dir, "vars.tfvars.json"), tfvars)
			terraform(t, dir, "apply", "-auto-approve", "-input=false", "-no-color", "-var-file=vars.tfvars.json")
			got := terraform(t, dir, "output", "-raw", "rendered")
			if !bytes.Equal(got, want) {
				diffPath := filepath.Join(dir, "terraform.sh")
				write(t, diffPath, got)
				t.Errorf("terraform's templatefile and Render differ (terraform's output kept in %s)", diffPath)
			}
		})
	}
}

func terraform(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("terraform", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1",
		"TF_CLI_CONFIG_FILE=/dev/null", "TF_DATA_DIR="+filepath.Join(dir, ".terraform"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("terraform %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

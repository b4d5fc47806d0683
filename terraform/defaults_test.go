package terraform_test

import (
	"net"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/userdata"
)

// TestVariableDefaults holds the modules' literals to the Go defaults. A
// default is written once, in a config struct's DefaultConfig(); where
// Terraform needs it as a literal (a variable's default, a port) this test
// keeps the two equal.
func TestVariableDefaults(t *testing.T) {
	ud := userdata.DefaultConfig()
	tests := []struct {
		module, variable string
		want             cty.Value
	}{
		{"fleet", "fraction", cty.NumberFloatVal(ud.Fraction)},
		{"fleet", "schedule", cty.StringVal(ud.Schedule)},
		{"fleet", "app_port", cty.NumberIntVal(int64(ud.AppPort))},
	}
	for _, tt := range tests {
		t.Run(tt.module+"/"+tt.variable, func(t *testing.T) {
			c := load(t, "modules/"+tt.module)
			got := literal(t, attr(t, c.block(t, "variable", tt.variable), "default"))
			if !sameValue(got, tt.want) {
				t.Errorf("variable %q in modules/%s defaults to %s; the Go default is %s", tt.variable, tt.module, got.GoString(), tt.want.GoString())
			}
		})
	}

	// The fleet's security group opens the Serf port the puller binds by
	// default, and the user-data falls back to the same address.
	bind := puller.DefaultConfig().Serf.Bind
	_, port, err := net.SplitHostPort(bind)
	if err != nil {
		t.Fatal(err)
	}
	r := load(t, "modules/fleet").block(t, "resource", "aws_vpc_security_group_ingress_rule", "serf")
	for _, name := range []string{"from_port", "to_port"} {
		if got := literal(t, attr(t, r, name)); !sameValue(got, cty.StringVal(port)) {
			t.Errorf("the Serf rule's %s is %s; the puller binds %s by default", name, got.GoString(), bind)
		}
	}
	if want := "SERF_BIND=$${SERF_BIND:-" + bind + "}"; !strings.Contains(userdata.Template, want) {
		t.Errorf("the user-data template does not fall back to the puller's default Serf address (%s)", want)
	}
}

// sameValue compares a Terraform literal with a Go default the way Terraform
// would convert between them: numbers by value, anything with its string form.
func sameValue(got, want cty.Value) bool {
	if got.Type() == cty.Number && want.Type() == cty.Number {
		g, _ := got.AsBigFloat().Float64()
		w, _ := want.AsBigFloat().Float64()
		return g == w
	}
	if got.Type() == cty.Number || want.Type() == cty.Number {
		toString := func(v cty.Value) string {
			if v.Type() == cty.Number {
				return v.AsBigFloat().Text('f', -1)
			}
			return v.AsString()
		}
		return toString(got) == toString(want)
	}
	return got.Equals(want).True()
}

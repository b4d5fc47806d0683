package terraform_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/terraform-config-inspect/tfconfig"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/userdata"
)

var modules = []string{"apt-repo", "fleet", "notifier", "locks", "ci"}

// config is one Terraform directory parsed with hcl/v2.
type config struct {
	dir    string
	blocks []*hclsyntax.Block
	src    map[string][]byte // file name -> bytes, for expression text
}

func load(t *testing.T, dir string) *config {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	c := &config{dir: dir, src: map[string][]byte{}}
	p := hclparse.NewParser()
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", f, diags.Error())
		}
		c.src[f] = file.Bytes
		c.blocks = append(c.blocks, file.Body.(*hclsyntax.Body).Blocks...)
	}
	return c
}

// block returns the top-level block with these labels, failing if absent.
func (c *config) block(t *testing.T, typ string, labels ...string) *hclsyntax.Block {
	t.Helper()
	for _, b := range c.blocks {
		if b.Type == typ && slices.Equal(b.Labels, labels) {
			return b
		}
	}
	t.Fatalf("%s: no %s %q", c.dir, typ, labels)
	return nil
}

// all returns the top-level blocks of a type whose first label is kind.
func (c *config) all(typ, kind string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range c.blocks {
		if b.Type == typ && len(b.Labels) > 0 && b.Labels[0] == kind {
			out = append(out, b)
		}
	}
	return out
}

// text is the source text of an expression.
func (c *config) text(e hclsyntax.Expression) string {
	r := e.Range()
	return string(c.src[r.Filename][r.Start.Byte:r.End.Byte])
}

func attr(t *testing.T, b *hclsyntax.Block, name string) hclsyntax.Expression {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		t.Fatalf("%s %q has no attribute %s", b.Type, b.Labels, name)
	}
	return a.Expr
}

// literal evaluates an expression that must not refer to anything.
func literal(t *testing.T, e hclsyntax.Expression) cty.Value {
	t.Helper()
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("not a literal at %s: %s", e.Range(), diags.Error())
	}
	return v
}

func strings_(t *testing.T, v cty.Value) []string {
	t.Helper()
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

func child(t *testing.T, b *hclsyntax.Block, typ string) *hclsyntax.Block {
	t.Helper()
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			return c
		}
	}
	t.Fatalf("%s %q has no %s block", b.Type, b.Labels, typ)
	return nil
}

// statements returns the statement bodies of a policy document, including
// the content of dynamic "statement" blocks.
func statements(b *hclsyntax.Block) []*hclsyntax.Body {
	var out []*hclsyntax.Body
	for _, s := range b.Body.Blocks {
		switch {
		case s.Type == "statement":
			out = append(out, s.Body)
		case s.Type == "dynamic" && len(s.Labels) == 1 && s.Labels[0] == "statement":
			for _, c := range s.Body.Blocks {
				if c.Type == "content" {
					out = append(out, c.Body)
				}
			}
		}
	}
	return out
}

func actions(t *testing.T, doc *hclsyntax.Block) []string {
	t.Helper()
	var out []string
	for _, s := range statements(doc) {
		a, ok := s.Attributes["actions"]
		if !ok {
			t.Fatalf("policy %q has a statement without actions (or with not_actions)", doc.Labels)
		}
		out = append(out, strings_(t, literal(t, a.Expr))...)
	}
	return out
}

// TestDocumented: every module and the example load, every variable and
// output has a description, and the README names each of them.
func TestDocumented(t *testing.T) {
	dirs := []string{filepath.Join("examples", "complete")}
	for _, m := range modules {
		dirs = append(dirs, filepath.Join("modules", m))
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			mod, diags := tfconfig.LoadModule(dir)
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
			if err != nil {
				t.Fatal(err)
			}
			if len(mod.RequiredCore) == 0 {
				t.Error("no required_version")
			}
			if _, ok := mod.RequiredProviders["aws"]; !ok {
				t.Error("aws is not in required_providers")
			}
			for name, v := range mod.Variables {
				if strings.TrimSpace(v.Description) == "" {
					t.Errorf("variable %s has no description", name)
				}
				if v.Type == "" {
					t.Errorf("variable %s has no type", name)
				}
				if !bytes.Contains(readme, []byte("`"+name+"`")) {
					t.Errorf("README does not document variable `%s` (required: %v)", name, v.Required)
				}
			}
			for name, o := range mod.Outputs {
				if strings.TrimSpace(o.Description) == "" {
					t.Errorf("output %s has no description", name)
				}
				if !bytes.Contains(readme, []byte("`"+name+"`")) {
					t.Errorf("README does not document output `%s`", name)
				}
			}
		})
	}
}

func TestLaunchTemplateRequiresIMDSv2(t *testing.T) {
	c := load(t, "modules/fleet")
	md := child(t, c.block(t, "resource", "aws_launch_template", "fleet"), "metadata_options")
	for name, want := range map[string]cty.Value{
		"http_tokens":                 cty.StringVal("required"),
		"http_endpoint":               cty.StringVal("enabled"),
		"http_put_response_hop_limit": cty.NumberIntVal(1),
	} {
		if got := literal(t, attr(t, md, name)); !got.RawEquals(want) {
			t.Errorf("metadata_options.%s = %#v, want %#v", name, got, want)
		}
	}
	ebs := child(t, child(t, c.block(t, "resource", "aws_launch_template", "fleet"), "block_device_mappings"), "ebs")
	if got := literal(t, attr(t, ebs, "encrypted")); !got.RawEquals(cty.True) {
		t.Errorf("root volume encrypted = %#v", got)
	}
}

func TestBucketPrivateEncryptedVersioned(t *testing.T) {
	c := load(t, "modules/apt-repo")
	pab := c.block(t, "resource", "aws_s3_bucket_public_access_block", "repo")
	for _, name := range []string{"block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"} {
		if got := literal(t, attr(t, pab, name)); !got.RawEquals(cty.True) {
			t.Errorf("public access block %s = %#v, want true", name, got)
		}
	}
	for _, typ := range []string{"aws_s3_bucket_public_access_block", "aws_s3_bucket_versioning",
		"aws_s3_bucket_server_side_encryption_configuration", "aws_s3_bucket_policy", "aws_s3_bucket_ownership_controls"} {
		for _, b := range c.all("resource", typ) {
			if got := c.text(attr(t, b, "bucket")); got != "aws_s3_bucket.repo.id" {
				t.Errorf("%s.%s applies to %s, not the repository bucket", typ, b.Labels[1], got)
			}
		}
	}
	v := child(t, c.block(t, "resource", "aws_s3_bucket_versioning", "repo"), "versioning_configuration")
	if got := literal(t, attr(t, v, "status")); !got.RawEquals(cty.StringVal("Enabled")) {
		t.Errorf("versioning status = %#v", got)
	}
	sse := child(t, child(t, c.block(t, "resource", "aws_s3_bucket_server_side_encryption_configuration", "repo"), "rule"),
		"apply_server_side_encryption_by_default")
	if got := c.text(attr(t, sse, "sse_algorithm")); !strings.Contains(got, `"AES256"`) || !strings.Contains(got, `"aws:kms"`) {
		t.Errorf("sse_algorithm = %s, want AES256 or aws:kms", got)
	}
	own := child(t, c.block(t, "resource", "aws_s3_bucket_ownership_controls", "repo"), "rule")
	if got := literal(t, attr(t, own, "object_ownership")); !got.RawEquals(cty.StringVal("BucketOwnerEnforced")) {
		t.Errorf("object_ownership = %#v (ACLs must be disabled)", got)
	}
	if acls := c.all("resource", "aws_s3_bucket_acl"); len(acls) != 0 {
		t.Error("the module sets a bucket ACL")
	}
	// The only bucket policy statement denies; nothing is granted to "*".
	for _, s := range statements(c.block(t, "data", "aws_iam_policy_document", "bucket")) {
		if got := literal(t, s.Attributes["effect"].Expr); !got.RawEquals(cty.StringVal("Deny")) {
			t.Errorf("bucket policy statement has effect %#v", got)
		}
	}
}

// s3Read is everything an instance may do on the bucket.
var s3Read = []string{"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "kms:Decrypt"}

func TestInstanceRoleReadOnly(t *testing.T) {
	repo := load(t, "modules/apt-repo")
	for _, a := range actions(t, repo.block(t, "data", "aws_iam_policy_document", "read")) {
		if !slices.Contains(s3Read, a) {
			t.Errorf("the repository read policy allows %s", a)
		}
	}
	if got := repo.text(attr(t, repo.block(t, "resource", "aws_iam_policy", "read"), "policy")); got != "data.aws_iam_policy_document.read.json" {
		t.Errorf("read policy uses %s", got)
	}

	fleet := load(t, "modules/fleet")
	for _, doc := range fleet.all("data", "aws_iam_policy_document") {
		for _, a := range actions(t, doc) {
			if strings.Contains(a, "*") {
				t.Errorf("policy %s allows the wildcard action %q", doc.Labels[1], a)
			}
			if strings.HasPrefix(a, "s3:") || strings.HasPrefix(a, "iam:") {
				t.Errorf("policy %s allows %s (the bucket is reached only through the read policy)", doc.Labels[1], a)
			}
		}
	}
	// The role's permissions: the inline policy above and the repository
	// read policy, nothing else.
	atts := fleet.all("resource", "aws_iam_role_policy_attachment")
	if len(atts) != 1 || fleet.text(attr(t, atts[0], "policy_arn")) != "var.repo_read_policy_arn" {
		t.Errorf("the instance role has %d policy attachments; want only var.repo_read_policy_arn", len(atts))
	}
	if got := fleet.text(attr(t, fleet.block(t, "resource", "aws_iam_role_policy", "instance"), "policy")); got != "data.aws_iam_policy_document.instance.json" {
		t.Errorf("inline instance policy uses %s", got)
	}
	if _, ok := fleet.block(t, "resource", "aws_iam_role", "instance").Body.Attributes["managed_policy_arns"]; ok {
		t.Error("the instance role sets managed_policy_arns")
	}

	ex := load(t, "examples/complete")
	if got := ex.text(attr(t, ex.block(t, "module", "fleet"), "repo_read_policy_arn")); got != "module.repo.read_policy_arn" {
		t.Errorf("the example gives the fleet %s, not the read policy", got)
	}
	if got := ex.text(attr(t, ex.block(t, "module", "ci"), "write_policy_arn")); got != "module.repo.write_policy_arn" {
		t.Errorf("the example gives CI %s, not the write policy", got)
	}
}

func TestASGNotifications(t *testing.T) {
	c := load(t, "modules/fleet")
	n := c.block(t, "resource", "aws_autoscaling_notification", "fleet")
	got := strings_(t, literal(t, attr(t, n, "notifications")))
	sort.Strings(got)
	want := []string{
		"autoscaling:EC2_INSTANCE_LAUNCH",
		"autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
		"autoscaling:EC2_INSTANCE_TERMINATE",
		"autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
	}
	if !slices.Equal(got, want) {
		t.Errorf("notifications = %v, want %v", got, want)
	}
	if g := c.text(attr(t, n, "group_names")); g != "[aws_autoscaling_group.fleet.name]" {
		t.Errorf("group_names = %s", g)
	}
	if g := c.text(attr(t, n, "topic_arn")); g != "var.sns_topic_arn" {
		t.Errorf("topic_arn = %s", g)
	}
	ex := load(t, "examples/complete")
	if g := ex.text(attr(t, ex.block(t, "module", "fleet"), "sns_topic_arn")); g != "module.notifier.topic_arn" {
		t.Errorf("the example sends the fleet's notifications to %s", g)
	}
}

func TestLambdaSubscribed(t *testing.T) {
	c := load(t, "modules/notifier")
	sub := c.block(t, "resource", "aws_sns_topic_subscription", "notifier")
	for name, want := range map[string]string{
		"topic_arn": "aws_sns_topic.events.arn",
		"protocol":  `"lambda"`,
		"endpoint":  "aws_lambda_function.notifier.arn",
	} {
		if got := c.text(attr(t, sub, name)); got != want {
			t.Errorf("subscription %s = %s, want %s", name, got, want)
		}
	}
	perm := c.block(t, "resource", "aws_lambda_permission", "sns")
	for name, want := range map[string]string{
		"principal":     `"sns.amazonaws.com"`,
		"source_arn":    "aws_sns_topic.events.arn",
		"function_name": "aws_lambda_function.notifier.function_name",
		"action":        `"lambda:InvokeFunction"`,
	} {
		if got := c.text(attr(t, perm, name)); got != want {
			t.Errorf("permission %s = %s, want %s", name, got, want)
		}
	}
	fn := c.block(t, "resource", "aws_lambda_function", "notifier")
	if got := c.text(attr(t, fn, "source_code_hash")); got != "filebase64sha256(var.lambda_zip)" {
		t.Errorf("source_code_hash = %s", got)
	}
	if got := literal(t, attr(t, fn, "runtime")); !got.RawEquals(cty.StringVal("provided.al2023")) {
		t.Errorf("runtime = %#v", got)
	}
	lg := c.block(t, "resource", "aws_cloudwatch_log_group", "notifier")
	if got := c.text(attr(t, lg, "retention_in_days")); got != "var.log_retention_days" {
		t.Errorf("log retention = %s", got)
	}
	for _, a := range actions(t, c.block(t, "data", "aws_iam_policy_document", "notifier")) {
		if strings.Contains(a, "*") {
			t.Errorf("the notifier's role allows %q", a)
		}
	}
}

func TestRedisTLSAndAuth(t *testing.T) {
	c := load(t, "modules/locks")
	rg := c.block(t, "resource", "aws_elasticache_replication_group", "locks")
	for _, name := range []string{"transit_encryption_enabled", "at_rest_encryption_enabled"} {
		if got := literal(t, attr(t, rg, name)); !got.RawEquals(cty.True) {
			t.Errorf("%s = %#v", name, got)
		}
	}
	if _, ok := rg.Body.Attributes["auth_token"]; ok {
		t.Error("the replication group has a shared auth_token: every client would have full access")
	}
	if got := c.text(attr(t, rg, "user_group_ids")); got != "[aws_elasticache_user_group.locks.id]" {
		t.Errorf("user_group_ids = %s", got)
	}
	p := c.block(t, "resource", "aws_ssm_parameter", "role")
	if got := literal(t, attr(t, p, "type")); !got.RawEquals(cty.StringVal("SecureString")) {
		t.Errorf("the role passwords' parameter is %#v", got)
	}
}

// TestRedisRoleUsers: the locks module makes one RBAC user per role of the
// roles file, with the file's user name and ACL and a password of its own,
// plus the switched-off "default" user ElastiCache requires, all in the
// replication group's user group.
func TestRedisRoleUsers(t *testing.T) {
	c := load(t, "modules/locks")
	locals := c.block(t, "locals")
	if got := c.text(attr(t, locals, "roles")); got != `jsondecode(templatefile("${path.module}/roles.json.tftpl", { prefix = var.key_prefix })).roles` {
		t.Errorf("local.roles = %s, want the roles file rendered with var.key_prefix", got)
	}
	roles := testenv.RedisRoles(t, "aptfleet:")
	for _, want := range []string{"instance", "ci", "operator"} {
		if _, ok := roles[want]; !ok {
			t.Errorf("the roles file has no role %s", want)
		}
	}
	u := c.block(t, "resource", "aws_elasticache_user", "role")
	for name, want := range map[string]string{
		"for_each":      "local.roles",
		"user_name":     "each.value.user_name",
		"access_string": "each.value.access_string",
	} {
		if got := c.text(attr(t, u, name)); got != want {
			t.Errorf("aws_elasticache_user.role %s = %s, want %s", name, got, want)
		}
	}
	if got := c.text(attr(t, child(t, u, "authentication_mode"), "passwords")); got != "[random_password.role[each.key].result]" {
		t.Errorf("role passwords = %s", got)
	}
	def := c.block(t, "resource", "aws_elasticache_user", "default")
	if got := literal(t, attr(t, def, "user_name")).AsString(); got != "default" {
		t.Errorf("default user's name = %q", got)
	}
	if got := literal(t, attr(t, def, "access_string")).AsString(); !strings.HasPrefix(got, "off ") {
		t.Errorf("the default user is not switched off: %q", got)
	}
	g := c.text(attr(t, c.block(t, "resource", "aws_elasticache_user_group", "locks"), "user_ids"))
	for _, want := range []string{"aws_elasticache_user.default.user_id", "aws_elasticache_user.role"} {
		if !strings.Contains(g, want) {
			t.Errorf("user group %s lacks %s", g, want)
		}
	}
	// The fleet passes the instance user to the puller.
	ex := load(t, "examples/complete")
	if got := ex.text(attr(t, ex.block(t, "module", "fleet"), "redis_username")); got != "module.locks.instance_user_name" {
		t.Errorf("example: fleet's redis_username = %s", got)
	}
}

func TestSerfPorts(t *testing.T) {
	c := load(t, "modules/fleet")
	r := c.block(t, "resource", "aws_vpc_security_group_ingress_rule", "serf")
	if got := strings_(t, literal(t, attr(t, r, "for_each").(*hclsyntax.FunctionCallExpr).Args[0])); !slices.Equal(got, []string{"tcp", "udp"}) {
		t.Errorf("Serf protocols = %v", got)
	}
	for _, name := range []string{"from_port", "to_port"} {
		if got := literal(t, attr(t, r, name)); !got.RawEquals(cty.NumberIntVal(7946)) {
			t.Errorf("Serf %s = %#v", name, got)
		}
	}
	if got := c.text(attr(t, r, "referenced_security_group_id")); got != "aws_security_group.instances.id" {
		t.Errorf("Serf is open to %s, not the instances", got)
	}
	tg := c.block(t, "resource", "aws_lb_target_group", "app")
	if got := c.text(attr(t, child(t, tg, "health_check"), "path")); got != "var.health_check_path" {
		t.Errorf("health check path = %s", got)
	}
	if got := c.text(attr(t, tg, "deregistration_delay")); got != "var.deregistration_delay" {
		t.Errorf("deregistration_delay = %s", got)
	}
}

// TestLaunchTemplateUserData evaluates the fleet module's user_data with the
// HCL engine (path.module, variables, data sources and the target group set
// to test values) and compares it with the Go renderer's output for the same
// configuration: the module uses the one shared template, passes every
// variable it needs, and formats the derived values as the renderer does.
func TestLaunchTemplateUserData(t *testing.T) {
	c := load(t, "modules/fleet")
	lt := c.block(t, "resource", "aws_launch_template", "fleet")
	if got := c.text(attr(t, lt, "user_data")); got != "base64encode(local.user_data)" {
		t.Fatalf("launch template user_data = %s", got)
	}
	locals := c.block(t, "locals")
	keyring, err := os.ReadFile("../userdata/testdata/keyring.gpg")
	if err != nil {
		t.Fatal(err)
	}
	cfg := userdata.DefaultConfig()
	cfg.App = "hello"
	cfg.Env = "production"
	cfg.Repo = "s3://acme-apt/fleet"
	cfg.Keyring = keyring
	cfg.Region = "eu-west-1"
	cfg.RedisAddr = "master.locks.euw1.cache.amazonaws.com:6379"
	cfg.RedisUsername = "aptfleet-instance"
	cfg.RedisTLS = true
	cfg.RedisAuthParameter = "/aptfleet/redis-auth"
	cfg.SerfKeyParameter = "/aptfleet/hello-production/serf-key" // generated by the module
	cfg.SerfJoinASG = "hello-production"
	cfg.AppPort = 9000
	cfg.TargetGroupARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/hello-production/0123456789abcdef"
	cfg.SNSTopicARN = "arn:aws:sns:eu-west-1:123456789012:aptfleet-events"
	cfg.Fraction = 0.34
	want, err := userdata.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	vars, err := cfg.Vars()
	if err != nil {
		t.Fatal(err)
	}

	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(c.dir)}),
			"var": cty.ObjectVal(map[string]cty.Value{
				"name":                          cty.StringVal("hello-production"),
				"app":                           cty.StringVal("hello"),
				"env":                           cty.StringVal("production"),
				"dist":                          cty.StringVal(""),
				"repo_url":                      cty.StringVal(cfg.Repo),
				"keyring_base64":                vars["keyring_base64"],
				"keyring_package":               cty.StringVal(cfg.KeyringPackage),
				"component":                     cty.StringVal("main"),
				"redis_addr":                    cty.StringVal(cfg.RedisAddr),
				"redis_tls":                     cty.True,
				"redis_auth_ssm_parameter_name": cty.StringVal(cfg.RedisAuthParameter),
				"redis_username":                cty.StringVal(cfg.RedisUsername),
				"serf_key_ssm_parameter_name":   cty.StringVal(""),
				"app_port":                      cty.NumberIntVal(9000),
				"health_check_path":             cty.StringVal("/healthz"),
				"sns_topic_arn":                 cty.StringVal(cfg.SNSTopicARN),
				"fraction":                      cty.NumberFloatVal(0.34),
				"schedule":                      cty.StringVal("@every 1m"),
				"canary_hosts":                  cty.NumberIntVal(0),
				"canary_percent":                cty.NumberIntVal(0),
				"canary_bake":                   cty.StringVal(""),
				"canary_promote":                cty.StringVal(""),
				"alarms":                        cty.ListValEmpty(cty.String),
				"window":                        cty.StringVal(""),
				"validate":                      cty.StringVal(""),
				"validate_timeout":              cty.StringVal(""),
			}),
			"data": cty.ObjectVal(map[string]cty.Value{
				"aws_region": cty.ObjectVal(map[string]cty.Value{
					"current": cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("eu-west-1")}),
				}),
			}),
			"aws_lb_target_group": cty.ObjectVal(map[string]cty.Value{
				"app": cty.ObjectVal(map[string]cty.Value{"arn": cty.StringVal(cfg.TargetGroupARN)}),
			}),
		},
		Functions: map[string]function.Function{"templatefile": templatefile(t)},
	}
	dist, diags := attr(t, locals, "dist").Value(ctx)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	serfKey, diags := attr(t, locals, "serf_key_parameter_name").Value(ctx)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	ctx.Variables["local"] = cty.ObjectVal(map[string]cty.Value{"dist": dist, "serf_key_parameter_name": serfKey})
	got, diags := attr(t, locals, "user_data").Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("evaluate local.user_data: %s", diags.Error())
	}
	if got.AsString() != string(want) {
		t.Errorf("the fleet module's user-data differs from `pkgbuild userdata` for the same configuration:\n--- module\n%s\n--- renderer\n%s", got.AsString(), want)
	}
}

// templatefile is Terraform's templatefile for this test: it reads the file
// (which must be the shared template) and renders it with the userdata
// package's engine, refusing variables the template does not declare.
func templatefile(t *testing.T) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{
			{Name: "path", Type: cty.String},
			{Name: "vars", Type: cty.DynamicPseudoType},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path := args[0].AsString()
			abs, err := filepath.Abs(path)
			if err != nil {
				return cty.NilVal, err
			}
			shared, _ := filepath.Abs(filepath.Join("..", "userdata", userdata.TemplateName))
			if abs != shared {
				t.Errorf("templatefile reads %s, not the shared template %s", abs, shared)
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return cty.NilVal, err
			}
			vars := map[string]cty.Value{}
			for k, v := range args[1].AsValueMap() {
				vars[k] = v
			}
			used, err := userdata.Variables(string(src))
			if err != nil {
				return cty.NilVal, err
			}
			for k := range vars {
				if !slices.Contains(used, k) {
					t.Errorf("the module passes %q, which the template does not use", k)
				}
			}
			out, err := userdata.Execute(string(src), vars)
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(string(out)), nil
		},
	})
}

// TestSerfKeyGenerated: unless a key is given, the fleet module generates a
// 32-byte Serf key, stores it as a SecureString under the fleet's name, hands
// that parameter to the user-data and lets the instances read it.
func TestSerfKeyGenerated(t *testing.T) {
	c := load(t, "modules/fleet")
	id := c.block(t, "resource", "random_id", "serf_key")
	if got := c.text(attr(t, id, "count")); got != `var.serf_key_ssm_parameter_name == "" ? 1 : 0` {
		t.Errorf("random_id.serf_key count = %s, want one unless a key is given", got)
	}
	if v := literal(t, attr(t, id, "byte_length")); !v.Equals(cty.NumberIntVal(32)).True() {
		t.Errorf("byte_length = %s, want 32 (AES-256)", v.GoString())
	}
	p := c.block(t, "resource", "aws_ssm_parameter", "serf_key")
	if got := c.text(attr(t, p, "count")); got != `var.serf_key_ssm_parameter_name == "" ? 1 : 0` {
		t.Errorf("aws_ssm_parameter.serf_key count = %s", got)
	}
	if v := literal(t, attr(t, p, "type")); v.AsString() != "SecureString" {
		t.Errorf("type = %s, want SecureString", v.AsString())
	}
	if got := c.text(attr(t, p, "value")); got != "random_id.serf_key[0].b64_std" {
		t.Errorf("value = %s, want the generated key in standard base64", got)
	}
	if got := c.text(attr(t, p, "name")); got != "local.serf_key_parameter_name" {
		t.Errorf("name = %s", got)
	}
	locals := c.block(t, "locals")
	if got := c.text(attr(t, locals, "serf_key_parameter_name")); !strings.Contains(got, `"/aptfleet/${var.name}/serf-key"`) {
		t.Errorf("serf_key_parameter_name = %s, want the generated name when none is given", got)
	}
	if got := c.text(attr(t, locals, "ssm_parameter_names")); !strings.Contains(got, "local.serf_key_parameter_name") {
		t.Errorf("ssm_parameter_names = %s: the instances must be able to read the key", got)
	}
	if !strings.Contains(c.text(attr(t, locals, "user_data")), "serf_key_ssm_parameter   = local.serf_key_parameter_name") {
		t.Error("the user-data does not get the key's parameter")
	}
}

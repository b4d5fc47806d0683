package userdata_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aptfleet/aptfleet/internal/testenv"
	"github.com/aptfleet/aptfleet/puller"
	"github.com/aptfleet/aptfleet/puller/gossip"
	"github.com/aptfleet/aptfleet/userdata"
)

// TestGossipKeyRequired: the defaults refuse to render a fleet whose gossip
// is open, and say why; running without a key takes insecure_gossip.
func TestGossipKeyRequired(t *testing.T) {
	c := minimal(t)
	c.SerfKeyParameter = ""
	if _, err := userdata.Render(c); !errors.Is(err, userdata.ErrNoGossipKey) || !strings.Contains(err.Error(), "raise the live count") {
		t.Fatalf("render without a gossip key: %v, want ErrNoGossipKey saying why", err)
	}
	for _, tc := range []struct {
		name string
		set  func(*userdata.Config)
		want string
	}{
		{"both keys", func(c *userdata.Config) {
			c.SerfKeyParameter, c.SerfKey = "/k", base64.StdEncoding.EncodeToString(make([]byte, 32))
		}, "give one gossip key"},
		{"key and insecure", func(c *userdata.Config) { c.SerfKeyParameter, c.InsecureGossip = "/k", true }, "insecure_gossip"},
		{"not base64", func(c *userdata.Config) { c.SerfKey = "not base64!" }, "serf_key: not base64"},
		{"wrong length", func(c *userdata.Config) { c.SerfKey = base64.StdEncoding.EncodeToString(make([]byte, 20)) }, "serf_key: 20 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := minimal(t)
			c.SerfKeyParameter = ""
			tc.set(&c)
			if _, err := userdata.Render(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	c.InsecureGossip = true
	if _, err := userdata.Render(c); err != nil {
		t.Fatalf("insecure_gossip: %v", err)
	}
}

// TestKeylessMemberCannotJoin renders user-data as `pkgbuild userdata
// --serf-key-file` does, takes the puller.yaml and the key the script writes,
// and runs a real Serf member of the fleet with them on loopback. Twelve
// members without the key try to join it: none gets in and the live count the
// slot cap is sized from stays 1. A member given the key joins (count 2), so
// the joins fail for the key alone. (With the defaults before gossip keys
// were required, the twelve raised the count from 1 to 13.)
func TestKeylessMemberCannotJoin(t *testing.T) {
	testenv.NeedTools(t, "bash")
	raw := make([]byte, 32)
	rand.Read(raw)
	c := minimal(t)
	c.SerfKeyParameter = ""
	c.SerfKey = base64.StdEncoding.EncodeToString(raw)

	yaml := runWrite(t, c, "\nJOIN=()\n", "} | put \"$CONFIG\" 0644\n")
	cfg, err := puller.ParseConfig("puller.yaml", bytes.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Serf.EncryptKeyFile != "/etc/aptfleet/serf.key" {
		t.Fatalf("serf.encrypt_key_file = %q, want the key the script writes", cfg.Serf.EncryptKeyFile)
	}
	out, err := userdata.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	prog := shellPrologue(t, string(out)) + "printf '%s\\n' \"$SERF_KEY\"\n"
	written, err := exec.Command("bash", "-euo", "pipefail", "-c", prog).Output()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "serf.key")
	if err := os.WriteFile(keyFile, written, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := gossip.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	app, env := cfg.Apps[0].Name, cfg.Apps[0].Env
	member := func(name string, join []string, key []byte) (*gossip.Member, error) {
		gc := gossip.DefaultConfig()
		gc.NodeName, gc.BindAddr, gc.BindPort = name, "127.0.0.1", 0
		gc.Join, gc.EncryptKey, gc.Timing = join, key, gossip.FastTiming()
		gc.Tags = map[string]string{gossip.TagApps: app, gossip.TagEnv: env}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m, err := gossip.Start(ctx, gc, nil)
		if err == nil {
			t.Cleanup(func() { m.Leave(context.Background()) })
		}
		return m, err
	}
	host, err := member("i-0fleet", nil, key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		m, err := member(fmt.Sprintf("i-0fake%02d", i), []string{host.Addr()}, nil)
		if err == nil && m.Alive(app, env) > 1 {
			t.Errorf("fake member %d joined without the key", i)
		}
	}
	time.Sleep(2 * time.Second) // a few gossip rounds
	if n := host.Alive(app, env); n != 1 {
		t.Fatalf("live count %d after 12 keyless joins, want 1", n)
	}
	if _, err := member("i-0peer", []string{host.Addr()}, key); err != nil {
		t.Fatalf("a member with the key: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for host.Alive(app, env) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("live count %d, want 2 once a keyed member joined", host.Alive(app, env))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

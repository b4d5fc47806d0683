package docref

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

type inner struct {
	A string `yaml:"a"`
	B int    `yaml:"b"`
}

type selfDecoding uint32

func (*selfDecoding) UnmarshalYAML(any) error { return nil }

type cfg struct {
	Name    string            `yaml:"name"`
	Wait    time.Duration     `yaml:"wait"`
	When    time.Time         `yaml:"-"`
	Nested  inner             `yaml:"nested"`
	List    []inner           `yaml:"list"`
	Tags    []string          `yaml:"tags"`
	Env     map[string]string `yaml:"env"`
	Mode    selfDecoding      `yaml:"mode"`
	private string
}

func TestFields(t *testing.T) {
	got := Fields(&cfg{})
	want := []string{"env", "list[].a", "list[].b", "mode", "name", "nested.a", "nested.b", "tags", "wait"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Fields = %q, want %q", got, want)
	}
}

func TestKeys(t *testing.T) {
	doc := "# Title\n\n## One\n\n| key | default |\n|---|---|\n| `a.x` / `.y` | `1` |\n| `b`, `c` | none |\n\n" +
		"```\n| `fenced` | no |\n```\n\n### Sub\n\n| `d` | deeper, still in One |\n\n## Two\n\n| `e` | other section |\n"
	path := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Keys(path, "One")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.x", "a.y", "b", "c", "d"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Keys = %q, want %q", got, want)
	}
	if _, err := Keys(path, "Three"); err == nil {
		t.Fatal("Keys of a missing heading: no error")
	}
}

func TestDiff(t *testing.T) {
	missing, extra := Diff([]string{"a", "b", "s[].x"}, []string{"b", "c", "s", "s[].x", "s.x"})
	if !reflect.DeepEqual(missing, []string{"a"}) || !reflect.DeepEqual(extra, []string{"c", "s.x"}) {
		t.Fatalf("Diff = %q, %q", missing, extra)
	}
}

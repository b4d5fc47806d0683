// Package docref holds reference tables in docs/ to the code they describe.
//
// A reference table is a Markdown table under a heading whose first column
// names keys in backticks. Tests use Keys to read such a table and Fields to
// list the YAML keys of a configuration struct, then compare the two, so a
// field added without a row, or a row left behind by a removed field, fails a
// test instead of drifting.
package docref

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

var codeSpan = regexp.MustCompile("`([^`]+)`")

// Keys returns the keys named in the first column of every table row in the
// section of the Markdown file path headed by heading (a line "## heading"
// or "### heading"), up to the next heading of the same or a higher level.
// A cell may name several keys ("`a`, `b`"); a key starting with "." extends
// the key before it with its last part replaced ("`x.drain` / `.restore`"
// names x.drain and x.restore).
func Keys(path, heading string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		keys  []string
		level int // level of the section's heading once found, 0 before
	)
	sc := bufio.NewScanner(f)
	fence := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		if l := headingLevel(line); l > 0 {
			title := strings.TrimSpace(line[l:])
			switch {
			case level == 0 && title == heading:
				level = l
			case level > 0 && l <= level:
				return keys, nil
			}
			continue
		}
		if level == 0 || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		prev := ""
		for _, m := range codeSpan.FindAllStringSubmatch(cells[1], -1) {
			k := m[1]
			if strings.HasPrefix(k, ".") && prev != "" {
				k = prev[:strings.LastIndex(prev, ".")] + k
			}
			keys = append(keys, k)
			prev = k
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if level == 0 {
		return nil, fmt.Errorf("%s: no heading %q", path, heading)
	}
	return keys, nil
}

func headingLevel(line string) int {
	n := 0
	for n < len(line) && line[n] == '#' {
		n++
	}
	if n == 0 || n == len(line) || line[n] != ' ' {
		return 0
	}
	return n
}

// Fields returns the dotted YAML keys of every leaf field of the struct v
// (a value or a pointer): nested structs give "parent.child", slices of
// structs "parent[].child", maps of structs "parent.*.child". Other maps,
// slices of scalars and types with their own YAML decoding are leaves;
// fields tagged "-" are left out.
func Fields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	walk(t, "", &out)
	sort.Strings(out)
	return out
}

func walk(t reflect.Type, prefix string, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		key := prefix + tag
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && !custom(ft) && ft.PkgPath() != "time":
			walk(ft, key+".", out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !custom(ft.Elem()):
			walk(ft.Elem(), key+"[].", out)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct && !custom(ft.Elem()):
			walk(ft.Elem(), key+".*.", out)
		default:
			*out = append(*out, key)
		}
	}
}

// custom reports whether t decodes itself from YAML (a leaf, whatever its shape).
func custom(t reflect.Type) bool {
	_, ok := reflect.PointerTo(t).MethodByName("UnmarshalYAML")
	return ok
}

// Diff compares the fields of the code with the keys of a table: missing are
// fields without a row, extra are rows naming no field. A row may also name a
// section that holds fields ("apps" for "apps[].name").
func Diff(fields, keys []string) (missing, extra []string) {
	have := map[string]bool{}
	for _, k := range keys {
		have[k] = true
	}
	want := map[string]bool{}
	for _, f := range fields {
		want[f] = true
		if !have[f] {
			missing = append(missing, f)
		}
	}
	for _, k := range keys {
		if !want[k] && !parent(k, fields) {
			extra = append(extra, k)
		}
	}
	return missing, extra
}

func parent(k string, fields []string) bool {
	for _, f := range fields {
		if strings.HasPrefix(f, k+".") || strings.HasPrefix(f, k+"[].") {
			return true
		}
	}
	return false
}

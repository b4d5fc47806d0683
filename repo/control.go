package repo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
)

// ErrBadControl is returned for text that is not a valid deb822 paragraph.
var ErrBadControl = errors.New("repo: malformed control data")

// Field is one field of a control paragraph. A multi-line Value keeps its
// continuation lines, each starting with a space, joined by "\n".
type Field struct {
	Name  string
	Value string
}

// Paragraph is one deb822 paragraph (a package's control file, one entry of a
// Packages index, a Release file), fields in their original order.
type Paragraph []Field

// Get returns the value of the field named name (case-insensitive).
func (p Paragraph) Get(name string) string {
	for _, f := range p {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Set replaces the field named name, or appends it.
func (p *Paragraph) Set(name, value string) {
	for i, f := range *p {
		if strings.EqualFold(f.Name, name) {
			(*p)[i].Value = value
			return
		}
	}
	*p = append(*p, Field{name, value})
}

// Del removes the field named name.
func (p *Paragraph) Del(name string) {
	out := (*p)[:0]
	for _, f := range *p {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	*p = out
}

// WriteTo writes p as deb822 text, without the blank separator line.
func (p Paragraph) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	for _, f := range p {
		b.WriteString(f.Name)
		b.WriteByte(':')
		if f.Value != "" && f.Value[0] != '\n' {
			b.WriteByte(' ')
		}
		b.WriteString(f.Value)
		b.WriteByte('\n')
	}
	return b.WriteTo(w)
}

// String returns p as deb822 text.
func (p Paragraph) String() string {
	var b strings.Builder
	p.WriteTo(&b)
	return b.String()
}

// ParseParagraph parses one paragraph. Blank lines around it are ignored;
// a second paragraph is an error.
func ParseParagraph(data []byte) (Paragraph, error) {
	return parseParagraph(data, singleLine)
}

// parseParagraph parses one paragraph whose fields in single must fit on
// one line.
func parseParagraph(data []byte, single map[string]bool) (Paragraph, error) {
	var out Paragraph
	n := 0
	err := ScanParagraphs(bytes.NewReader(data), func(raw []byte) error {
		n++
		if n > 1 {
			return fmt.Errorf("%w: more than one paragraph", ErrBadControl)
		}
		var err error
		out, err = parseFields(raw, single)
		return err
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadControl)
	}
	return out, nil
}

// ScanParagraphs calls fn with the raw text of each paragraph in r (its lines
// with their newlines, no blank separator). fn must not keep raw past the
// call unless it copies it.
func ScanParagraphs(r io.Reader, fn func(raw []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var cur []byte
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		err := fn(cur)
		cur = cur[:0]
		return err
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		cur = append(cur, line...)
		cur = append(cur, '\n')
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return flush()
}

// MaxControlSize is the largest control file ReadDeb accepts, 1 MiB
// (dpkg's own control files are a few KiB; Debian's largest is under
// 64 KiB). A larger one is refused, never truncated.
const MaxControlSize = 1 << 20

// singleLine are the fields of control files and index entries that must fit on one line: a continuation
// line after one of them is refused, so no value can smuggle a second
// field (or a systemd section) in.
var singleLine = map[string]bool{
	"Package": true, "Version": true, "Architecture": true, "Source": true, "Section": true,
	"Priority": true, "Homepage": true, "Maintainer": true, "Installed-Size": true,
	"Essential": true, "Multi-Arch": true, "Protected": true, "Filename": true, "Size": true,
	"MD5sum": true, "SHA1": true, "SHA256": true, "SHA512": true, "Origin": true, "Label": true,
	"Suite": true, "Codename": true, "Date": true, "Valid-Until": true, "Acquire-By-Hash": true,
	"Architectures": true, "Components": true, "Description-md5": true,
}

// releaseSingleLine is singleLine for Release files, where the checksum
// fields are lists, one index per line.
var releaseSingleLine = func() map[string]bool {
	m := maps.Clone(singleLine)
	for _, f := range []string{"MD5sum", "SHA1", "SHA256", "SHA512"} {
		delete(m, f)
	}
	return m
}()

// canonical maps the lower-case spelling of the fields the repository
// reads to their Debian spelling. Field names are case-insensitive in
// deb822, but a reader that matches the exact spelling and one that folds
// case would disagree on a "version:" field, so any other spelling of
// these is refused.
var canonical = func() map[string]string {
	m := map[string]string{}
	for f := range singleLine {
		if f != "MD5sum" && f != "SHA1" { // Release files spell it MD5Sum; nothing reads these
			m[strings.ToLower(f)] = f
		}
	}
	for _, f := range []string{"Description", "Depends", "Pre-Depends", "Recommends", "Suggests",
		"Breaks", "Conflicts", "Replaces", "Provides", "Enhances", "Built-Using"} {
		m[strings.ToLower(f)] = f
	}
	return m
}()

// FieldError is a control paragraph that breaks deb822's syntax or the
// repository's rules for one field. Its message names the field.
type FieldError struct {
	Field   string // as written; empty for a line that has no field name
	Line    int    // 1-based line in the paragraph
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%v: line %d: %s", ErrBadControl, e.Line, e.Problem)
	}
	return fmt.Sprintf("%v: field %q (line %d): %s", ErrBadControl, e.Field, e.Line, e.Problem)
}

// Is makes errors.Is(err, ErrBadControl) hold.
func (e *FieldError) Is(target error) bool { return target == ErrBadControl }

// validFieldName reports whether name is a deb822 field name: printable
// US-ASCII without space or colon, not starting with '#' or '-'.
func validFieldName(name []byte) bool {
	if len(name) == 0 || name[0] == '#' || name[0] == '-' {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// scanFields is the one control-paragraph parser: ParseParagraph (control
// files, Release) and ParsePackages (every index entry the publisher,
// Reader and Verify read) both go through it. It calls fn for each field
// with its name, its first line (trimmed) and its continuation lines (as
// written, joined by '\n', without the final newline; nil when none). It
// refuses what dpkg and apt would read differently: a name that is not a
// deb822 field name (including "Version :" with a space), the same field
// twice (in any case), another spelling of a field the repository reads
// ("version"), a continuation line after a single-line field or before
// any field, comments, and control characters.
func scanFields(raw []byte, single map[string]bool, fn func(name, first, cont []byte) error) error {
	var names [24][]byte
	var low [32]byte
	seen := names[:0]
	var name, first []byte
	contStart, contEnd := -1, -1
	nameLine := 0
	emit := func() error {
		if name == nil {
			return nil
		}
		var cont []byte
		if contStart >= 0 {
			cont = raw[contStart:contEnd]
		}
		return fn(name, first, cont)
	}
	off := 0
	for n := 1; off < len(raw); n++ {
		end := bytes.IndexByte(raw[off:], '\n')
		lineEnd := off + end
		next := lineEnd + 1
		if end < 0 {
			lineEnd, next = len(raw), len(raw)
		}
		line := raw[off:lineEnd]
		lineStart := off
		off = next
		for _, c := range line {
			if c < ' ' && c != '\t' || c == 0x7f {
				f := ""
				if name != nil && (line[0] == ' ' || line[0] == '\t') {
					f = string(name)
				}
				return &FieldError{Field: f, Line: n, Problem: fmt.Sprintf("control character %q", c)}
			}
		}
		if len(line) == 0 {
			return &FieldError{Line: n, Problem: "empty line inside a paragraph"}
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name == nil {
				return &FieldError{Line: n, Problem: "continuation line before any field"}
			}
			if single[string(name)] {
				return &FieldError{Field: string(name), Line: nameLine, Problem: fmt.Sprintf("continuation line %d: the field must fit on one line", n)}
			}
			if len(bytes.TrimSpace(line)) == 0 {
				return &FieldError{Field: string(name), Line: n, Problem: "continuation line of only white space (write \" .\" for an empty line)"}
			}
			if contStart < 0 {
				contStart = lineStart
			}
			contEnd = lineEnd
			continue
		}
		if err := emit(); err != nil {
			return err
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			return &FieldError{Line: n, Problem: fmt.Sprintf("%q is not \"Field: value\"", truncate(string(line), 40))}
		}
		name, first, nameLine = line[:i], bytes.TrimSpace(line[i+1:]), n
		contStart, contEnd = -1, -1
		if !validFieldName(name) {
			return &FieldError{Field: string(name), Line: n, Problem: "not a valid field name (no spaces, colons or control characters; not starting with '#' or '-')"}
		}
		for _, prev := range seen {
			if len(prev) == len(name) && bytes.EqualFold(prev, name) {
				return &FieldError{Field: string(name), Line: n, Problem: fmt.Sprintf("given twice (also as %q)", prev)}
			}
		}
		if c, ok := canonical[string(lower(&low, name))]; ok && c != string(name) {
			return &FieldError{Field: string(name), Line: n, Problem: fmt.Sprintf("spelled differently from Debian's %q", c)}
		}
		seen = append(seen, name)
	}
	return emit()
}

// lower returns name in lower case, in buf when it fits (a map index
// expression string(lower(...)) then does not allocate).
func lower(buf *[32]byte, name []byte) []byte {
	if len(name) > len(buf) {
		return bytes.ToLower(name)
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(name)]
}

// parseFields parses the lines of one paragraph.
func parseFields(raw []byte, single map[string]bool) (Paragraph, error) {
	var p Paragraph
	err := scanFields(raw, single, func(name, first, cont []byte) error {
		v := string(first)
		if cont != nil {
			v += "\n" + string(cont)
		}
		p = append(p, Field{Name: string(name), Value: v})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// fieldValue returns the single-line value of field name in raw paragraph
// text without parsing the whole paragraph.
func fieldValue(raw []byte, name string) string {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) > len(name) && line[len(name)] == ':' && strings.EqualFold(string(line[:len(name)]), name) {
			return string(bytes.TrimSpace(line[len(name)+1:]))
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

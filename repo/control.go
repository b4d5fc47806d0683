package repo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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
	var out Paragraph
	n := 0
	err := ScanParagraphs(bytes.NewReader(data), func(raw []byte) error {
		n++
		if n > 1 {
			return fmt.Errorf("%w: more than one paragraph", ErrBadControl)
		}
		var err error
		out, err = parseFields(raw)
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

// parseFields parses the lines of one paragraph.
func parseFields(raw []byte) (Paragraph, error) {
	var p Paragraph
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(p) == 0 {
				return nil, fmt.Errorf("%w: continuation line before any field", ErrBadControl)
			}
			p[len(p)-1].Value += "\n" + string(line)
			continue
		}
		if line[0] == '#' {
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return nil, fmt.Errorf("%w: line %q has no field name", ErrBadControl, truncate(string(line), 40))
		}
		p = append(p, Field{Name: string(line[:i]), Value: strings.TrimSpace(string(line[i+1:]))})
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

// Package tail shortens a command's output to the end worth quoting in an
// error message.
package tail

import "strings"

// Lines returns the last n non-empty lines of out, each trimmed, joined with
// " | " so they fit on one line; "(no output)" when there are none.
func Lines(out []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	return strings.Join(lines, " | ")
}

// Bytes returns the last n bytes of b with surrounding white space trimmed,
// starting with "..." when something was cut.
func Bytes(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

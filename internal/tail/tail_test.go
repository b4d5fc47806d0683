package tail_test

import (
	"testing"

	"github.com/aptfleet/aptfleet/internal/tail"
)

func TestLines(t *testing.T) {
	tests := []struct {
		out  string
		n    int
		want string
	}{
		{"", 3, "(no output)"},
		{"\n  \n\t\n", 3, "(no output)"},
		{"one\n", 3, "one"},
		{"one\ntwo\n\nthree\nfour\n", 3, "two | three | four"},
		{"  E: Unable to locate package x  \r\n", 2, "E: Unable to locate package x"},
		{"a\nb", 1, "b"},
	}
	for _, tt := range tests {
		if got := tail.Lines([]byte(tt.out), tt.n); got != tt.want {
			t.Errorf("Lines(%q, %d) = %q, want %q", tt.out, tt.n, got, tt.want)
		}
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 4, ""},
		{"  boot  \n", 4, "boot"},
		{"booting\n", 4, "...ting"},
	}
	for _, tt := range tests {
		if got := tail.Bytes([]byte(tt.in), tt.n); got != tt.want {
			t.Errorf("Bytes(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

package gossip

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("AAECAwQFBgcICQoLDA0ODw==\n"), 0o600)
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("not a key!\n"), 0o600)

	key, err := ReadKeyFile(good)
	if err != nil || !bytes.Equal(key, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}) {
		t.Fatalf("good key: %x, %v", key, err)
	}
	if _, err := ReadKeyFile(bad); err == nil || !strings.Contains(err.Error(), "not base64") || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad key: %v", err)
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing key file: no error")
	}
}

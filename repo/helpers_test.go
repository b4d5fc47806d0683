package repo_test

import (
	"os"
	"os/exec"
)

// command runs a program and returns its combined output.
func command(name string, args ...string) (string, error) {
	b, err := exec.Command(name, args...).CombinedOutput()
	return string(b), err
}

var osStat = os.Stat

package pkgbuild_test

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aptfleet/aptfleet/pkgbuild"
)

// Parse a spec, set the version and the reproducible time, and build.
func ExampleBuild() {
	dir, err := os.MkdirTemp("", "pkgbuild-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "hello"), []byte("#!/bin/sh\necho hello\n"), 0o755)
	spec := `name: hello
maintainer: Hello Team <hello@example.com>
description: Says hello
files:
  - {src: hello, dst: /usr/bin/hello}
processes:
  web: /usr/bin/hello --port $PORT
environment:
  PORT: "8080"
`
	s, err := pkgbuild.Parse(strings.NewReader(spec), filepath.Join(dir, "package.yaml"))
	if err != nil {
		log.Fatal(err)
	}
	if err := s.SetVersion("1.4.0-1"); err != nil {
		log.Fatal(err)
	}
	s.ModTime = time.Unix(1767323045, 0) // from SOURCE_DATE_EPOCH
	var deb bytes.Buffer
	if err := pkgbuild.Build(s, &deb); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.FileName())
	for _, u := range s.Units() {
		fmt.Println(u.Name)
	}
	// Output:
	// hello_1.4.0-1_amd64.deb
	// hello-web.service
	// hello.target
}

// A bad spec gets a one-line error naming the file, the field and the problem.
func ExampleParse_error() {
	spec := "name: hello\nversion: 1.0 beta\nmaintainer: H <h@example.com>\ndescription: Says hello\n"
	_, err := pkgbuild.Parse(strings.NewReader(spec), "package.yaml")
	fmt.Println(err)
	// Output:
	// package.yaml: version: "1.0 beta" is not a valid Debian version: it contains whitespace
}

func ExampleVersionFromDescribe() {
	v, _ := pkgbuild.VersionFromDescribe("v1.4.0-3-g1a2b3c4", 0, "42")
	fmt.Println(v)
	// Output: 1.4.0+3.g1a2b3c4-42
}

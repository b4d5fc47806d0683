// Command hello is the tiny web app the puller system test packages: it
// answers /health with its version and the GREETING from its environment.
// With -exit it exits at once, like a release that cannot start; with
// -status it answers /health with that status, like a release that starts
// but is unhealthy.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	version := flag.String("version", "", "version to report")
	exit := flag.Bool("exit", false, "exit at once with status 1")
	status := flag.Int("status", http.StatusOK, "status /health answers with")
	flag.Parse()
	if *exit {
		log.Fatal("hello: told to fail")
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(*status)
		fmt.Fprintf(w, "hello %s greeting=%s\n", *version, os.Getenv("GREETING"))
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}

//go:build ignore

// Command servedist serves a directory over HTTP on a random loopback port.
// scripts/ci-release.sh uses it as a stand-in release mirror for install.sh.
// It writes its base URL to -addr-file once it is listening and exits by
// itself after -lifetime, so a crashed caller never leaves it behind.
//
//	go build -o /tmp/servedist scripts/internal/servedist/main.go
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	dir := flag.String("dir", ".", "directory to serve")
	addrFile := flag.String("addr-file", "", "write the base URL here when ready")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "exit after this long")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		// Write then rename so the caller never reads a half-written URL.
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte("http://"+ln.Addr().String()+"\n"), 0o600); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			log.Fatal(err)
		}
	}
	time.AfterFunc(*lifetime, func() {
		log.Printf("servedist: lifetime %s reached, exiting", *lifetime)
		os.Exit(0)
	})
	files := http.FileServer(http.Dir(*dir))
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Printf("%s %s", r.Method, r.URL.Path)
			files.ServeHTTP(w, r)
		}),
	}
	log.Fatal(srv.Serve(ln))
}

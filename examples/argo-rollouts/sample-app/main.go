// Command sample-app is the seed scenario's application: a small HTTP server
// that counts its requests as sample_app_requests_count{success="true|false"}
// and serves them on /metrics in the Prometheus text format. ERROR_RATE (0 to
// 1) makes that share of requests fail, so a canary can be made degraded by
// changing one environment variable of the Rollout.
//
// The same binary also generates load: `sample-app -load http://sample-app
// -rps 20` sends requests forever, so the analysis always has traffic.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// app is the HTTP application.
type app struct {
	errorRate float64
	version   string
	ok, fail  atomic.Uint64
	// failing decides whether a request fails; random by default.
	failing func() bool
}

func newApp(errorRate float64, version string) *app {
	a := &app{errorRate: errorRate, version: version}
	a.failing = func() bool { return rand.Float64() < a.errorRate }
	return a
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", a.metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", a.serve)
	return mux
}

func (a *app) serve(w http.ResponseWriter, r *http.Request) {
	if a.failing() {
		a.fail.Add(1)
		http.Error(w, "sample-app "+a.version+": injected failure", http.StatusInternalServerError)
		return
	}
	a.ok.Add(1)
	fmt.Fprintf(w, "sample-app %s\n", a.version)
}

func (a *app) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	fmt.Fprintf(w, "# HELP sample_app_requests_count Requests served, by success.\n")
	fmt.Fprintf(w, "# TYPE sample_app_requests_count counter\n")
	fmt.Fprintf(w, "sample_app_requests_count{success=\"true\"} %d\n", a.ok.Load())
	fmt.Fprintf(w, "sample_app_requests_count{success=\"false\"} %d\n", a.fail.Load())
}

// load sends rps requests per second to url until stop is closed.
func load(url string, rps int, stop <-chan struct{}) {
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(max(rps, 1)))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			go func() {
				resp, err := client.Get(url)
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
	}
}

func main() {
	addr := flag.String("listen", ":8080", "Address to serve on.")
	target := flag.String("load", "", "Generate load against this URL instead of serving.")
	rps := flag.Int("rps", 20, "Requests per second when generating load.")
	flag.Parse()

	if *target != "" {
		log.Printf("sending %d requests/s to %s", *rps, *target)
		load(*target, *rps, nil)
		return
	}
	rate := 0.0
	if v := os.Getenv("ERROR_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 {
			log.Fatalf("ERROR_RATE %q: want a number from 0 to 1", v)
		}
		rate = r
	}
	a := newApp(rate, os.Getenv("VERSION"))
	log.Printf("serving on %s, error rate %g", *addr, rate)
	log.Fatal(http.ListenAndServe(*addr, a.handler()))
}

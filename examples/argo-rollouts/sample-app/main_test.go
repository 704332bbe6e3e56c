package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCountsRequestsBySuccess(t *testing.T) {
	a := newApp(0, "v1")
	n := 0
	a.failing = func() bool { n++; return n%4 == 0 } // every 4th request fails
	srv := httptest.NewServer(a.handler())
	defer srv.Close()

	codes := map[int]int{}
	for range 8 {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[200] != 6 || codes[500] != 2 {
		t.Fatalf("status codes %v, want 6×200 and 2×500", codes)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"# TYPE sample_app_requests_count counter\n",
		"sample_app_requests_count{success=\"true\"} 6\n",
		"sample_app_requests_count{success=\"false\"} 2\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestErrorRate(t *testing.T) {
	a := newApp(1, "v2")
	rec := httptest.NewRecorder()
	a.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || a.fail.Load() != 1 {
		t.Fatalf("ERROR_RATE 1: code %d, failures %d", rec.Code, a.fail.Load())
	}
}

func TestLoad(t *testing.T) {
	a := newApp(0, "v1")
	srv := httptest.NewServer(a.handler())
	defer srv.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { load(srv.URL, 100, stop); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for a.ok.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	<-done
	if a.ok.Load() < 5 {
		t.Fatalf("load sent %d requests in 5s", a.ok.Load())
	}
}

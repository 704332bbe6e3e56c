package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/client"
	"github.com/tidemark/tidemark/internal/testutil"
)

// TestDiskFull fills a small filesystem under the server: writes answer
// 503 with Retry-After and write nothing; once space returns, writes
// succeed, and everything acknowledged is there after a restart. It mounts
// a tmpfs, as root (CI runs as root).
func TestDiskFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "full")
	out, err := exec.Command("sh", "-c", "mkdir -p "+mnt+" && mount -t tmpfs -o size=24m tmpfs "+mnt).CombinedOutput()
	require.NoError(t, err, "mounting a tmpfs needs root: %s", out)
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	dir := t.TempDir()
	srv := startServer(t, dir, "--config.file="+writeConfig(t, dir), "--storage.path="+filepath.Join(mnt, "data"), "--limits.token-requests-per-second=0")
	pad := strings.Repeat("x", 4000)
	var acked []string
	post := func(i int) (int, string, http.Header) {
		var evs []map[string]any
		for j := range 100 {
			evs = append(evs, map[string]any{"event_name": "fill", "id": fmt.Sprintf("e%d-%d", i, j), "metadata": map[string]string{"pad": pad}})
		}
		body, _ := json.Marshal(evs)
		req, _ := http.NewRequest("POST", srv.url+"/api/v4/organizations/acme/change_events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+acmeWrite)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String(), resp.Header
	}
	full := -1
	for i := 0; i < 200; i++ {
		code, body, _ := post(i)
		if code != 200 {
			require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
			require.Contains(t, body, "retry later")
			full = i
			break
		}
		acked = append(acked, fmt.Sprintf("e%d", i))
	}
	require.GreaterOrEqual(t, full, 1, "the disk never filled up")
	t.Logf("the 24 MiB disk filled up after %d batches of 100 events", full)
	// Remote write to the full disk: 503 with Retry-After, not Prometheus's 500.
	var ss []testutil.Series
	for i := range 2000 {
		ss = append(ss, testutil.Series{Labels: labels.FromStrings("__name__", "disk_full", "i", fmt.Sprint(i), "pad", pad[:200]), Samples: []testutil.Sample{{T: time.Now().UnixMilli(), V: 1}}})
	}
	req, _ := http.NewRequest("POST", srv.url+"/api/v1/write", bytes.NewReader(testutil.EncodeV1(t, ss)))
	req.Header.Set("Authorization", "Bearer "+acmeWrite)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))

	// Space returns: writes succeed again.
	out, err = exec.Command("mount", "-o", "remount,size=256m", mnt).CombinedOutput()
	require.NoError(t, err, "%s", out)
	code, body, _ := post(full)
	require.Equal(t, 200, code, "%s", body)
	acked = append(acked, fmt.Sprintf("e%d", full))

	// Nothing acknowledged is lost or corrupt after a restart.
	srv.restart()
	ids := eventIDs(t, srv, client.ListQuery{})
	for _, batch := range acked {
		for j := range 100 {
			require.Equal(t, 1, ids[fmt.Sprintf("%s-%d", batch, j)], "acknowledged event %s-%d is missing", batch, j)
		}
	}
	vec := instant(t, promClient(t, srv.url, acmeRead), `count(count_over_time(change_events{event_name="fill"}[1h]))`, time.Now())
	require.Len(t, vec, 1)
}

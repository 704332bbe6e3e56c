package main

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMemorySettings: with no GOGC in the environment the server collects
// at 75% heap growth, as Prometheus does, and sets GOMEMLIMIT from the
// memory limit; GOGC in the environment and --no-auto-gomemlimit win.
// runtimeinfo reports what the runtime runs with.
func TestMemorySettings(t *testing.T) {
	runtimeInfo := func(s *binServer) (gogc string, memlimit int64) {
		req, err := http.NewRequest("GET", s.url+"/api/v1/status/runtimeinfo", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+s.bootstrapToken())
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, "%s", body)
		var info struct {
			Data struct {
				GOGC       string
				GOMEMLIMIT int64
			}
		}
		require.NoError(t, json.Unmarshal(body, &info))
		return info.Data.GOGC, info.Data.GOMEMLIMIT
	}
	// The servers inherit the test's environment: without these in it.
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "AUTOMEMLIMIT"} {
		if v, ok := os.LookupEnv(k); ok {
			os.Unsetenv(k)
			t.Cleanup(func() { os.Setenv(k, v) })
		}
	}

	s := startServer(t, t.TempDir())
	gogc, limit := runtimeInfo(s)
	require.Equal(t, "75", gogc)
	require.Less(t, limit, int64(math.MaxInt64), "GOMEMLIMIT is set from the cgroup's or the machine's memory")
	require.Greater(t, limit, int64(64<<20))
	require.Contains(t, s.log.String(), "memory settings")

	s = &binServer{t: t, dir: t.TempDir(), addr: freeAddr(t), args: []string{"--no-auto-gomemlimit"}, env: []string{"GOGC=120"}}
	s.start()
	t.Cleanup(func() { s.stop(9) })
	gogc, limit = runtimeInfo(s)
	require.Equal(t, "120", gogc)
	require.Equal(t, int64(math.MaxInt64), limit)

	code, out := tidemark(t, nil, "serve", "--auto-gomemlimit.ratio=1.5", "--storage.path="+t.TempDir())
	require.Equal(t, 1, code, "%s", out)
	require.Contains(t, out, "--auto-gomemlimit.ratio 1.5 is not accepted: use a number greater than 0 and at most 1")
}

package main

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"syscall"
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

// TestFlagErrors: a flag given a value it does not take is refused with
// the flag, the value and what it takes, and the server does not start.
func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--storage.wal-compression=lz4"}, `--storage.wal-compression "lz4" is not accepted: use none, snappy or zstd`},
		{[]string{"serve", "--storage.backend=s3"}, `--storage.backend "s3" is not accepted: use embedded or remote`},
		{[]string{"serve", "--log.level=loud"}, `--log.level "loud" is not accepted: use debug, info, warn or error`},
		{[]string{"serve", "--storage.retention=forever"}, `--storage.retention "forever" is not accepted: not a valid duration string: "forever" (use a duration such as 30s, 5m, 15d)`},
		{[]string{"token", "create", "--org", "acme", "--scope", "root"}, `--scope "root" is not accepted: use read, write or admin`},
	} {
		dir := t.TempDir()
		code, out := tidemark(t, nil, append(tc.args, "--storage.path="+dir)...)
		require.Equal(t, 1, code, "%v: %s", tc.args, out)
		require.Contains(t, out, tc.want, "%v", tc.args)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries, "%v wrote to the data directory", tc.args)
	}
	// A value the flag takes starts the server (the defaults: every other test).
	s := &binServer{t: t, dir: t.TempDir(), addr: freeAddr(t), args: []string{"--storage.wal-compression=zstd", "--log.format=json"}}
	s.start()
	t.Cleanup(func() { s.stop(syscall.SIGTERM) })
}

package sources

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tidemark/tidemark/events"
)

var update = flag.Bool("update", false, "rewrite testdata/*/*.golden with what the conversions do")

// grafanaNow is the receive time of the Grafana cases: an annotation
// without a time is dated then.
var grafanaNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// TestConversions runs every payload in testdata/<source>/ through its
// source's conversion and compares the result with <case>.golden. Beside a
// payload <case>.json: <case>.headers (the delivery's headers, "Name:
// value" lines), <case>.open.json (Argo Rollouts: the rollout's open
// events), <case>.hook.json (generic: the hook's mapping). See
// testdata/README.md for where each payload comes from.
func TestConversions(t *testing.T) {
	payloads, err := filepath.Glob("testdata/*/*.json")
	require.NoError(t, err)
	n := 0
	for _, p := range payloads {
		if strings.HasSuffix(p, ".open.json") || strings.HasSuffix(p, ".hook.json") {
			continue
		}
		n++
		base := strings.TrimSuffix(p, ".json")
		t.Run(filepath.Base(filepath.Dir(p))+"/"+filepath.Base(base), func(t *testing.T) {
			body, err := os.ReadFile(p)
			require.NoError(t, err)
			conv, err := convertCase(t, filepath.Base(filepath.Dir(p)), base, body)
			got := renderCase(t, conv, err)
			golden := base + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "no expectation yet: run go test ./sources -update and read the diff")
			require.Equal(t, string(want), string(got))
		})
	}
	require.NotZero(t, n)
}

func convertCase(t *testing.T, source, base string, body []byte) (Conversion, error) {
	h := http.Header{}
	if b, err := os.ReadFile(base + ".headers"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			require.True(t, ok, "header line %q", sc.Text())
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	switch source {
	case "github":
		return GitHub(h.Get("X-GitHub-Event"), body)
	case "gitlab":
		return GitLab(h.Get("X-Gitlab-Event"), body)
	case "launchdarkly":
		return LaunchDarkly(body)
	case "unleash":
		return Unleash(body)
	case "flagger":
		return Flagger(body)
	case "grafana":
		return Grafana(body, grafanaNow)
	case "argo-rollouts":
		var open []OpenEvent
		if b, err := os.ReadFile(base + ".open.json"); err == nil {
			require.NoError(t, json.Unmarshal(b, &open))
		}
		n, err := ParseRolloutNotification(body)
		if err != nil {
			return Conversion{}, err
		}
		return ArgoRollouts(n, open)
	case "generic":
		b, err := os.ReadFile(base + ".hook.json")
		require.NoError(t, err)
		var spec GenericSpec
		require.NoError(t, json.Unmarshal(b, &spec))
		g, err := NewGeneric(spec)
		require.NoError(t, err)
		return g.Convert(body)
	}
	t.Fatalf("no conversion for testdata/%s", source)
	return Conversion{}, nil
}

// caseEvent is an event of a golden file, in the change-events API's form.
type caseEvent struct {
	ID         string            `json:"id,omitempty"`
	Name       string            `json:"event_name"`
	State      events.State      `json:"event_state"`
	Timestamp  string            `json:"timestamp,omitempty"`
	Value      *float64          `json:"value,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Metadata   json.RawMessage   `json:"metadata,omitempty"`
	Links      []events.Link     `json:"links,omitempty"`
}

type caseResult struct {
	Events  []caseEvent `json:"events,omitempty"`
	Ignored string      `json:"ignored,omitempty"`
	Error   string      `json:"error,omitempty"`
}

// renderCase renders a conversion for its golden file, after checking that
// its events pass the change-events API's validation and that its errors
// are payload errors (a 400).
func renderCase(t *testing.T, conv Conversion, err error) []byte {
	var res caseResult
	if err != nil {
		var pe *PayloadError
		require.True(t, errors.As(err, &pe), "error %T is not a *PayloadError: %v", err, err)
		require.Empty(t, conv.Events)
		res.Error = err.Error()
	} else {
		require.True(t, (len(conv.Events) == 0) != (conv.Ignored == ""), "a conversion has events or says why it has none: %+v", conv)
		res.Ignored = conv.Ignored
		now := grafanaNow
		for _, in := range conv.Events {
			if t := time.UnixMilli(in.Time).Add(time.Minute); in.Time != 0 && t.After(now) {
				now = t
			}
		}
		if len(conv.Events) > 0 {
			_, verr := events.ValidateAll(conv.Events, now, events.DefaultLimits)
			require.NoError(t, verr, "the events pass the API's validation")
		}
		for _, in := range conv.Events {
			ce := caseEvent{ID: in.ID, Name: in.Name, State: in.State, Value: in.Value, Attributes: in.Attributes, Metadata: in.Metadata, Links: in.Links}
			if in.Time != 0 {
				ce.Timestamp = time.UnixMilli(in.Time).UTC().Format(time.RFC3339Nano)
			}
			res.Events = append(res.Events, ce)
		}
	}
	b, err := json.MarshalIndent(res, "", "  ")
	require.NoError(t, err)
	return append(b, '\n')
}

// FuzzConversions: no payload makes a conversion panic, every refusal is a
// *PayloadError, and every event it makes passes the API's validation or
// is refused by it with an *events.InputError (a 400 either way).
func FuzzConversions(f *testing.F) {
	payloads, err := filepath.Glob("testdata/*/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range payloads {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	gen, err := NewGeneric(GenericSpec{Name: "fuzz", EventName: "$.name", State: "$.status", States: map[string]string{"running": "start", "success": "stop"},
		Timestamp: "$.time", ID: "$.id", Labels: map[string]string{"service": "$.project.name", "env": "$..environment"}, Metadata: map[string]string{"all": "$.*"}})
	if err != nil {
		f.Fatal(err)
	}
	open := []OpenEvent{{Name: "checkout", Labels: map[string]string{"rollout": "checkout", "namespace": "shop"}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(conv Conversion, err error) {
			if err != nil {
				var pe *PayloadError
				if !errors.As(err, &pe) {
					t.Fatalf("%q: refusal %T is not a *PayloadError: %v", body, err, err)
				}
				return
			}
			if len(conv.Events) == 0 {
				return
			}
			if _, err := events.ValidateAll(conv.Events, grafanaNow, events.DefaultLimits); err != nil {
				var ie *events.InputError
				if !errors.As(err, &ie) {
					t.Fatalf("%q: validation error %T is not an *events.InputError", body, err)
				}
			}
		}
		check(GitHub(GitHubDeployment, body))
		check(GitHub(GitHubDeploymentStatus, body))
		check(GitLab(GitLabDeploymentHook, body))
		check(LaunchDarkly(body))
		check(Unleash(body))
		check(Flagger(body))
		check(Grafana(body, grafanaNow))
		check(gen.Convert(body))
		if n, err := ParseRolloutNotification(body); err == nil {
			check(ArgoRollouts(n, open))
		} else {
			check(Conversion{}, err)
		}
	})
}

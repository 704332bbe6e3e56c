package watch

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewRefuses(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		opts Options
		err  string
	}{
		{Options{Selector: "team in (a"}, `label selector "team in (a"`},
		{Options{Attributes: map[string]string{"bad-name": "x"}}, `attribute "bad-name": not a label name`},
		{Options{Attributes: map[string]string{"event_name": "x"}}, `attribute "event_name"`},
	} {
		tc.opts.Kube, tc.opts.Sink = h.kube, h.rec
		_, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, tc.opts)
		require.ErrorContains(t, err, tc.err)
	}
	_, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, Options{Kube: h.kube, Sink: h.rec, Kinds: []Kind{Rollouts}})
	require.ErrorContains(t, err, "dynamic client")
}

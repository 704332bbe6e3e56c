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
		{Options{Attributes: map[string]string{"team:x": "x"}}, `attribute "team:x": not a label name`},
		{Options{Attributes: map[string]string{"équipe": "x"}}, `attribute "équipe": not a label name`},
		{Options{Attributes: map[string]string{"1a": "x"}}, `attribute "1a": not a label name`},
		{Options{Attributes: map[string]string{"": "x"}}, `attribute "": not a label name`},
		{Options{Attributes: map[string]string{"__x": "x"}}, `attribute "__x": not a label name`},
	} {
		tc.opts.Kube, tc.opts.Sink = h.kube, h.rec
		_, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, tc.opts)
		require.ErrorContains(t, err, tc.err)
	}
	_, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, Options{Kube: h.kube, Sink: h.rec, Kinds: []Kind{Rollouts}})
	require.ErrorContains(t, err, "dynamic client")
}

package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHooks(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ld-secret"), []byte("ld-from-file\n"), 0o600))
	c, err := Parse([]byte(`
hooks:
  github: {secret: gh-shared}
  launchdarkly: {secret_file: ld-secret}
  generic:
    - name: split
      event_name: flag-change
      timestamp: $.time
      id: $.changeNumber
      labels: {flag: $.name, env: $.environmentName}
    - name: deploys
      event_name: $.job
      state: $.status
      states: {running: start, done: stop}
      labels: {service: $.service}
organizations:
  - slug: acme
    hooks:
      github: {secret: gh-acme}
      gitlab: {token: gl-acme}
      generic:
        - {name: deploys, event_name: deploy, labels: {service: $.app}}
        - {name: jenkins, event_name: $.name}
  - slug: globex
`), dir)
	require.NoError(t, err)

	acme := c.HookSettings("acme")
	require.Equal(t, "gh-acme", acme.GitHubSecret, "the organization's own block replaces the top-level one")
	require.Equal(t, "gl-acme", acme.GitLabToken)
	require.Equal(t, "ld-from-file", acme.LaunchDarklySecret, "what the organization does not set comes from the top level")
	require.Equal(t, []string{"split", "deploys", "jenkins"}, acme.GenericNames())
	require.Equal(t, "deploy", acme.GenericHook("deploys").Spec().EventName, "the organization's hook replaces the one of the same name")

	for _, org := range []string{"globex", "initech"} {
		s := c.HookSettings(org)
		require.Equal(t, "gh-shared", s.GitHubSecret)
		require.Empty(t, s.GitLabToken)
		require.Equal(t, []string{"split", "deploys"}, s.GenericNames())
		require.Equal(t, "$.job", s.GenericHook("deploys").Spec().EventName)
	}

	empty, err := Parse(nil, dir)
	require.NoError(t, err)
	require.Equal(t, "", empty.HookSettings("acme").GitHubSecret)
	require.Empty(t, empty.HookSettings("acme").Generic)
}

func TestHooksErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, errHas string }{
		{"bad JSONPath", "hooks: {generic: [{name: a, event_name: x, labels: {service: '$.svc['}}]}", `hooks.generic[0].labels.service: "$.svc[" is not a JSONPath`},
		{"unknown state", "hooks: {generic: [{name: a, event_name: x, state: begin}]}", `hooks.generic[0].state: "begin" is not a state`},
		{"unknown mapped state", "hooks: {generic: [{name: a, event_name: x, state: $.s, states: {ok: finished}}]}", `hooks.generic[0].states.ok: "finished" is not a state`},
		{"duplicate name", "hooks: {generic: [{name: a, event_name: x}, {name: a, event_name: y}]}", `hooks.generic[1].name: "a" is declared twice (also hooks.generic[0])`},
		{"no event name", "hooks: {generic: [{name: a}]}", "hooks.generic[0].event_name: missing"},
		{"bad hook name", "hooks: {generic: [{name: A B, event_name: x}]}", `hooks.generic[0].name: "A B" is not accepted`},
		{"unknown field", "hooks: {generic: [{name: a, event_name: x, label: {}}]}", "field label not found"},
		{"unknown vendor", "hooks: {bitbucket: {secret: x}}", "field bitbucket not found"},
		{"no secret", "hooks: {github: {}}", "hooks.github: neither secret nor secret_file is set"},
		{"both secret and file", "hooks: {launchdarkly: {secret: a, secret_file: b}}", "hooks.launchdarkly: both secret and secret_file are set"},
		{"missing token file", "hooks: {gitlab: {token_file: /nonexistent/token}}", "hooks.gitlab.token_file"},
		{"organization's hooks", "organizations: [{slug: acme, hooks: {generic: [{name: a, event_name: '$.x['}]}}]", `organizations[0] (acme) hooks.generic[0].event_name: "$.x[" is not a JSONPath`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), t.TempDir())
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}

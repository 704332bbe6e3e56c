package sources

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVerify(t *testing.T) {
	// GitHub's own example ("Validating webhook deliveries"): this secret
	// and body give this signature.
	const (
		ghSecret = "It's a Secret to Everybody"
		ghBody   = "Hello, World!"
		ghSig    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	)
	require.Equal(t, ghSig, "sha256="+SignHMAC([]byte(ghBody), ghSecret))
	body := []byte(`{"_id":"674432f6c9e77d0e1b9a2f55"}`)
	for _, tc := range []struct {
		name   string
		err    error
		errHas string // empty: accepted
	}{
		{"github: GitHub's example", VerifyGitHub([]byte(ghBody), ghSig, ghSecret), ""},
		{"github: another body", VerifyGitHub([]byte(ghBody+" "), ghSig, ghSecret), "does not match the body signed with hooks.github.secret"},
		{"github: another secret", VerifyGitHub([]byte(ghBody), ghSig, "other"), "does not match"},
		{"github: no sha256= prefix", VerifyGitHub([]byte(ghBody), ghSig[len("sha256="):], ghSecret), "does not match"},
		{"github: not hex", VerifyGitHub([]byte(ghBody), "sha256=zz", ghSecret), "does not match"},
		{"github: no header", VerifyGitHub([]byte(ghBody), "", ghSecret), "header X-Hub-Signature-256 is missing"},
		{"github: no secret configured", VerifyGitHub([]byte(ghBody), ghSig, ""), "set hooks.github.secret"},
		{"launchdarkly: signed", VerifyLaunchDarkly(body, SignHMAC(body, "ld-secret"), "ld-secret"), ""},
		{"launchdarkly: wrong", VerifyLaunchDarkly(body, SignHMAC(body, "other"), "ld-secret"), "does not match the body signed with hooks.launchdarkly.secret"},
		{"launchdarkly: no header", VerifyLaunchDarkly(body, "", "ld-secret"), "header X-LD-Signature is missing"},
		{"launchdarkly: no secret configured", VerifyLaunchDarkly(body, SignHMAC(body, ""), ""), "set hooks.launchdarkly.secret"},
		{"gitlab: same token", VerifyGitLab("gl-token", "gl-token"), ""},
		{"gitlab: other token", VerifyGitLab("gl-token2", "gl-token"), "is not the token of hooks.gitlab.token"},
		{"gitlab: no header", VerifyGitLab("", "gl-token"), "header X-Gitlab-Token is missing"},
		{"gitlab: no token configured", VerifyGitLab("gl-token", ""), "set hooks.gitlab.token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.errHas == "" {
				require.NoError(t, tc.err)
				return
			}
			var se *SignatureError
			require.True(t, errors.As(tc.err, &se), "%v is not a *SignatureError", tc.err)
			require.ErrorContains(t, tc.err, tc.errHas)
		})
	}
}

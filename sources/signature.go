package sources

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// SignatureError is a delivery that does not prove it comes from the
// vendor: a missing or wrong signature or token, or no secret configured to
// check it with. The HTTP layer answers it with 401 and writes nothing.
type SignatureError struct{ msg string }

func (e *SignatureError) Error() string { return e.msg }

// Where a vendor signs its deliveries and no secret is configured,
// Tidemark refuses them rather than accepting unsigned bodies: a write
// token in a webhook URL is seen by everyone who can read the webhook's
// settings and by every proxy log on the way, while the signature proves
// the body is the vendor's and was not changed; and an operator who forgot
// the secret learns it from the first delivery instead of never.
func notConfigured(vendor, key, where string) error {
	return &SignatureError{msg: fmt.Sprintf("%s deliveries are refused: no secret is configured to check them with; set %s in the config file (for one organization: organizations[].%s) and the same value as the webhook's secret in %s", vendor, key, key, where)}
}

// VerifyGitHub checks GitHub's X-Hub-Signature-256 header: "sha256=" and the
// hex HMAC-SHA256 of the body keyed with the webhook's secret.
func VerifyGitHub(body []byte, header, secret string) error {
	if secret == "" {
		return notConfigured("GitHub", "hooks.github.secret", "the GitHub webhook's settings (Secret)")
	}
	if header == "" {
		return &SignatureError{msg: "header X-Hub-Signature-256 is missing: GitHub sends it when the webhook has a secret; set the webhook's Secret to the value of hooks.github.secret"}
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || !validHMAC(body, secret, hexSig) {
		return &SignatureError{msg: "header X-Hub-Signature-256 does not match the body signed with hooks.github.secret; accepted: sha256= followed by the hex HMAC-SHA256 of the body, with the same secret on both sides"}
	}
	return nil
}

// VerifyLaunchDarkly checks LaunchDarkly's X-LD-Signature header: the hex
// HMAC-SHA256 of the body keyed with the webhook's secret.
func VerifyLaunchDarkly(body []byte, header, secret string) error {
	if secret == "" {
		return notConfigured("LaunchDarkly", "hooks.launchdarkly.secret", "LaunchDarkly (the webhook's \"Sign this webhook\" secret)")
	}
	if header == "" {
		return &SignatureError{msg: "header X-LD-Signature is missing: LaunchDarkly sends it when \"Sign this webhook\" is on; turn it on and set hooks.launchdarkly.secret to its secret"}
	}
	if !validHMAC(body, secret, header) {
		return &SignatureError{msg: "header X-LD-Signature does not match the body signed with hooks.launchdarkly.secret; accepted: the hex HMAC-SHA256 of the body, with the same secret on both sides"}
	}
	return nil
}

// VerifyGitLab checks GitLab's X-Gitlab-Token header, which carries the
// webhook's secret token as it is, against the configured one in constant
// time.
func VerifyGitLab(header, token string) error {
	if token == "" {
		return notConfigured("GitLab", "hooks.gitlab.token", "the GitLab webhook's settings (Secret token)")
	}
	if header == "" {
		return &SignatureError{msg: "header X-Gitlab-Token is missing: GitLab sends it when the webhook has a secret token; set the webhook's Secret token to the value of hooks.gitlab.token"}
	}
	if subtle.ConstantTimeCompare([]byte(header), []byte(token)) != 1 {
		return &SignatureError{msg: "header X-Gitlab-Token is not the token of hooks.gitlab.token"}
	}
	return nil
}

// validHMAC compares, in constant time, a hex HMAC-SHA256 of body with the
// one computed with secret.
func validHMAC(body []byte, secret, hexSig string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(hexSig))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// SignHMAC returns the hex HMAC-SHA256 of body keyed with secret: what
// GitHub (after "sha256=") and LaunchDarkly send. Tests and clients use it
// to sign deliveries.
func SignHMAC(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

package sources

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tidemark/tidemark/events"
)

// launchDarklyEntry holds the fields of a LaunchDarkly webhook payload (an
// audit log entry) that Tidemark reads.
type launchDarklyEntry struct {
	ID          string      `json:"_id"`
	Date        json.Number `json:"date"`
	Kind        string      `json:"kind"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Comment     string      `json:"comment"`
	TitleVerb   string      `json:"titleVerb"`
	Accesses    []struct {
		Action   string `json:"action"`
		Resource string `json:"resource"`
	} `json:"accesses"`
	Member *struct {
		Email string `json:"email"`
	} `json:"member"`
	CurrentVersion *struct {
		Environments map[string]struct {
			On *bool `json:"on"`
		} `json:"environments"`
	} `json:"currentVersion"`
}

// launchDarklyResource is a LaunchDarkly resource specifier such as
// "proj/default:env/production:flag/new-checkout"; tags (";tag") are
// dropped.
type launchDarklyResource struct{ project, env, flag string }

func parseLaunchDarklyResource(s string) launchDarklyResource {
	var r launchDarklyResource
	for _, part := range strings.Split(s, ":") {
		part, _, _ = strings.Cut(part, ";")
		kind, name, ok := strings.Cut(part, "/")
		if !ok || name == "*" {
			continue
		}
		switch kind {
		case "proj":
			r.project = name
		case "env":
			r.env = name
		case "flag":
			r.flag = name
		}
	}
	return r
}

// LaunchDarkly converts a LaunchDarkly webhook payload. A flag change (kind
// "flag") becomes one point event "flag-change" per flag resource it
// accessed, labelled flag (the flag's key), env and project (their keys)
// and action (LaunchDarkly's action, e.g. updateOn, updateFallthrough);
// the change's title, comment, member and, when the entry carries it, the
// flag's new on/off state in that environment go to metadata. Changes to
// anything but flags are ignored. Event ids come from the entry's _id, so
// a redelivery is stored once.
func LaunchDarkly(body []byte) (Conversion, error) {
	const source = "launchdarkly webhook"
	var e launchDarklyEntry
	if err := decodeJSON(source, body, &e); err != nil {
		return Conversion{}, err
	}
	switch {
	case e.ID == "":
		return Conversion{}, missing(source, "_id", "the audit log entry's id, as LaunchDarkly's webhooks send it")
	case e.Kind == "":
		return Conversion{}, missing(source, "kind", `the kind of resource changed ("flag")`)
	case e.Kind != "flag":
		return ignored("a change of kind %q, not to a flag", e.Kind)
	}
	var ts int64
	if e.Date != "" {
		ms, err := e.Date.Int64()
		if err != nil || ms < 0 {
			return Conversion{}, &PayloadError{Source: source, Field: "date", Value: e.Date.String(), Problem: "is not a time", Accepted: "epoch milliseconds"}
		}
		ts = ms
	}
	var out []events.Input
	for i, a := range e.Accesses {
		r := parseLaunchDarklyResource(a.Resource)
		if r.flag == "" {
			continue
		}
		meta := map[string]any{"source": "launchdarkly", "name": e.Name, "titleVerb": e.TitleVerb, "comment": e.Comment, "description": e.Description, "resource": a.Resource}
		if e.Member != nil {
			meta["member"] = e.Member.Email
		}
		if e.CurrentVersion != nil {
			if env, ok := e.CurrentVersion.Environments[r.env]; ok && env.On != nil {
				meta["on"] = *env.On
			}
		}
		out = append(out, events.Input{
			ID:   "launchdarkly-" + e.ID + "-" + strconv.Itoa(i),
			Name: "flag-change", State: start, Time: ts,
			Attributes: labelsOf("flag", r.flag, "env", r.env, "project", r.project, "action", a.Action),
			Metadata:   metadata(meta),
		})
	}
	if len(out) == 0 {
		return ignored("the entry accessed no flag resource (accesses[].resource proj/P:env/E:flag/F)")
	}
	return Conversion{Events: out}, nil
}

package sources

import (
	"encoding/json"

	"github.com/tidemark/tidemark/events"
)

// GitLabDeploymentHook is the X-Gitlab-Event header of GitLab's deployment
// events.
const GitLabDeploymentHook = "Deployment Hook"

// gitlabDeployment holds the fields of GitLab's deployment event payload
// that Tidemark reads.
type gitlabDeployment struct {
	ObjectKind             string      `json:"object_kind"`
	Status                 string      `json:"status"`
	StatusChangedAt        string      `json:"status_changed_at"`
	DeploymentID           json.Number `json:"deployment_id"`
	DeployableID           json.Number `json:"deployable_id"`
	DeployableURL          string      `json:"deployable_url"`
	Environment            string      `json:"environment"`
	EnvironmentTier        string      `json:"environment_tier"`
	EnvironmentSlug        string      `json:"environment_slug"`
	EnvironmentExternalURL string      `json:"environment_external_url"`
	Project                *struct {
		ID                json.Number `json:"id"`
		Name              string      `json:"name"`
		PathWithNamespace string      `json:"path_with_namespace"`
		WebURL            string      `json:"web_url"`
	} `json:"project"`
	ShortSHA string `json:"short_sha"`
	User     *struct {
		Username string `json:"username"`
	} `json:"user"`
	CommitURL   string `json:"commit_url"`
	CommitTitle string `json:"commit_title"`
}

// gitlabOutcomes are the deployment statuses that end a deployment, and
// the outcome label each gives the stop.
var gitlabOutcomes = map[string]string{"success": "success", "failed": "failure", "canceled": "canceled"}

// GitLab converts a GitLab webhook delivery; event is its X-Gitlab-Event
// header. A deployment that is running starts the event "deploy", labelled
// service (the project's name), repo (its path with namespace), env (the
// environment) and version (the short commit SHA); success, failed and
// canceled stop it with outcome (success, failure, canceled). Other
// statuses and other hooks are ignored. Event ids come from the deployment
// id and the status, so every status is stored once.
func GitLab(event string, body []byte) (Conversion, error) {
	const source = "gitlab deployment"
	switch event {
	case GitLabDeploymentHook:
	case "":
		return Conversion{}, &PayloadError{Source: "gitlab", Problem: "header X-Gitlab-Event is missing", Accepted: "a delivery of GitLab's webhooks, which name their event in X-Gitlab-Event"}
	default:
		return ignored("event %q is not a deployment; turn on the webhook's Deployment events trigger", event)
	}
	var p gitlabDeployment
	if err := decodeJSON(source, body, &p); err != nil {
		return Conversion{}, err
	}
	switch {
	case p.ObjectKind != "deployment":
		return Conversion{}, &PayloadError{Source: source, Field: "object_kind", Value: jsonString(p.ObjectKind), Problem: "is not a deployment", Accepted: `"deployment", as GitLab sends with X-Gitlab-Event: Deployment Hook`}
	case p.DeploymentID == "":
		return Conversion{}, missing(source, "deployment_id", "the deployment's id")
	case p.Status == "":
		return Conversion{}, missing(source, "status", "running, success, failed or canceled")
	case p.Environment == "":
		return Conversion{}, missing(source, "environment", "the environment deployed to")
	case p.Project == nil || p.Project.Name == "":
		return Conversion{}, missing(source, "project.name", "the project deployed from")
	}
	st, outcome := start, ""
	if p.Status != "running" {
		var ends bool
		if outcome, ends = gitlabOutcomes[p.Status]; !ends {
			return ignored("deployment status %q neither starts nor ends a deployment (running starts; success, failed and canceled end)", p.Status)
		}
		st = stop
	}
	ts, err := vendorTime(source, "status_changed_at", p.StatusChangedAt)
	if err != nil {
		return Conversion{}, err
	}
	attrs := labelsOf("service", p.Project.Name, "repo", p.Project.PathWithNamespace, "env", p.Environment, "version", p.ShortSHA, "outcome", outcome)
	meta := map[string]any{"source": "gitlab", "deployment_id": p.DeploymentID, "status": p.Status,
		"environment_tier": p.EnvironmentTier, "environment_slug": p.EnvironmentSlug, "commit_title": p.CommitTitle}
	if p.DeployableID != "" {
		meta["deployable_id"] = p.DeployableID
	}
	if p.User != nil {
		meta["user"] = p.User.Username
	}
	return Conversion{Events: []events.Input{{
		ID:   "gitlab-deployment-" + p.DeploymentID.String() + "-" + p.Status,
		Name: "deploy", State: st, Time: ts, Attributes: attrs, Metadata: metadata(meta),
		Links: links("job", p.DeployableURL, "commit", p.CommitURL, "environment", p.EnvironmentExternalURL),
	}}}, nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

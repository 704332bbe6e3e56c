package sources

import (
	"encoding/json"

	"github.com/tidemark/tidemark/events"
)

// The GitHub webhook events that become change events (header
// X-GitHub-Event).
const (
	GitHubDeployment       = "deployment"
	GitHubDeploymentStatus = "deployment_status"
)

// githubPayload holds the fields of GitHub's deployment and
// deployment_status webhook payloads that Tidemark reads.
type githubPayload struct {
	Action           string                  `json:"action"`
	Deployment       *githubDeployment       `json:"deployment"`
	DeploymentStatus *githubDeploymentStatus `json:"deployment_status"`
	Repository       *struct {
		Name     string `json:"name"`
		FullName string `json:"full_name"`
		HTMLURL  string `json:"html_url"`
	} `json:"repository"`
}

type githubUser struct {
	Login string `json:"login"`
}

type githubDeployment struct {
	ID          json.Number `json:"id"`
	SHA         string      `json:"sha"`
	Ref         string      `json:"ref"`
	Task        string      `json:"task"`
	Environment string      `json:"environment"`
	Description *string     `json:"description"`
	Creator     *githubUser `json:"creator"`
	CreatedAt   string      `json:"created_at"`
	URL         string      `json:"url"`
}

type githubDeploymentStatus struct {
	ID             json.Number `json:"id"`
	State          string      `json:"state"`
	Description    string      `json:"description"`
	Environment    string      `json:"environment"`
	TargetURL      string      `json:"target_url"`
	LogURL         string      `json:"log_url"`
	EnvironmentURL string      `json:"environment_url"`
	Creator        *githubUser `json:"creator"`
	CreatedAt      string      `json:"created_at"`
}

// githubOutcomes are the deployment status states that end a deployment,
// and the outcome label each gives the stop.
var githubOutcomes = map[string]string{"success": "success", "failure": "failure", "error": "error"}

// GitHub converts a GitHub webhook delivery; event is its X-GitHub-Event
// header. A deployment (action created) starts the event named after its
// task ("deploy" unless the deployment says otherwise), labelled service
// (the repository's name), repo (owner/name), env (the deployment's
// environment) and version (the commit SHA); a deployment status whose
// state is success, failure or error stops it with outcome. Other states
// (queued, pending, in_progress, inactive...) and other events are
// ignored. Event ids come from GitHub's deployment and status ids.
func GitHub(event string, body []byte) (Conversion, error) {
	source := "github " + event
	switch event {
	case GitHubDeployment, GitHubDeploymentStatus:
	case "":
		return Conversion{}, &PayloadError{Source: "github", Problem: "header X-GitHub-Event is missing", Accepted: "a delivery of GitHub's webhooks, which name their event in X-GitHub-Event"}
	case "ping":
		return ignored("ping: the webhook reaches Tidemark; it records deployment and deployment_status events")
	default:
		return ignored("event %q is not a deployment; subscribe the webhook to Deployments and Deployment statuses", event)
	}
	var p githubPayload
	if err := decodeJSON(source, body, &p); err != nil {
		return Conversion{}, err
	}
	d := p.Deployment
	switch {
	case d == nil:
		return Conversion{}, missing(source, "deployment", "GitHub's "+event+" payload, with its deployment object")
	case d.ID == "":
		return Conversion{}, missing(source, "deployment.id", "the deployment's id")
	case d.Environment == "":
		return Conversion{}, missing(source, "deployment.environment", "the environment deployed to")
	case p.Repository == nil || p.Repository.Name == "":
		return Conversion{}, missing(source, "repository.name", "the repository deployed from")
	}
	name := d.Task
	if name == "" {
		name = "deploy"
	}
	repo := p.Repository
	attrs := labelsOf("service", repo.Name, "repo", repo.FullName, "env", d.Environment, "version", d.SHA)

	if event == GitHubDeployment {
		if p.Action != "" && p.Action != "created" {
			return ignored("deployment action %q does not start a deployment (created does)", p.Action)
		}
		ts, err := vendorTime(source, "deployment.created_at", d.CreatedAt)
		if err != nil {
			return Conversion{}, err
		}
		meta := map[string]any{"source": "github", "deployment_id": d.ID, "ref": d.Ref, "sha": d.SHA, "task": d.Task, "url": d.URL}
		if d.Description != nil {
			meta["description"] = *d.Description
		}
		if d.Creator != nil {
			meta["creator"] = d.Creator.Login
		}
		commit := ""
		if repo.HTMLURL != "" && d.SHA != "" {
			commit = repo.HTMLURL + "/commit/" + d.SHA
		}
		return Conversion{Events: []events.Input{{
			ID: "github-deployment-" + d.ID.String(), Name: name, State: start, Time: ts,
			Attributes: attrs, Metadata: metadata(meta), Links: links("commit", commit),
		}}}, nil
	}

	s := p.DeploymentStatus
	switch {
	case s == nil:
		return Conversion{}, missing(source, "deployment_status", "GitHub's deployment_status payload, with its deployment_status object")
	case s.ID == "":
		return Conversion{}, missing(source, "deployment_status.id", "the status's id")
	case s.State == "":
		return Conversion{}, missing(source, "deployment_status.state", "the status's state")
	}
	outcome, ends := githubOutcomes[s.State]
	if !ends {
		return ignored("deployment status %q does not end the deployment (success, failure and error do)", s.State)
	}
	ts, err := vendorTime(source, "deployment_status.created_at", s.CreatedAt)
	if err != nil {
		return Conversion{}, err
	}
	attrs["outcome"] = outcome
	meta := map[string]any{"source": "github", "deployment_id": d.ID, "status_id": s.ID, "state": s.State, "description": s.Description, "ref": d.Ref, "sha": d.SHA}
	if s.Creator != nil {
		meta["creator"] = s.Creator.Login
	}
	return Conversion{Events: []events.Input{{
		ID: "github-deployment-status-" + s.ID.String(), Name: name, State: stop, Time: ts,
		Attributes: attrs, Metadata: metadata(meta),
		Links: links("log", s.LogURL, "target", s.TargetURL, "environment", s.EnvironmentURL),
	}}}, nil
}

package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/sources"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// The webhook receivers of change sources (docs/sources.md). Each reads the
// body, checks the vendor's signature or token where the vendor signs,
// hands the payload to its conversion in package sources, and writes the
// events as one request: all of them or, on any error, none.

// hookAnswer is what a receiver answers.
type hookAnswer struct {
	Message string          `json:"message"`
	Reason  string          `json:"reason,omitempty"`
	Events  []events.Result `json:"events,omitempty"`
}

// sourcesAPI serves the receivers of GitHub, GitLab, LaunchDarkly, Unleash
// and the generic hooks.
type sourcesAPI struct {
	events   *eventsAPI
	settings func(org string) sources.Settings
}

// registerSources adds the receivers' routes (write scope).
func (h *Handler) registerSources(ev *eventsAPI) {
	s := &sourcesAPI{events: ev, settings: h.opts.Hooks}
	for _, rt := range []struct {
		path string
		f    apiFunc
	}{
		{"/hooks/github", s.github},
		{"/hooks/gitlab", s.gitlab},
		{"/hooks/launchdarkly", s.launchDarkly},
		{"/hooks/unleash", s.unleash},
		{"/hooks/generic/{name}", s.generic},
	} {
		h.handle("POST /api/v4/organizations/{org}"+rt.path, h.auth.require(state.ScopeWrite, plainError, h.gated(h.api(plainError, rt.f))))
	}
}

// delivery returns a request's organization, body and receiver settings.
func (s *sourcesAPI) delivery(r *http.Request) (string, []byte, sources.Settings, error) {
	org, _ := storage.OrgFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return "", nil, sources.Settings{}, err
	}
	var set sources.Settings
	if s.settings != nil {
		set = s.settings(org)
	}
	return org, body, set, nil
}

func (s *sourcesAPI) github(r *http.Request) (any, error) {
	org, body, set, err := s.delivery(r)
	if err != nil {
		return nil, err
	}
	if err := sources.VerifyGitHub(body, r.Header.Get("X-Hub-Signature-256"), set.GitHubSecret); err != nil {
		return nil, sourceError(err)
	}
	conv, err := sources.GitHub(r.Header.Get("X-GitHub-Event"), body)
	return s.events.answerConversion(r, org, conv, err)
}

func (s *sourcesAPI) gitlab(r *http.Request) (any, error) {
	org, body, set, err := s.delivery(r)
	if err != nil {
		return nil, err
	}
	if err := sources.VerifyGitLab(r.Header.Get("X-Gitlab-Token"), set.GitLabToken); err != nil {
		return nil, sourceError(err)
	}
	conv, err := sources.GitLab(r.Header.Get("X-Gitlab-Event"), body)
	return s.events.answerConversion(r, org, conv, err)
}

func (s *sourcesAPI) launchDarkly(r *http.Request) (any, error) {
	org, body, set, err := s.delivery(r)
	if err != nil {
		return nil, err
	}
	if err := sources.VerifyLaunchDarkly(body, r.Header.Get("X-LD-Signature"), set.LaunchDarklySecret); err != nil {
		return nil, sourceError(err)
	}
	conv, err := sources.LaunchDarkly(body)
	return s.events.answerConversion(r, org, conv, err)
}

// unleash receives Unleash's webhook integration. Unleash does not sign
// its deliveries; it sends the Authorization header it is configured
// with, so the write token is the check.
func (s *sourcesAPI) unleash(r *http.Request) (any, error) {
	org, body, _, err := s.delivery(r)
	if err != nil {
		return nil, err
	}
	conv, err := sources.Unleash(body)
	return s.events.answerConversion(r, org, conv, err)
}

func (s *sourcesAPI) generic(r *http.Request) (any, error) {
	org, body, set, err := s.delivery(r)
	if err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	g := set.GenericHook(name)
	if g == nil {
		accepted := "none are configured: add one to hooks.generic in the config file"
		if names := set.GenericNames(); len(names) > 0 {
			accepted = "the names in hooks.generic: " + strings.Join(names, ", ")
		}
		return nil, errorf(http.StatusNotFound, fmt.Sprintf("no generic hook %q for organization %q; accepted: %s", name, org, accepted))
	}
	conv, err := g.Convert(body)
	return s.events.answerConversion(r, org, conv, err)
}

// answerConversion writes what a payload became and answers: the stored
// events, or why there were none.
func (a *eventsAPI) answerConversion(r *http.Request, org string, conv sources.Conversion, err error) (any, error) {
	if err != nil {
		return nil, sourceError(err)
	}
	if len(conv.Events) == 0 {
		return hookAnswer{Message: "ignored", Reason: conv.Ignored}, nil
	}
	res, err := a.writeInputs(r, org, conv.Events)
	if err != nil {
		return nil, err
	}
	return hookAnswer{Message: "success", Events: res}, nil
}

// writeInputs validates events exactly as the change-events API does and
// writes them as one request.
func (a *eventsAPI) writeInputs(r *http.Request, org string, ins []events.Input) ([]events.Result, error) {
	evs, err := events.ValidateAll(ins, a.now(), a.svc.Limits())
	if err != nil {
		return nil, err
	}
	return a.svc.Write(r.Context(), org, evs)
}

// sourceError gives the errors of package sources their status codes: a
// payload that cannot become an event is a 400, a delivery that does not
// prove it comes from the vendor a 401.
func sourceError(err error) error {
	var pe *sources.PayloadError
	var se *sources.SignatureError
	switch {
	case errors.As(err, &pe):
		return errorf(http.StatusBadRequest, pe.Error())
	case errors.As(err, &se):
		return errorf(http.StatusUnauthorized, se.Error())
	}
	return err
}

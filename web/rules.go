package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tidemark/tidemark/alerting"
	"github.com/tidemark/tidemark/state"
	"github.com/tidemark/tidemark/storage"
)

// The ruler API of Cortex and Mimir, under every base URL: rule groups by
// namespace, as Prometheus rule-group YAML. A change answers 202 Accepted:
// it is stored at once and evaluated from the rules manager's next sync
// (alerting.Manager).
//
//	GET    {base}/config/v1/rules                       all namespaces
//	GET    {base}/config/v1/rules/{namespace}           one namespace
//	POST   {base}/config/v1/rules/{namespace}           create or replace one group
//	GET    {base}/config/v1/rules/{namespace}/{group}   one group
//	DELETE {base}/config/v1/rules/{namespace}/{group}   one group
//	DELETE {base}/config/v1/rules/{namespace}           every group of a namespace

// The errors of the ruler API, worded as Mimir's.
const (
	errNoRuleGroups      = "no rule groups found"
	errGroupNotFound     = "group does not exist"
	errNamespaceNotFound = "group namespace does not exist"
)

// maxNamespaceBytes bounds a namespace's name.
const maxNamespaceBytes = 512

type rulerAPI struct {
	db     state.RuleStore
	parser parser.Parser
}

// registerRuler registers the ruler API under both base URLs.
func (h *Handler) registerRuler() {
	a := &rulerAPI{db: h.opts.State, parser: parser.NewParser(parser.Options{})}
	routes := []struct {
		method, path string
		scope        state.Scope
		f            func(*http.Request) (any, error)
	}{
		{"GET", "/config/v1/rules", state.ScopeRead, a.listAll},
		{"GET", "/config/v1/rules/{namespace}", state.ScopeRead, a.listNamespace},
		{"POST", "/config/v1/rules/{namespace}", state.ScopeWrite, a.create},
		{"GET", "/config/v1/rules/{namespace}/{group}", state.ScopeRead, a.get},
		{"DELETE", "/config/v1/rules/{namespace}/{group}", state.ScopeWrite, a.deleteGroup},
		{"DELETE", "/config/v1/rules/{namespace}", state.ScopeWrite, a.deleteNamespace},
	}
	for _, rt := range routes {
		hd := h.auth.require(rt.scope, promError, h.gated(h.api(promError, rt.f)))
		h.handle(rt.method+" "+orgBase+rt.path, hd)
		h.handle(rt.method+" "+rt.path, hd)
	}
}

// acceptedBody is Mimir's answer to a change.
type acceptedBody struct {
	Status    string `json:"status"`
	Data      any    `json:"data"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

// accepted is Mimir's answer to a change, with status 202.
func accepted() withStatus {
	return withStatus{code: http.StatusAccepted, body: acceptedBody{Status: "success"}}
}

func rulerPath(r *http.Request) (org, namespace, group string, err error) {
	org, _ = storage.OrgFrom(r.Context())
	namespace, group = r.PathValue("namespace"), r.PathValue("group")
	if namespace != "" {
		if err := checkName("namespace", namespace); err != nil {
			return "", "", "", err
		}
	}
	return org, namespace, group, nil
}

func checkName(what, s string) error {
	switch {
	case len(s) > maxNamespaceBytes:
		return errorf(http.StatusBadRequest, fmt.Sprintf("the %s is %d bytes long; accepted: at most %d bytes", what, len(s), maxNamespaceBytes))
	case !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0:
		return errorf(http.StatusBadRequest, fmt.Sprintf("the %s %q is not accepted; accepted: UTF-8 text without control characters", what, s))
	}
	return nil
}

func (a *rulerAPI) listAll(r *http.Request) (any, error) {
	org, _, _, err := rulerPath(r)
	if err != nil {
		return nil, err
	}
	return a.list(r, state.RuleGroupQuery{Org: org})
}

func (a *rulerAPI) listNamespace(r *http.Request) (any, error) {
	org, ns, _, err := rulerPath(r)
	if err != nil {
		return nil, err
	}
	return a.list(r, state.RuleGroupQuery{Org: org, Namespace: ns})
}

func (a *rulerAPI) list(r *http.Request, q state.RuleGroupQuery) (any, error) {
	rows, err := a.db.RuleGroups(r.Context(), q)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errorf(http.StatusNotFound, errNoRuleGroups)
	}
	b, err := alerting.FormatNamespaces(rows)
	if err != nil {
		return nil, err
	}
	return yamlBody(b), nil
}

func (a *rulerAPI) create(r *http.Request) (any, error) {
	org, ns, _, err := rulerPath(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	rg, err := alerting.ParseGroup(body, a.parser)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, err.Error())
	}
	if err := checkName("group name", rg.Name); err != nil {
		return nil, err
	}
	b, err := alerting.FormatGroup(rg)
	if err != nil {
		return nil, err
	}
	if err := a.db.PutRuleGroup(r.Context(), state.RuleGroupRow{Org: org, Namespace: ns, Name: rg.Name, Body: string(b)}); err != nil {
		return nil, err
	}
	return accepted(), nil
}

func (a *rulerAPI) get(r *http.Request) (any, error) {
	org, ns, group, err := rulerPath(r)
	if err != nil {
		return nil, err
	}
	row, err := a.db.RuleGroup(r.Context(), org, ns, group)
	if errors.Is(err, state.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, errGroupNotFound)
	}
	if err != nil {
		return nil, err
	}
	return yamlBody(row.Body), nil
}

func (a *rulerAPI) deleteGroup(r *http.Request) (any, error) {
	org, ns, group, err := rulerPath(r)
	if err != nil {
		return nil, err
	}
	err = a.db.DeleteRuleGroup(r.Context(), org, ns, group)
	if errors.Is(err, state.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, errGroupNotFound)
	}
	if err != nil {
		return nil, err
	}
	return accepted(), nil
}

func (a *rulerAPI) deleteNamespace(r *http.Request) (any, error) {
	org, ns, _, err := rulerPath(r)
	if err != nil {
		return nil, err
	}
	err = a.db.DeleteRuleNamespace(r.Context(), org, ns)
	if errors.Is(err, state.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, errNamespaceNotFound)
	}
	if err != nil {
		return nil, err
	}
	return accepted(), nil
}

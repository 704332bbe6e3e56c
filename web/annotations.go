package web

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/sources"
	"github.com/tidemark/tidemark/storage"
)

// Grafana annotations compatibility: POST /api/annotations becomes a change
// event (sources.Grafana); GET /api/annotations answers from the event log.
// The organization is the token's.

func (a *eventsAPI) postAnnotation(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	conv, err := sources.Grafana(body, a.now())
	if err != nil {
		return nil, sourceError(err)
	}
	res, err := a.writeInputs(r, org, conv.Events)
	if err != nil {
		return nil, err
	}
	return map[string]any{"message": "Annotation added", "id": res[0].Seq}, nil
}

// grafanaAnnotationOut is one element of Grafana's GET /api/annotations.
type grafanaAnnotationOut struct {
	ID           int64          `json:"id"`
	AlertID      int64          `json:"alertId"`
	DashboardID  int64          `json:"dashboardId"`
	DashboardUID string         `json:"dashboardUID"`
	PanelID      int64          `json:"panelId"`
	UserID       int64          `json:"userId"`
	NewState     string         `json:"newState"`
	PrevState    string         `json:"prevState"`
	Created      int64          `json:"created"`
	Updated      int64          `json:"updated"`
	Time         int64          `json:"time"`
	TimeEnd      int64          `json:"timeEnd"`
	Text         string         `json:"text"`
	Tags         []string       `json:"tags"`
	Login        string         `json:"login"`
	Email        string         `json:"email"`
	AvatarURL    string         `json:"avatarUrl"`
	Data         map[string]any `json:"data"`
}

func (a *eventsAPI) getAnnotations(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	if err := r.ParseForm(); err != nil {
		return nil, errorf(http.StatusBadRequest, "cannot parse the query string: "+err.Error())
	}
	q := events.ListQuery{Org: org, Start: 0, End: math.MaxInt64}
	limit := defaultListLimit
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"from", &q.Start}, {"to", &q.End}} {
		if v := r.Form.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, errorf(http.StatusBadRequest, fmt.Sprintf("parameter %q value %q is not accepted; accepted: epoch milliseconds", p.name, v))
			}
			*p.dst = n
		}
	}
	if v := r.Form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return nil, errorf(http.StatusBadRequest, fmt.Sprintf("parameter \"limit\" value %q is not accepted; accepted: an integer from 1 to %d", v, maxListLimit))
		}
		limit = n
	}
	var plainTags []string
	for _, tag := range r.Form["tags"] {
		if k, v, ok := sources.SplitTag(tag); ok {
			q.Matchers = append(q.Matchers, labels.MustNewMatcher(labels.MatchEqual, k, v))
			continue
		}
		plainTags = append(plainTags, tag)
	}
	// A region's stop is part of its start's annotation; list starts and
	// unpaired stops, as many as asked for.
	q.Limit = min(limit*2, maxListLimit)
	res, err := a.svc.List(r.Context(), q)
	if err != nil {
		return nil, err
	}
	out := []grafanaAnnotationOut{}
	for _, e := range res.Events {
		if e.State == string(events.StateStop) && e.PairID != "" {
			continue
		}
		an := annotationOf(e)
		if !hasTags(an.Tags, plainTags) {
			continue
		}
		out = append(out, an)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func hasTags(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// annotationOf renders a logged event as a Grafana annotation: a start that
// has its stop is a region.
func annotationOf(e events.Logged) grafanaAnnotationOut {
	an := grafanaAnnotationOut{
		ID: e.Seq, Created: e.ReceivedMS, Updated: e.ReceivedMS, Time: e.Time, TimeEnd: e.Time,
		Data: map[string]any{"event_id": e.ID, "event_state": e.State},
	}
	if e.Duration != nil {
		an.TimeEnd = e.Time + int64(math.Round(*e.Duration*1000))
	}
	an.Tags = append(an.Tags, "event_name:"+e.Name)
	keys := make([]string, 0, len(e.Labels))
	for k := range e.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		an.Tags = append(an.Tags, k+":"+e.Labels[k])
	}
	var meta struct {
		Text         string   `json:"text"`
		Tags         []string `json:"tags"`
		DashboardUID string   `json:"dashboardUID"`
		PanelID      int64    `json:"panelId"`
	}
	json.Unmarshal(e.Metadata, &meta)
	an.Tags = append(an.Tags, meta.Tags...)
	an.DashboardUID, an.PanelID = meta.DashboardUID, meta.PanelID
	an.Text = meta.Text
	if an.Text == "" {
		an.Text = e.Name + " " + e.State
	}
	return an
}

package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/storage"
)

// Grafana annotations compatibility: POST /api/annotations becomes a change
// event; GET /api/annotations answers from the event log. The organization
// is the token's. Mapping (docs/change-events.md, "Grafana annotations"):
//   - tags "key:value" become attributes; the event name is the value of a
//     tag "event_name:NAME", else the first plain tag, else "annotation";
//   - the other plain tags and text, dashboardUID, panelId go to metadata;
//   - time is the start; a timeEnd after time also writes the stop.

// grafanaAnnotation is the body of Grafana's POST /api/annotations.
type grafanaAnnotation struct {
	DashboardUID string   `json:"dashboardUID,omitempty"`
	DashboardID  int64    `json:"dashboardId,omitempty"`
	PanelID      int64    `json:"panelId,omitempty"`
	Time         int64    `json:"time,omitempty"`
	TimeEnd      int64    `json:"timeEnd,omitempty"`
	IsRegion     bool     `json:"isRegion,omitempty"`
	Tags         []string `json:"tags"`
	Text         string   `json:"text"`
	Data         any      `json:"data,omitempty"`
}

const defaultAnnotationName = "annotation"

var tagKeyRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// splitTag returns key and value of a "key:value" tag whose key is a valid
// label name; ok is false for a plain tag.
func splitTag(tag string) (key, value string, ok bool) {
	k, v, found := strings.Cut(tag, ":")
	if !found || v == "" || !tagKeyRE.MatchString(k) || strings.HasPrefix(k, "__") {
		return "", "", false
	}
	return k, v, true
}

func (a *eventsAPI) postAnnotation(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var an grafanaAnnotation
	if err := dec.Decode(&an); err != nil {
		return nil, errorf(http.StatusBadRequest, "annotation: "+strings.TrimPrefix(err.Error(), "json: ")+
			"; accepted: Grafana's annotation fields time, timeEnd, tags, text, dashboardUID, dashboardId, panelId, isRegion, data")
	}
	now := a.now()
	if an.Time == 0 {
		an.Time = now.UnixMilli()
	}
	if an.TimeEnd != 0 && an.TimeEnd < an.Time {
		return nil, errorf(http.StatusBadRequest, fmt.Sprintf("annotation: field \"timeEnd\" value %d is before \"time\" %d; accepted: a time in epoch milliseconds at or after time", an.TimeEnd, an.Time))
	}
	name := ""
	attrs := map[string]string{}
	var plain []string
	for _, tag := range an.Tags {
		if k, v, ok := splitTag(tag); ok {
			if k == "event_name" {
				name = v
				continue
			}
			attrs[k] = v
			continue
		}
		plain = append(plain, tag)
	}
	if name == "" && len(plain) > 0 {
		name, plain = plain[0], plain[1:]
	}
	if name == "" {
		name = defaultAnnotationName
	}
	meta := map[string]any{"source": "grafana-annotation"}
	if an.Text != "" {
		meta["text"] = an.Text
	}
	if len(plain) > 0 {
		meta["tags"] = plain
	}
	if an.DashboardUID != "" {
		meta["dashboardUID"] = an.DashboardUID
	}
	if an.PanelID != 0 {
		meta["panelId"] = an.PanelID
	}
	objs := []map[string]any{eventObject(name, events.StateStart, an.Time, attrs, meta)}
	if an.TimeEnd > an.Time {
		objs = append(objs, eventObject(name, events.StateStop, an.TimeEnd, attrs, meta))
	}
	res, err := a.writeObjects(r, org, objs)
	if err != nil {
		return nil, err
	}
	return map[string]any{"message": "Annotation added", "id": res[0].Seq}, nil
}

// eventObject is a change event in the API's JSON form.
func eventObject(name string, st events.State, ms int64, attrs map[string]string, meta map[string]any) map[string]any {
	o := map[string]any{"event_name": name, "event_state": string(st), "timestamp": ms}
	if len(attrs) > 0 {
		o["attributes"] = attrs
	}
	if len(meta) > 0 {
		o["metadata"] = meta
	}
	return o
}

// writeObjects validates events given in the API's JSON form, exactly as the
// change-events API does, and writes them as one request.
func (a *eventsAPI) writeObjects(r *http.Request, org string, objs []map[string]any) ([]events.Result, error) {
	body, err := json.Marshal(objs)
	if err != nil {
		return nil, err
	}
	evs, err := events.Decode(body, a.now(), a.svc.Limits())
	if err != nil {
		return nil, err
	}
	return a.svc.Write(r.Context(), org, evs)
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
		if k, v, ok := splitTag(tag); ok {
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

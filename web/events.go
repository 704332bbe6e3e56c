package web

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/storage"
)

type eventsAPI struct {
	svc *events.Service
	now func() time.Time
}

// writeResponse answers a single event.
type writeResponse struct {
	Message string `json:"message"`
	events.Result
}

// batchResponse answers an array of events.
type batchResponse struct {
	Message string          `json:"message"`
	Events  []events.Result `json:"events"`
}

func (a *eventsAPI) write(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	evs, err := events.Decode(body, a.now(), a.svc.Limits())
	if err != nil {
		return nil, err
	}
	res, err := a.svc.Write(r.Context(), org, evs)
	if err != nil {
		return nil, err
	}
	if trimmed := bytes.TrimSpace(body); trimmed[0] == '[' {
		return batchResponse{Message: "success", Events: res}, nil
	}
	return writeResponse{Message: "success", Result: res[0]}, nil
}

const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

func (a *eventsAPI) list(r *http.Request) (any, error) {
	org, _ := storage.OrgFrom(r.Context())
	if err := r.ParseForm(); err != nil {
		return nil, errorf(http.StatusBadRequest, "cannot parse the query string: "+err.Error())
	}
	q := events.ListQuery{Org: org, Start: 0, End: a.now().Add(24 * time.Hour).UnixMilli(), Limit: defaultListLimit}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"start", &q.Start}, {"end", &q.End}} {
		if v := r.Form.Get(p.name); v != "" {
			ts, err := events.ParseTimestamp(v)
			if err != nil {
				return nil, errorf(http.StatusBadRequest, fmt.Sprintf("parameter %q value %q is not a time; accepted: RFC 3339, or epoch seconds or milliseconds", p.name, v))
			}
			*p.dst = ts
		}
	}
	if v := r.Form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return nil, errorf(http.StatusBadRequest, fmt.Sprintf("parameter \"limit\" value %q is not accepted; accepted: an integer from 1 to %d", v, maxListLimit))
		}
		q.Limit = n
	}
	q.Name = r.Form.Get("event_name")
	q.Cursor = r.Form.Get("cursor")
	if q.Cursor != "" {
		if _, err := events.ParseCursor(q.Cursor); err != nil {
			return nil, errorf(http.StatusBadRequest, "parameter \"cursor\": "+err.Error())
		}
	}
	for _, m := range r.Form["match[]"] {
		ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(m)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, fmt.Sprintf("parameter \"match[]\" value %q is not a selector: %v; accepted: a PromQL selector such as {service=\"checkout\"}", m, err))
		}
		for _, mm := range ms {
			if mm.Name == labels.MetricName {
				continue
			}
			q.Matchers = append(q.Matchers, mm)
		}
	}
	if q.Start > q.End {
		return nil, errorf(http.StatusBadRequest, "parameter \"end\" is before \"start\"")
	}
	return a.svc.List(r.Context(), q)
}

package sources

import (
	"fmt"
	"strings"

	"github.com/tidemark/tidemark/events"
)

// flaggerEvent is Flagger's event webhook payload.
type flaggerEvent struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

const flaggerSource = "flagger event"

// Flagger converts Flagger's event webhook payload: a canary that is
// Progressing opens the event <canary> (labels canary, namespace);
// Succeeded or Failed stops it with phase and outcome (success, failure);
// other phases are ignored. metadata and checksum go to the event's
// metadata; metadata.timestamp (epoch milliseconds) dates the event.
func Flagger(body []byte) (Conversion, error) {
	var fe flaggerEvent
	if err := decodeJSON(flaggerSource, body, &fe); err != nil {
		return Conversion{}, err
	}
	if fe.Name == "" || fe.Namespace == "" {
		return Conversion{}, &PayloadError{Source: flaggerSource, Problem: `fields "name" and "namespace" are required`, Accepted: "Flagger's event webhook payload {name, namespace, phase, metadata}"}
	}
	var ts int64
	if v := fe.Metadata["timestamp"]; v != "" {
		t, err := events.ParseTimestamp(v)
		if err != nil {
			return Conversion{}, &PayloadError{Source: flaggerSource, Field: "metadata.timestamp", Value: fmt.Sprintf("%q", v), Problem: "is not a time", Accepted: "epoch milliseconds or RFC 3339"}
		}
		ts = t
	}
	attrs := map[string]string{"canary": fe.Name, "namespace": fe.Namespace}
	meta := map[string]any{"source": "flagger", "checksum": fe.Checksum}
	for k, v := range fe.Metadata {
		meta[k] = v
	}
	in := events.Input{Name: fe.Name, Time: ts, Attributes: attrs}
	switch phase := strings.ToLower(fe.Phase); phase {
	case "progressing":
		in.State = start
	case "succeeded", "failed":
		in.State = stop
		attrs["phase"] = phase
		attrs["outcome"] = map[string]string{"succeeded": "success", "failed": "failure"}[phase]
	default:
		return ignored("phase %q neither starts nor ends a canary run (Progressing starts, Succeeded and Failed end)", fe.Phase)
	}
	in.Metadata = metadata(meta)
	return Conversion{Events: []events.Input{in}}, nil
}

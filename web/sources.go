package web

import (
	"errors"
	"net/http"

	"github.com/tidemark/tidemark/events"
	"github.com/tidemark/tidemark/sources"
)

// What the webhook receivers share: each hands the payload to its
// conversion in package sources and writes the events as one request, all
// of them or, on any error, none.

// hookAnswer is what a receiver answers.
type hookAnswer struct {
	Message string          `json:"message"`
	Reason  string          `json:"reason,omitempty"`
	Events  []events.Result `json:"events,omitempty"`
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

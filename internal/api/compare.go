package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
)

// ComparePath is the compare endpoint: POST, a JSON body in, the JSON
// envelope out.
const ComparePath = Prefix + "compare"

// maxCompareBody bounds the body of a compare request.
const maxCompareBody = 1 << 20

// Comparer runs a comparison from a request body; internal/gate implements
// it. An error with a method BadRequest() bool that returns true is the
// client's (400 bad_data); a context error is canceled; anything else is
// the backend's (503 unavailable).
type Comparer interface {
	Compare(ctx context.Context, body io.Reader) (any, error)
}

// CompareHandler returns the handler of POST /api/v1/compare, in the same
// envelope and error types as the rest of the API.
func CompareHandler(c Comparer, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &API{logger: logger}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			a.writeError(w, r, http.StatusMethodNotAllowed,
				badData(fmt.Errorf("method %s not allowed, use POST with a JSON body", r.Method)))
			return
		}
		data, err := c.Compare(r.Context(), http.MaxBytesReader(w, r.Body, maxCompareBody))
		if err != nil {
			apiErr := compareError(err)
			if apiErr.typ == errorUnavailable {
				logger.Warn("Comparison failed", "err", err)
			}
			a.respondError(w, r, apiErr)
			return
		}
		a.respond(w, r, data, nil)
	})
}

// compareError maps a Comparer's error to its type.
func compareError(err error) *apiError {
	var bad interface{ BadRequest() bool }
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return badData(fmt.Errorf("request body larger than %d bytes", tooLarge.Limit))
	case errors.As(err, &bad) && bad.BadRequest():
		return badData(err)
	case errors.Is(err, context.Canceled):
		return &apiError{errorCanceled, err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{errorTimeout, err}
	}
	return &apiError{errorUnavailable, err}
}

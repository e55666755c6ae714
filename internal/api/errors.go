package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/prometheus/promql"

	"github.com/spanwatch/spanwatch/internal/query"
)

// errorType is the errorType field of an error response. The values and
// their HTTP status codes are Prometheus's (web/api/v1).
type errorType string

const (
	errorTimeout   errorType = "timeout"
	errorCanceled  errorType = "canceled"
	errorExec      errorType = "execution"
	errorBadData   errorType = "bad_data"
	errorInternal  errorType = "internal"
	errorNotFound  errorType = "not_found"
	errorCostLimit errorType = "cost_limit"
	// errorUnavailable: a backend the request needs is failing.
	errorUnavailable errorType = "unavailable"
)

// statusClientClosedConnection is nginx's non-standard 499, which Prometheus
// answers for a canceled query.
const statusClientClosedConnection = 499

// apiError is an error with the errorType it is reported as.
type apiError struct {
	typ errorType
	err error
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.typ, e.err) }

func (e *apiError) Unwrap() error { return e.err }

// statusCode is the HTTP status Prometheus answers for an error type.
func (t errorType) statusCode() int {
	switch t {
	case errorBadData:
		return http.StatusBadRequest
	case errorExec, errorCostLimit:
		return http.StatusUnprocessableEntity
	case errorCanceled:
		return statusClientClosedConnection
	case errorTimeout, errorUnavailable:
		return http.StatusServiceUnavailable
	case errorNotFound:
		return http.StatusNotFound
	default:
		return http.StatusInternalServerError
	}
}

func badData(err error) *apiError { return &apiError{errorBadData, err} }

// invalidParam reports a parameter that does not parse.
func invalidParam(err error, param string) *apiError {
	return badData(fmt.Errorf("invalid parameter %q: %w", param, err))
}

// execError maps an error from the engine or the storage to its type, as
// Prometheus's returnAPIError does: canceled, timeout, cost limits, storage
// failures (internal), and everything else (too many samples, a failing
// function) an execution error.
func execError(err error) *apiError {
	var (
		canceled      promql.ErrQueryCanceled
		timeout       promql.ErrQueryTimeout
		tooManySeries promql.ErrTooManySeries
		tooManyRead   promql.ErrTooManySamplesRead
		storageErr    promql.ErrStorage
	)
	switch {
	case errors.Is(err, query.ErrMemoryLimit):
		return &apiError{errorUnavailable, err}
	case errors.As(err, &canceled):
		return &apiError{errorCanceled, err}
	case errors.As(err, &timeout):
		return &apiError{errorTimeout, err}
	case errors.As(err, &tooManySeries), errors.As(err, &tooManyRead):
		return &apiError{errorCostLimit, err}
	case errors.As(err, &storageErr):
		return &apiError{errorInternal, err}
	case errors.Is(err, context.Canceled):
		return &apiError{errorCanceled, err}
	}
	return &apiError{errorExec, err}
}

// constructionError maps an error from building a query: a limit above the
// server's ceiling is bad data, running out of time or being canceled while
// waiting for a query slot is a timeout or cancellation, and anything else
// (a parse error, a matrix for a range query) is a bad "query" parameter.
func constructionError(err error) *apiError {
	var (
		ceiling  promql.ErrLimitAboveCeiling
		timeout  promql.ErrQueryTimeout
		canceled promql.ErrQueryCanceled
	)
	switch {
	case errors.As(err, &ceiling):
		return badData(err)
	case errors.As(err, &timeout), errors.As(err, &canceled):
		return execError(err)
	}
	return invalidParam(err, "query")
}

var errBadRuleType = errors.New(`type must be "alert" or "record"`)

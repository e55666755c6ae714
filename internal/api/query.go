package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/stats"
)

// queryData is the data of /query and /query_range.
type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     resultJSON       `json:"result"`
	Stats      stats.QueryStats `json:"stats,omitempty"`
}

// query evaluates an instant query: query, time (default now), timeout,
// limit, lookback_delta, stats.
func (a *API) query(r *http.Request) apiResult {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return fail(invalidParam(err, "limit"))
	}
	ts, err := parseTimeParam(r, "time", a.now())
	if err != nil {
		return fail(invalidParam(err, "time"))
	}
	ctx, cancel, opts, apiErr := a.prepareQuery(r)
	if apiErr != nil {
		return fail(apiErr)
	}
	defer cancel()
	qry, err := a.engine.NewInstantQuery(ctx, a.queryable, opts, r.FormValue("query"), ts)
	if err != nil {
		return fail(constructionError(err))
	}
	return a.exec(ctx, r, qry, limit)
}

// queryRange evaluates a range query: query, start, end, step (all
// required), timeout, limit, lookback_delta, stats.
func (a *API) queryRange(r *http.Request) apiResult {
	limit, err := parseLimit(r.FormValue("limit"))
	if err != nil {
		return fail(invalidParam(err, "limit"))
	}
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return fail(invalidParam(err, "start"))
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return fail(invalidParam(err, "end"))
	}
	if end.Before(start) {
		return fail(invalidParam(errors.New("end timestamp must not be before start time"), "end"))
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return fail(invalidParam(err, "step"))
	}
	if step <= 0 {
		return fail(invalidParam(errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"), "step"))
	}
	if end.Sub(start)/step > maxPointsPerSeries {
		return fail(badData(errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")))
	}
	ctx, cancel, opts, apiErr := a.prepareQuery(r)
	if apiErr != nil {
		return fail(apiErr)
	}
	defer cancel()
	qry, err := a.engine.NewRangeQuery(ctx, a.queryable, opts, r.FormValue("query"), start, end, step)
	if err != nil {
		return fail(constructionError(err))
	}
	return a.exec(ctx, r, qry, limit)
}

// exec runs a built query. The query is closed after the response is
// written (the finalizer), since Close recycles the points it encodes.
func (a *API) exec(ctx context.Context, r *http.Request, qry promql.Query, limit int) apiResult {
	res := qry.Exec(ctx)
	if res.Err != nil {
		qry.Close()
		return fail(execError(res.Err))
	}
	warnings := res.Warnings
	if limit > 0 && truncate(res, limit) {
		warnings = warnings.Add(errors.New("results truncated due to limit"))
	}
	param := r.FormValue("stats")
	if warn := statsParamWarning(param); warn != nil {
		warnings = warnings.Add(warn)
	}
	var qs stats.QueryStats
	if param != "" {
		qs = stats.NewQueryStats(qry.Stats())
	}
	return apiResult{
		data:      &queryData{ResultType: res.Value.Type(), Result: resultJSON{res.Value}, Stats: qs},
		warnings:  warnings,
		finalizer: qry.Close,
	}
}

// withQueryTimeout bounds the request's context by the timeout parameter,
// which must be positive when given. The engine's own timeout applies too.
func withQueryTimeout(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	v := r.FormValue("timeout")
	if v == "" {
		return r.Context(), func() {}, nil
	}
	timeout, err := parseDuration(v)
	if err != nil {
		return nil, nil, invalidParam(err, "timeout")
	}
	if timeout <= 0 {
		return nil, nil, invalidParam(fmt.Errorf("timeout must be positive, got %s", timeout), "timeout")
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	return ctx, cancel, nil
}

// queryOpts are the engine's defaults unless lookback_delta or stats=all
// ask otherwise.
func (a *API) queryOpts(r *http.Request) (promql.QueryOpts, error) {
	perStep := r.FormValue("stats") == "all"
	s := r.FormValue("lookback_delta")
	if s == "" && !perStep {
		return a.defaultOpts(), nil
	}
	var lookback time.Duration // 0: the engine's.
	if s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("error parsing lookback delta duration: %w", err)
		}
		lookback = d
	}
	return promql.NewPrometheusQueryOpts(perStep, lookback, nil), nil
}

// statsParamWarning warns about stats values Prometheus has deprecated; any
// non-empty value still includes the statistics.
func statsParamWarning(s string) error {
	switch s {
	case "", "true", "all":
		return nil
	}
	return fmt.Errorf("value %q for parameter \"stats\" is deprecated and will be rejected in the next major release, use %q or %q", s, "true", "all")
}

// truncate keeps the first limit series of a vector or matrix result and
// reports whether it dropped any.
func truncate(res *promql.Result, limit int) bool {
	switch v := res.Value.(type) {
	case promql.Matrix:
		if len(v) > limit {
			res.Value = v[:limit]
			return true
		}
	case promql.Vector:
		if len(v) > limit {
			res.Value = v[:limit]
			return true
		}
	}
	return false
}

// formatQuery returns the query prettified by the parser.
func (a *API) formatQuery(r *http.Request) apiResult {
	expr, err := a.parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		return fail(invalidParam(err, "query"))
	}
	return apiResult{data: expr.Pretty(0)}
}

// queryExemplars validates its parameters (query, start, end) as Prometheus
// does and returns no exemplars: spanwatch stores none.
func (a *API) queryExemplars(r *http.Request) apiResult {
	start, err := parseTimeParam(r, "start", minTime)
	if err != nil {
		return fail(invalidParam(err, "start"))
	}
	end, err := parseTimeParam(r, "end", maxTime)
	if err != nil {
		return fail(invalidParam(err, "end"))
	}
	if end.Before(start) {
		return fail(badData(errors.New("end timestamp must not be before start timestamp")))
	}
	if _, err := a.parser.ParseExpr(r.FormValue("query")); err != nil {
		return fail(badData(err))
	}
	return apiResult{data: []struct{}{}}
}

// prepareQuery applies the request's timeout and lookback to a query's
// context and options.
func (a *API) prepareQuery(r *http.Request) (context.Context, context.CancelFunc, promql.QueryOpts, *apiError) {
	ctx, cancel, apiErr := withQueryTimeout(r)
	if apiErr != nil {
		return nil, nil, nil, apiErr
	}
	opts, err := a.queryOpts(r)
	if err != nil {
		cancel()
		return nil, nil, nil, badData(err)
	}
	return ctx, cancel, opts, nil
}

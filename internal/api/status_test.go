package api

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/query"
)

func TestMetadata(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	const (
		calls    = `"traces_span_metrics_calls_total":[{"type":"counter","unit":"","help":"Spans counted."}]`
		duration = `"traces_span_metrics_duration_milliseconds":[{"type":"histogram","unit":"milliseconds","help":"Span duration."}`
		other    = `{"type":"histogram","unit":"milliseconds","help":"Other help."}`
	)
	runCases(t, h, "/api/v1/metadata", []apiCase{
		{name: "all", data: `{` + calls + `,` + duration + `,` + other + `]}`},
		{name: "limit", params: url.Values{"limit": {"1"}}, data: `{` + calls + `}`},
		{name: "limit 0", params: url.Values{"limit": {"0"}}, data: `{}`},
		{name: "negative limit", params: url.Values{"limit": {"-1"}}, data: `{` + calls + `,` + duration + `,` + other + `]}`},
		{name: "limit_per_metric", params: url.Values{"limit_per_metric": {"1"}}, data: `{` + calls + `,` + duration + `]}`},
		{name: "metric", params: url.Values{"metric": {"traces_span_metrics_calls_total"}}, data: `{` + calls + `}`},
		{name: "unknown metric", params: url.Values{"metric": {"up"}}, data: `{}`},
		{
			name: "bad limit", params: url.Values{"limit": {"x"}}, code: 400,
			errType: "bad_data", errContains: "limit must be a number",
		},
		{
			name: "bad limit_per_metric", params: url.Values{"limit_per_metric": {"x"}}, code: 400,
			errType: "bad_data", errContains: "limit_per_metric must be a number",
		},
	})

	t.Run("no metadata function", func(t *testing.T) {
		engine, err := query.NewEngine(query.DefaultOptions())
		require.NoError(t, err)
		a, err := New(Options{Engine: engine, Queryable: openFixtureDB(t)})
		require.NoError(t, err)
		mux := http.NewServeMux()
		a.Register(mux)
		rec, env := do(t, mux, http.MethodGet, "/api/v1/metadata", nil)
		require.Equal(t, http.StatusOK, rec.Code)
		require.JSONEq(t, `{}`, string(env.Data))
	})
}

func TestBuildInfo(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	runCases(t, h, "/api/v1/status/buildinfo", []apiCase{{
		name: "fields",
		data: `{"version":"1.2.3","revision":"abc","branch":"main","buildUser":"ci","buildDate":"20240101","goVersion":"go1.26.8"}`,
	}})
}

func TestNew(t *testing.T) {
	engine, err := query.NewEngine(query.DefaultOptions())
	require.NoError(t, err)
	_, err = New(Options{Queryable: openFixtureDB(t)})
	require.ErrorIs(t, err, ErrNoEngine)
	_, err = New(Options{Engine: &query.Engine{}, Queryable: openFixtureDB(t)})
	require.ErrorIs(t, err, ErrNoEngine)
	_, err = New(Options{Engine: engine})
	require.ErrorIs(t, err, ErrNoQueryable)
}

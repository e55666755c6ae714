package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/query"
)

const checkoutServer = `"service_name":"checkout","span_kind":"SPAN_KIND_SERVER","span_name":"GET /cart","status_code":"STATUS_CODE_UNSET"`

// parseErr returns the parser's own message for a query that does not parse.
func parseErr(t *testing.T, q string) string {
	t.Helper()
	_, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	require.Error(t, err)
	return err.Error()
}

type apiCase struct {
	name   string
	params url.Values
	path   string // default: the test's endpoint
	code   int    // default 200
	// On success: the exact data (JSONEq), or substrings of the raw body.
	data     string
	dataLen  int // length of an array result, when data is not given
	contains []string
	warnings []string // substrings, one per warning
	// On error.
	errType     string
	errContains string
}

// runCases runs every case with GET and with a form POST.
func runCases(t *testing.T, h http.Handler, path string, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		for _, method := range bothMethods {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				p := path
				if tc.path != "" {
					p = tc.path
				}
				rec, env := do(t, h, method, p, tc.params)
				code := tc.code
				if code == 0 {
					code = http.StatusOK
				}
				require.Equal(t, code, rec.Code, "body: %s", rec.Body.String())
				require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				if tc.errType != "" {
					require.Equal(t, "error", env.Status)
					require.Equal(t, tc.errType, env.ErrorType)
					require.Contains(t, env.Error, tc.errContains)
					require.Nil(t, env.Data)
					return
				}
				require.Equal(t, "success", env.Status, "body: %s", rec.Body.String())
				require.Empty(t, env.ErrorType)
				if tc.data != "" {
					require.JSONEq(t, tc.data, string(env.Data))
				}
				if tc.dataLen > 0 {
					var items []json.RawMessage
					require.NoError(t, json.Unmarshal(env.Data, &items))
					require.Len(t, items, tc.dataLen)
				}
				for _, s := range tc.contains {
					require.Contains(t, rec.Body.String(), s)
				}
				require.Len(t, env.Warnings, len(tc.warnings), "warnings: %v", env.Warnings)
				for i, w := range tc.warnings {
					require.Contains(t, env.Warnings[i], w)
				}
				if len(tc.warnings) == 0 {
					require.NotContains(t, rec.Body.String(), `"warnings"`)
				}
				require.NotContains(t, rec.Body.String(), `"infos"`)
			})
		}
	}
}

func TestQuery(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	runCases(t, h, "/api/v1/query", []apiCase{
		{
			name:   "vector at default time",
			params: url.Values{"query": {`traces_span_metrics_calls_total{service_name="checkout",span_kind="SPAN_KIND_SERVER"}`}},
			data:   `{"resultType":"vector","result":[{"metric":{"__name__":"traces_span_metrics_calls_total",` + checkoutServer + `},"value":[1704067800,"400"]}]}`,
		},
		{
			name:     "time as RFC 3339",
			params:   url.Values{"query": {`traces_span_metrics_calls_total{service_name="frontend"}`}, "time": {"2024-01-01T00:05:00Z"}},
			contains: []string{`"value":[1704067500,"100"]`},
		},
		{
			name:     "time as fractional unix seconds keeps milliseconds",
			params:   url.Values{"query": {`sum(traces_span_metrics_calls_total{service_name="frontend"})`}, "time": {"1704067500.5"}},
			contains: []string{`"value":[1704067500.500,"100"]`},
		},
		{
			name:     "NaN scalar",
			params:   url.Values{"query": {"0/0"}, "time": {"1704067800"}},
			data:     `{"resultType":"scalar","result":[1704067800,"NaN"]}`,
			contains: []string{`[1704067800,"NaN"]`},
		},
		{
			name:     "+Inf scalar",
			params:   url.Values{"query": {"1/0"}},
			contains: []string{`{"resultType":"scalar","result":[1704067800,"+Inf"]}`},
		},
		{
			name:     "-Inf vector",
			params:   url.Values{"query": {"vector(-1/0)"}},
			contains: []string{`{"resultType":"vector","result":[{"metric":{},"value":[1704067800,"-Inf"]}]}`},
		},
		{
			name:     "small and large floats use exponents as Prometheus does",
			params:   url.Values{"query": {"vector(1e-7) or label_replace(vector(1e21), \"a\", \"b\", \"\", \"\") or label_replace(vector(123456.789), \"a\", \"c\", \"\", \"\")"}},
			contains: []string{`"1e-07"`, `"1e+21"`, `"123456.789"`},
		},
		{
			name:   "string",
			params: url.Values{"query": {`"hello"`}},
			data:   `{"resultType":"string","result":[1704067800,"hello"]}`,
		},
		{
			name:   "raw native histogram",
			params: url.Values{"query": {`traces_span_metrics_duration_milliseconds`}},
			data: `{"resultType":"vector","result":[{"metric":{"__name__":"traces_span_metrics_duration_milliseconds",` + checkoutServer + `},` +
				`"histogram":[1704067800,{"count":"80","sum":"120","buckets":[[0,"0.5","1","40"],[0,"1","2","40"]]}]}]}`,
		},
		{
			name:   "native histogram functions",
			params: url.Values{"query": {`histogram_count(traces_span_metrics_duration_milliseconds) + histogram_sum(traces_span_metrics_duration_milliseconds)`}},
			data:   `{"resultType":"vector","result":[{"metric":{` + checkoutServer + `},"value":[1704067800,"200"]}]}`,
		},
		{
			name:     "histogram_quantile over native histograms",
			params:   url.Values{"query": {`histogram_quantile(0.5, sum(traces_span_metrics_duration_milliseconds))`}},
			contains: []string{`"value":[1704067800,"1"]`},
		},
		{
			name:     "histogram_quantile over classic buckets",
			params:   url.Values{"query": {`histogram_quantile(0.95, sum by (le) (traces_span_metrics_duration_milliseconds_bucket))`}},
			contains: []string{`"value":[1704067800,"600"]`},
		},
		{
			name:     "warnings from the engine",
			params:   url.Values{"query": {`histogram_quantile(2, sum(traces_span_metrics_duration_milliseconds))`}},
			contains: []string{`"value":[1704067800,"+Inf"]`},
			warnings: []string{"quantile value should be between 0 and 1, got 2"},
		},
		{
			name:     "limit truncates",
			params:   url.Values{"query": {`traces_span_metrics_calls_total`}, "limit": {"1"}},
			contains: []string{`"resultType":"vector"`},
			warnings: []string{"results truncated due to limit"},
		},
		{
			name:     "stats",
			params:   url.Values{"query": {`sum(traces_span_metrics_calls_total)`}, "stats": {"true"}},
			contains: []string{`"stats":{"timings":{`, `"samples":{`},
		},
		{
			name:     "deprecated stats value",
			params:   url.Values{"query": {`1`}, "stats": {"yes"}},
			contains: []string{`"stats":{"timings":{`},
			warnings: []string{`value "yes" for parameter "stats" is deprecated`},
		},
		{
			name:   "lookback_delta",
			params: url.Values{"query": {`traces_span_metrics_calls_total`}, "time": {"1704067830"}, "lookback_delta": {"10s"}},
			data:   `{"resultType":"vector","result":[]}`,
		},
		{
			name:   "empty result is []",
			params: url.Values{"query": {`nonexistent_metric`}},
			data:   `{"resultType":"vector","result":[]}`,
		},
		{
			name: "parse error", params: url.Values{"query": {"sum(rate(x[1m]"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "query": ` + parseErr(t, "sum(rate(x[1m]"),
		},
		{
			name: "empty query", params: url.Values{}, code: 400,
			errType: "bad_data", errContains: parseErr(t, ""),
		},
		{
			name: "bad time", params: url.Values{"query": {"1"}, "time": {"yesterday"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "time": invalid time value for 'time': cannot parse "yesterday" to a valid timestamp`,
		},
		{
			name: "bad limit", params: url.Values{"query": {"1"}, "limit": {"-1"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "limit": limit must be non-negative`,
		},
		{
			name: "bad timeout", params: url.Values{"query": {"1"}, "timeout": {"soon"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "timeout": cannot parse "soon" to a valid duration`,
		},
		{
			name: "non-positive timeout", params: url.Values{"query": {"1"}, "timeout": {"0"}}, code: 400,
			errType: "bad_data", errContains: `timeout must be positive`,
		},
		{
			name: "bad lookback_delta", params: url.Values{"query": {"1"}, "lookback_delta": {"far"}}, code: 400,
			errType: "bad_data", errContains: `error parsing lookback delta duration`,
		},
		{
			name: "execution error", params: url.Values{"query": {`label_replace(vector(1), "x", "$1", "y", "(")`}}, code: 422,
			errType: "execution", errContains: "invalid regular expression",
		},
	})
}

func TestQueryRange(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	last5m := func(q, step string) url.Values {
		return url.Values{"query": {q}, "start": {"1704067500"}, "end": {"2024-01-01T00:10:00Z"}, "step": {step}}
	}
	frontendValues := `[[1704067500,"100"],[1704067560,"120"],[1704067620,"140"],[1704067680,"160"],[1704067740,"180"],[1704067800,"200"]]`
	frontend := `{"resultType":"matrix","result":[{"metric":{"__name__":"traces_span_metrics_calls_total","service_name":"frontend","span_kind":"SPAN_KIND_SERVER","span_name":"GET /cart","status_code":"STATUS_CODE_UNSET"},"values":` + frontendValues + `}]}`
	runCases(t, h, "/api/v1/query_range", []apiCase{
		{name: "matrix, step in seconds", params: last5m(`traces_span_metrics_calls_total{service_name="frontend"}`, "60"), data: frontend},
		{name: "matrix, step as duration", params: last5m(`traces_span_metrics_calls_total{service_name="frontend"}`, "1m"), data: frontend},
		{
			name:   "NaN scalar as matrix",
			params: last5m("0/0", "150"),
			data:   `{"resultType":"matrix","result":[{"metric":{},"values":[[1704067500,"NaN"],[1704067650,"NaN"],[1704067800,"NaN"]]}]}`,
		},
		{
			name:   "raw native histograms",
			params: last5m(`traces_span_metrics_duration_milliseconds`, "300"),
			data: `{"resultType":"matrix","result":[{"metric":{"__name__":"traces_span_metrics_duration_milliseconds",` + checkoutServer + `},"histograms":[` +
				`[1704067500,{"count":"40","sum":"60","buckets":[[0,"0.5","1","20"],[0,"1","2","20"]]}],` +
				`[1704067800,{"count":"80","sum":"120","buckets":[[0,"0.5","1","40"],[0,"1","2","40"]]}]]}]}`,
		},
		{
			name:     "11,000 points are allowed",
			params:   url.Values{"query": {"1"}, "start": {"0"}, "end": {"11000"}, "step": {"1"}},
			contains: []string{`[0,"1"],[1,"1"]`, `[11000,"1"]]}]}`},
		},
		{
			name:     "limit truncates",
			params:   url.Values{"query": {`traces_span_metrics_calls_total`}, "start": {"1704067800"}, "end": {"1704067800"}, "step": {"15"}, "limit": {"2"}},
			warnings: []string{"results truncated due to limit"},
		},
		{
			name: "too many points", params: url.Values{"query": {"1"}, "start": {"0"}, "end": {"11001"}, "step": {"1"}}, code: 400,
			errType: "bad_data", errContains: "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
		},
		{
			name: "zero step", params: last5m("1", "0"), code: 400,
			errType: "bad_data", errContains: `invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer`,
		},
		{
			name: "bad step", params: last5m("1", "often"), code: 400,
			errType: "bad_data", errContains: `invalid parameter "step": cannot parse "often" to a valid duration`,
		},
		{
			name: "missing start", params: url.Values{"query": {"1"}, "end": {"10"}, "step": {"1"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "start": cannot parse "" to a valid timestamp`,
		},
		{
			name: "bad end", params: url.Values{"query": {"1"}, "start": {"10"}, "end": {"later"}, "step": {"1"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "end"`,
		},
		{
			name: "end before start", params: url.Values{"query": {"1"}, "start": {"10"}, "end": {"5"}, "step": {"1"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "end": end timestamp must not be before start time`,
		},
		{
			name: "range vector", params: last5m(`traces_span_metrics_calls_total[5m]`, "60"), code: 400,
			errType: "bad_data", errContains: `invalid parameter "query": invalid expression type "range vector" for range query, must be Scalar or instant Vector`,
		},
		{
			name: "parse error", params: last5m(`sum by (le (x)`, "60"), code: 400,
			errType: "bad_data", errContains: parseErr(t, `sum by (le (x)`),
		},
	})
}

func TestQueryLimits(t *testing.T) {
	db := openFixtureDB(t)
	heavy := url.Values{"query": {"traces_span_metrics_calls_total"}, "time": {"1704067800"}}
	heavyRange := url.Values{"query": {"traces_span_metrics_calls_total"}, "start": {"1704067200"}, "end": {"1704067800"}, "step": {"15"}}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	for _, tc := range []struct {
		name        string
		engine      func(*query.Options)
		ctx         context.Context
		params      url.Values
		code        int
		errType     string
		errContains string
	}{
		{
			name:   "engine timeout",
			engine: func(o *query.Options) { o.Timeout = 1 },
			params: heavy, code: 503, errType: "timeout", errContains: "query timed out in",
		},
		{
			name:   "timeout parameter",
			params: url.Values{"query": {"traces_span_metrics_calls_total"}, "timeout": {"0.000000001"}},
			code:   503, errType: "timeout", errContains: "query timed out in",
		},
		{
			name: "canceled request",
			ctx:  canceled, params: heavy, code: 499, errType: "canceled", errContains: "query was canceled in",
		},
		{
			name:   "too many samples",
			engine: func(o *query.Options) { o.MaxSamples = 2 },
			params: heavy, code: 422, errType: "execution", errContains: "query processing would load too many samples into memory",
		},
	} {
		h := newTestHandler(t, db, tc.engine)
		ctx := tc.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		for _, method := range bothMethods {
			for _, ep := range []string{"query", "query_range"} {
				t.Run(tc.name+"/"+ep+"/"+method, func(t *testing.T) {
					params := tc.params
					if ep == "query_range" {
						params = url.Values{}
						for k, v := range heavyRange {
							params[k] = v
						}
						if tc.params.Has("timeout") {
							params.Set("timeout", tc.params.Get("timeout"))
						}
					}
					rec, env := doCtx(t, ctx, h, method, "/api/v1/"+ep, params)
					require.Equal(t, tc.code, rec.Code, "body: %s", rec.Body.String())
					require.Equal(t, "error", env.Status)
					require.Equal(t, tc.errType, env.ErrorType)
					require.Contains(t, env.Error, tc.errContains)
				})
			}
		}
	}
}

func TestFormatQuery(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	const q = `sum(rate(traces_span_metrics_calls_total{service_name="checkout"}[5m])) by (span_name)`
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	require.NoError(t, err)
	runCases(t, h, "/api/v1/format_query", []apiCase{
		{name: "pretty", params: url.Values{"query": {q}}, data: `"sum by (span_name) (rate(traces_span_metrics_calls_total{service_name=\"checkout\"}[5m]))"`},
		{name: "same as the parser's Pretty", params: url.Values{"query": {q}}, data: jsonString(t, expr.Pretty(0))},
		{
			name: "parse error", params: url.Values{"query": {"sum("}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "query": ` + parseErr(t, "sum("),
		},
	})
}

func TestQueryExemplars(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	runCases(t, h, "/api/v1/query_exemplars", []apiCase{
		{name: "none stored", params: url.Values{"query": {`traces_span_metrics_duration_milliseconds_bucket`}, "start": {"1704067200"}, "end": {"1704067800"}}, data: `[]`},
		{name: "no time range", params: url.Values{"query": {`traces_span_metrics_duration_milliseconds_bucket`}}, data: `[]`},
		{
			name: "parse error", params: url.Values{"query": {"rate("}}, code: 400,
			errType: "bad_data", errContains: parseErr(t, "rate("),
		},
		{
			name: "end before start", params: url.Values{"query": {"up"}, "start": {"10"}, "end": {"5"}}, code: 400,
			errType: "bad_data", errContains: "end timestamp must not be before start timestamp",
		},
		{
			name: "bad start", params: url.Values{"query": {"up"}, "start": {"x"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "start"`,
		},
	})
}

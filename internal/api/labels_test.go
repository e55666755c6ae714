package api

import (
	"net/url"
	"testing"
)

func TestSeries(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	calls := func(service, kind string) string {
		return `{"__name__":"traces_span_metrics_calls_total","service_name":"` + service + `","span_kind":"` + kind + `","span_name":"GET /cart","status_code":"STATUS_CODE_UNSET"}`
	}
	runCases(t, h, "/api/v1/series", []apiCase{
		{
			name:   "one selector",
			params: url.Values{"match[]": {`traces_span_metrics_calls_total{service_name="checkout",span_kind="SPAN_KIND_CLIENT"}`}},
			data:   `[` + calls("checkout", "SPAN_KIND_CLIENT") + `]`,
		},
		{
			name: "selectors are merged",
			params: url.Values{"match[]": {
				`traces_span_metrics_calls_total{service_name="frontend"}`,
				`traces_span_metrics_calls_total{span_kind="SPAN_KIND_CLIENT"}`,
				`traces_span_metrics_calls_total{service_name="frontend"}`,
			}, "start": {"1704067200"}, "end": {"2024-01-01T00:10:00Z"}},
			data: `[` + calls("checkout", "SPAN_KIND_CLIENT") + `,` + calls("frontend", "SPAN_KIND_SERVER") + `]`,
		},
		{
			name: "limit",
			// One selector: in storage order, unsorted, as in Prometheus.
			params:   url.Values{"match[]": {`traces_span_metrics_calls_total`}, "limit": {"1"}},
			dataLen:  1,
			warnings: []string{"results truncated due to limit"},
		},
		{name: "outside the time range", params: url.Values{"match[]": {`traces_span_metrics_calls_total`}, "start": {"0"}, "end": {"100"}}, data: `[]`},
		{name: "no match", params: url.Values{"match[]": {`nothing`}}, data: `[]`},
		{
			name: "match[] required", params: url.Values{"start": {"0"}}, code: 400,
			errType: "bad_data", errContains: "no match[] parameter provided",
		},
		{
			name: "empty-matching selector", params: url.Values{"match[]": {`{service_name=~".*"}`}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "match[]": match[] must contain at least one non-empty matcher`,
		},
		{
			name: "bad selector", params: url.Values{"match[]": {`{service_name=}`}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "match[]": ` + parseErr(t, `{service_name=}`),
		},
		{
			name: "bad limit", params: url.Values{"match[]": {`up`}, "limit": {"x"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "limit"`,
		},
		{
			name: "bad end", params: url.Values{"match[]": {`up`}, "end": {"x"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "end": invalid time value for 'end'`,
		},
	})
}

func TestLabelNames(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	runCases(t, h, "/api/v1/labels", []apiCase{
		{name: "all", data: `["__name__","le","service_name","span_kind","span_name","status_code"]`},
		{name: "match[]", params: url.Values{"match[]": {`traces_span_metrics_calls_total`}}, data: `["__name__","service_name","span_kind","span_name","status_code"]`},
		{
			name:   "several match[]",
			params: url.Values{"match[]": {`traces_span_metrics_calls_total`, `traces_span_metrics_duration_milliseconds_bucket`}},
			data:   `["__name__","le","service_name","span_kind","span_name","status_code"]`,
		},
		{name: "outside the time range", params: url.Values{"start": {"0"}, "end": {"100"}}, data: `[]`},
		{name: "limit", params: url.Values{"limit": {"2"}}, data: `["__name__","le"]`, warnings: []string{"results truncated due to limit"}},
		{
			name: "bad selector", params: url.Values{"match[]": {`{a=`}}, code: 400,
			errType: "bad_data", errContains: parseErr(t, `{a=`),
		},
		{
			name: "bad start", params: url.Values{"start": {"x"}}, code: 400,
			errType: "bad_data", errContains: `invalid parameter "start"`,
		},
	})
}

func TestLabelValues(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	runCases(t, h, "", []apiCase{
		{name: "service_name", path: "/api/v1/label/service_name/values", data: `["checkout","frontend"]`},
		{
			name: "__name__", path: "/api/v1/label/__name__/values",
			data: `["traces_span_metrics_calls_total","traces_span_metrics_duration_milliseconds","traces_span_metrics_duration_milliseconds_bucket","traces_span_metrics_duration_milliseconds_count","traces_span_metrics_duration_milliseconds_sum"]`,
		},
		{name: "U__ escaped name", path: "/api/v1/label/U__service__name/values", data: `["checkout","frontend"]`},
		{
			name: "match[]", path: "/api/v1/label/span_kind/values",
			params: url.Values{"match[]": {`traces_span_metrics_calls_total{service_name="checkout"}`}},
			data:   `["SPAN_KIND_CLIENT","SPAN_KIND_SERVER"]`,
		},
		{
			name: "several match[]", path: "/api/v1/label/service_name/values",
			params: url.Values{"match[]": {`{span_kind="SPAN_KIND_CLIENT"}`, `{service_name="frontend"}`}},
			data:   `["checkout","frontend"]`,
		},
		{
			name: "limit", path: "/api/v1/label/service_name/values", params: url.Values{"limit": {"1"}},
			data: `["checkout"]`, warnings: []string{"results truncated due to limit"},
		},
		{name: "unknown label", path: "/api/v1/label/nope/values", data: `[]`},
		{name: "outside the time range", path: "/api/v1/label/service_name/values", params: url.Values{"end": {"100"}}, data: `[]`},
		{
			name: "invalid label name", path: "/api/v1/label/%FF/values", code: 400,
			errType: "bad_data", errContains: `invalid label name: "\xff"`,
		},
		{
			name: "bad selector", path: "/api/v1/label/service_name/values", params: url.Values{"match[]": {`{service_name=""}`}}, code: 400,
			errType: "bad_data", errContains: "match[] must contain at least one non-empty matcher",
		},
	})
}

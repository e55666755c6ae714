package api

import (
	"context"
	"flag"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// jaegerLatencyQuery is what the Jaeger Monitor tab sends for the P95
// latency of the checkout service's server spans (normalize_duration and
// normalize_calls set, OpenTelemetry Collector ≥ 0.109 metric names).
const jaegerLatencyQuery = `histogram_quantile(0.95, sum(rate(traces_span_metrics_duration_milliseconds_bucket{service_name =~ "checkout", span_kind =~ "SPAN_KIND_SERVER"}[1m])) by (service_name,le))`

// TestJaegerMonitorGolden replays the Jaeger Monitor tab's request: a form
// POST to /api/v1/query_range, as client_golang's DoGetFallback sends it
// (start and end as unix seconds, step in seconds), and compares the whole
// body with a golden file. The classic histogram grows for the first five
// minutes and then stops: the quantile is 600 ms while it grows and NaN
// (no observations in the window) after.
func TestJaegerMonitorGolden(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	form := url.Values{
		"query": {jaegerLatencyQuery},
		"start": {"1704067200"},
		"end":   {"1704067800"},
		"step":  {"60"},
	}
	req := httptest.NewRequest(http.MethodPost, "/api/v1/query_range", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))

	body := rec.Body.String()
	require.Contains(t, body, `"resultType":"matrix"`)
	require.Contains(t, body, `"metric":{"service_name":"checkout"}`)
	require.Contains(t, body, `[1704067260,"600"]`)
	require.Contains(t, body, `[1704067560,"NaN"]`)
	require.NotContains(t, body, "warnings")

	golden := filepath.Join("testdata", "jaeger_query_range.golden.json")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, rec.Body.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run with -update to create it")
	require.Equal(t, string(want), body)
}

// TestJaegerMonitorClient reads the same range through client_golang's API
// client, the library Jaeger's metrics reader queries Prometheus with: it
// POSTs, accepts gzip, and decodes "NaN" into a float.
func TestJaegerMonitorClient(t *testing.T) {
	h := newTestHandler(t, openFixtureDB(t), nil)
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method+" "+r.Header.Get("Content-Type")+" "+r.Header.Get("Accept-Encoding"))
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	client, err := promapi.NewClient(promapi.Config{Address: srv.URL, RoundTripper: srv.Client().Transport})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, warnings, infos, err := promv1.NewAPI(client).QueryRange(ctx, jaegerLatencyQuery, promv1.Range{
		Start: t0, End: fixNow, Step: time.Minute,
	})
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.Empty(t, infos)
	require.Equal(t, []string{"POST application/x-www-form-urlencoded gzip"}, methods)

	m, ok := v.(model.Matrix)
	require.True(t, ok, "got %T", v)
	require.Len(t, m, 1)
	require.Equal(t, model.Metric{"service_name": "checkout"}, m[0].Metric)
	require.Len(t, m[0].Values, 10) // t0 has no rate: one sample in its window.
	for _, p := range m[0].Values {
		if p.Timestamp.Time().After(t0.Add(5 * time.Minute)) {
			require.True(t, math.IsNaN(float64(p.Value)), "at %s: %v", p.Timestamp, p.Value)
		} else {
			require.InDelta(t, 600, float64(p.Value), 1e-9, "at %s", p.Timestamp)
		}
	}

	// Native histograms decode too.
	v, _, _, err = promv1.NewAPI(client).Query(ctx, `traces_span_metrics_duration_milliseconds`, fixNow)
	require.NoError(t, err)
	vec, ok := v.(model.Vector)
	require.True(t, ok, "got %T", v)
	require.Len(t, vec, 1)
	require.NotNil(t, vec[0].Histogram)
	require.InDelta(t, 80, float64(vec[0].Histogram.Count), 0)
	require.Len(t, vec[0].Histogram.Buckets, 2)
}

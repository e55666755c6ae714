package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

// TestRealPrometheusScrape has a real Prometheus with native histograms
// enabled scrape two spanwatch instances, one with classic buckets only and
// one with the default config (native histograms beside the classic
// buckets), and checks the values it stored.
func TestRealPrometheusScrape(t *testing.T) {
	testutil.Binary(t, "prometheus")
	classicCfg := config.Default()
	classicCfg.SpanMetrics.MetricsFlushInterval = 200 * time.Millisecond
	classicCfg.SpanMetrics.Histogram.Exponential.Enabled = false
	nativeCfg := config.Default()
	nativeCfg.SpanMetrics.MetricsFlushInterval = 200 * time.Millisecond
	classic, native := startApp(t, classicCfg), startApp(t, nativeCfg)

	// 1000 spans of 1…100 ms, ten of each.
	load := func(service string) []spantest.Stub {
		var out []spantest.Stub
		for i := range 1000 {
			out = append(out, spantest.Stub{Service: service, Name: "GET /items", Kind: trace.SpanKindServer, Dur: time.Duration(i%100+1) * time.Millisecond})
		}
		return out
	}
	ctx := context.Background()
	require.NoError(t, exporters(t, classic)["grpc+gzip"].ExportSpans(ctx, spantest.Spans(load("classic")...)))
	require.NoError(t, exporters(t, native)["grpc+gzip"].ExportSpans(ctx, spantest.Spans(load("native")...)))

	prom := testutil.StartPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 500ms
scrape_configs:
  - job_name: spanwatch
    static_configs:
      - targets: [%q, %q]
`, classic.MetricsAddr().String(), native.MetricsAddr().String()), "--enable-feature=native-histograms")

	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	const wait = 30 * time.Second
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_calls_total{exported_job="classic"})`, wait, eq(1000))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_calls_total{exported_job="native"})`, wait, eq(1000))
	// Classic buckets: ≤10 ms holds 1…10 ms, 100 spans; ≤50 ms 500.
	// Prometheus writes le="10.0" for buckets scraped in protobuf and
	// le="10" for text, hence the regular expressions.
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_bucket{exported_job="classic",le=~"10(\\.0)?"})`, wait, eq(100))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_bucket{exported_job="classic",le=~"50(\\.0)?"})`, wait, eq(500))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_count{exported_job="classic"})`, wait, eq(1000))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_sum{exported_job="classic"})`, wait, eq(50500))
	// Native histograms arrive through the protobuf exposition.
	testutil.Eventually(t, prom.URL, `histogram_count(sum(traces_span_metrics_duration_milliseconds{exported_job="native"}))`, wait, eq(1000))
	testutil.Eventually(t, prom.URL, `histogram_sum(sum(traces_span_metrics_duration_milliseconds{exported_job="native"}))`, wait, eq(50500))
	p50 := testutil.Eventually(t, prom.URL, `histogram_quantile(0.5, sum(traces_span_metrics_duration_milliseconds{exported_job="native"}))`, wait,
		func(v float64) bool { return !math.IsNaN(v) })
	require.InEpsilon(t, 50, p50, 0.1, "native P50 within a bucket width (schema 3: 9 %%)")
	// Such a Prometheus keeps only the native histogram of a histogram that
	// has both, unless its scrape config says otherwise
	// (scrape_classic_histograms in 2.45+, always_scrape_classic_histograms
	// in 3.x): the native instance's classic series are not stored.
	testutil.Eventually(t, prom.URL, `absent(traces_span_metrics_duration_milliseconds_bucket{exported_job="native"})`, wait, eq(1))
	testutil.Eventually(t, prom.URL, `absent(traces_span_metrics_duration_milliseconds_count{exported_job="native"})`, wait, eq(1))
}

// TestRealPrometheusScrapeWithoutNativeFeature has a real Prometheus 2.x
// started without --enable-feature=native-histograms scrape spanwatch with
// the default config (native histograms on): it negotiates a text format,
// gets the classic series only, stores every sample it scraped and reports
// no scrape problem.
func TestRealPrometheusScrapeWithoutNativeFeature(t *testing.T) {
	testutil.Binary(t, "prometheus")
	cfg := config.Default()
	require.True(t, cfg.SpanMetrics.Histogram.Exponential.Enabled, "native histograms are on by default")
	cfg.SpanMetrics.MetricsFlushInterval = 200 * time.Millisecond
	a := startApp(t, cfg)
	// 1000 spans of 1…100 ms, ten of each.
	var stubs []spantest.Stub
	for i := range 1000 {
		stubs = append(stubs, spantest.Stub{Service: "svc", Name: "GET /items", Kind: trace.SpanKindServer, Dur: time.Duration(i%100+1) * time.Millisecond})
	}
	require.NoError(t, exporters(t, a)["grpc+gzip"].ExportSpans(context.Background(), spantest.Spans(stubs...)))

	prom := testutil.StartPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 500ms
scrape_configs:
  - job_name: spanwatch
    static_configs:
      - targets: [%q]
`, a.MetricsAddr().String()))

	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	const wait = 30 * time.Second
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_calls_total)`, wait, eq(1000))
	// The classic buckets, as the connector's queries read them. Text
	// formats write le="10.0" (OpenMetrics) or le="10" (0.0.4).
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_bucket{le=~"10(\\.0)?"})`, wait, eq(100))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_bucket{le=~"50(\\.0)?"})`, wait, eq(500))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_bucket{le="+Inf"})`, wait, eq(1000))
	testutil.Eventually(t, prom.URL, `count(traces_span_metrics_duration_milliseconds_bucket)`, wait, eq(17))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_count)`, wait, eq(1000))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_sum)`, wait, eq(50500))
	testutil.Eventually(t, prom.URL, `histogram_quantile(0.5, sum by (le) (traces_span_metrics_duration_milliseconds_bucket))`, wait, eq(50))
	// No native histogram reached this Prometheus.
	testutil.Eventually(t, prom.URL, `absent(traces_span_metrics_duration_milliseconds)`, wait, eq(1))

	// Every scrape succeeded and every sample scraped was stored: calls,
	// 17 buckets, _sum and _count.
	testutil.Eventually(t, prom.URL, `min_over_time(up{job="spanwatch"}[1m])`, wait, eq(1))
	testutil.Eventually(t, prom.URL, `max_over_time(scrape_samples_scraped{job="spanwatch"}[1m])`, wait, eq(20))
	testutil.Eventually(t, prom.URL, `min_over_time(scrape_samples_post_metric_relabeling{job="spanwatch"}[1m])`, wait, eq(20))
	testutil.Eventually(t, prom.URL, `count({job="spanwatch",__name__!~"up|scrape_.+"})`, wait, eq(20))
	resp, err := http.Get(prom.URL + "/api/v1/targets")
	require.NoError(t, err)
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&targets))
	resp.Body.Close()
	require.Len(t, targets.Data.ActiveTargets, 1)
	require.Equal(t, "up", targets.Data.ActiveTargets[0].Health)
	require.Empty(t, targets.Data.ActiveTargets[0].LastError)
	// Prometheus's own counters of samples it refused while scraping.
	resp, err = http.Get(prom.URL + "/metrics")
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	checked := 0
	for name, f := range fams {
		if !strings.HasPrefix(name, "prometheus_target_scrapes_") || name == "prometheus_target_scrapes_cache_flush_forced_total" {
			continue
		}
		checked++
		for _, m := range f.GetMetric() {
			require.Zero(t, m.GetCounter().GetValue(), name)
		}
	}
	require.GreaterOrEqual(t, checked, 5, "sample limit, out of order, out of bounds, duplicate timestamp, …")
}

// TestPromtoolCheckMetrics lints the exposition with promtool. The only
// finding allowed is the one the compatible names force: a histogram in
// milliseconds, which promtool would like in seconds.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testutil.Binary(t, "promtool")
	f, err := config.Parse(testutil.RecipeConfig(t, spanmetrics.NamingLegacy), "recipe.yaml")
	require.NoError(t, err)
	seconds := config.Default()
	seconds.SpanMetrics.Histogram.Unit = spanmetrics.UnitSeconds
	for name, cfg := range map[string]*config.File{"default": config.Default(), "recipe legacy": f, "seconds": seconds} {
		t.Run(name, func(t *testing.T) {
			a := startApp(t, cfg)
			require.NoError(t, exporters(t, a)["http"].ExportSpans(context.Background(), spantest.Spans(
				spantest.Stub{Service: "s", Name: "a", Dur: time.Millisecond, Kind: trace.SpanKindServer},
				spantest.Stub{Service: "s", Name: "b", Dur: time.Second})))
			flushTwice(a)
			resp, err := http.Get("http://" + a.MetricsAddr().String() + "/metrics")
			require.NoError(t, err)
			text, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = bytes.NewReader(text)
			out, err := cmd.CombinedOutput()
			if name == "default" {
				require.Equal(t, "traces_span_metrics_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"\n", string(out))
				return
			}
			require.NoError(t, err, "promtool check metrics:\n%s\non:\n%s", out, text)
		})
	}
}

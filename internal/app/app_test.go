package app_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The OpenTelemetry SDK's and grpc-go's background goroutines end
		// asynchronously after Shutdown.
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// startApp runs spanwatch on loopback ports with cfg.
var startApp = spantest.StartApp

type exporter interface {
	ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error
	Shutdown(context.Context) error
}

func exporters(t *testing.T, a *app.App) map[string]exporter {
	ctx := context.Background()
	g, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr().String()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithCompressor("gzip"), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	require.NoError(t, err)
	h, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.OTLPHTTPAddr().String()), otlptracehttp.WithInsecure(),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	require.NoError(t, err)
	hp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(a.OTLPHTTPAddr().String()), otlptracehttp.WithInsecure(),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	require.NoError(t, err)
	exps := map[string]exporter{"grpc+gzip": g, "http+gzip": h, "http": hp}
	t.Cleanup(func() {
		for _, e := range exps {
			_ = e.Shutdown(context.Background())
		}
	})
	return exps
}

// scrape fetches the exposition and returns its families by name.
func scrape(t *testing.T, a *app.App) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + a.MetricsAddr().String() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func matches(m *dto.Metric, want map[string]string) bool {
	l := labelMap(m)
	for k, v := range want {
		if l[k] != v {
			return false
		}
	}
	return true
}

func sumCounter(f *dto.MetricFamily, want map[string]string) float64 {
	var n float64
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		if matches(m, want) {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// flushTwice flushes so that new series, first exposed at zero, show
// their counts.
func flushTwice(a *app.App) {
	a.Flush()
	a.Flush()
}

func TestSDKExportersEndToEnd(t *testing.T) {
	a := startApp(t, nil)
	ctx := context.Background()
	total := 0
	for name, e := range exporters(t, a) {
		var batch []spantest.Stub
		for i := range 100 {
			batch = append(batch, spantest.Stub{Service: "checkout", Name: "POST /charge " + name, Kind: trace.SpanKindServer,
				Dur: time.Duration(i%10+1) * time.Millisecond, Res: []attribute.KeyValue{attribute.String("service.version", "v1")}})
		}
		require.NoError(t, e.ExportSpans(ctx, spantest.Spans(batch...)), name)
		total += len(batch)
	}
	flushTwice(a)
	fams := scrape(t, a)
	calls := fams["traces_span_metrics_calls_total"]
	require.NotNil(t, calls)
	require.Equal(t, float64(total), sumCounter(calls, nil))
	for name := range exporters(t, a) {
		require.Equal(t, 100.0, sumCounter(calls, map[string]string{
			"service_name": "checkout", "span_name": "POST /charge " + name, "span_kind": "SPAN_KIND_SERVER",
			"status_code": "STATUS_CODE_UNSET", "service_version": "v1", "job": "checkout",
		}), name)
	}
	require.Equal(t, float64(total), counterValue(t, a.Registry(), "spanwatch_ingest_spans_accepted_total", nil))
}

// TestDurationsLandInExpectedBuckets sends spans with durations on and
// around bucket bounds and checks every cumulative bucket.
func TestDurationsLandInExpectedBuckets(t *testing.T) {
	a := startApp(t, nil)
	durs := map[time.Duration]int{ // duration → spans
		0: 1, 2 * time.Millisecond: 2, 2*time.Millisecond + time.Microsecond: 3, 50 * time.Millisecond: 4,
		999 * time.Millisecond: 5, 15 * time.Second: 6, 20 * time.Second: 7,
	}
	var batch []spantest.Stub
	for d, n := range durs {
		for range n {
			batch = append(batch, spantest.Stub{Service: "svc", Name: "op", Kind: trace.SpanKindClient, Dur: d})
		}
	}
	require.NoError(t, exporters(t, a)["grpc+gzip"].ExportSpans(context.Background(), spantest.Spans(batch...)))
	flushTwice(a)
	h := scrape(t, a)["traces_span_metrics_duration_milliseconds"]
	require.NotNil(t, h)
	require.Len(t, h.GetMetric(), 1)
	hist := h.GetMetric()[0].GetHistogram()
	got := map[float64]uint64{}
	for _, b := range hist.GetBucket() {
		got[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	require.Equal(t, map[float64]uint64{
		2: 3, 4: 6, 6: 6, 8: 6, 10: 6, 50: 10, 100: 10, 200: 10, 400: 10, 800: 10, 1000: 15,
		1400: 15, 2000: 15, 5000: 15, 10000: 15, 15000: 21, math.Inf(1): 28,
	}, got)
	require.Equal(t, uint64(28), hist.GetSampleCount())
	require.InDelta(t, 2*2+3*2.001+4*50+5*999+6*15000+7*20000, hist.GetSampleSum(), 1e-6)
}

func TestRecipeConnectorBlockLegacyNaming(t *testing.T) {
	f, err := config.Parse(testutil.RecipeConfig(t, spanmetrics.NamingLegacy), "recipe.yaml")
	require.NoError(t, err)
	a := startApp(t, f)
	require.NoError(t, exporters(t, a)["http"].ExportSpans(context.Background(), spantest.Spans(
		spantest.Stub{Service: "frontend", Name: "GET /", Kind: trace.SpanKindServer, Status: codes.Error, Dur: 30 * time.Millisecond,
			Attrs: []attribute.KeyValue{attribute.Int("http.status_code", 500)},
			Res:   []attribute.KeyValue{attribute.String("k8s.deployment.name", "frontend"), attribute.String("k8s.namespace", "shop")}},
	)))
	flushTwice(a)
	fams := scrape(t, a)
	calls := fams["jaeger_spm_calls_total"]
	require.NotNil(t, calls, "families: %v", keys(fams))
	require.Len(t, calls.GetMetric(), 1)
	require.Equal(t, map[string]string{
		"service_name": "frontend", "operation": "GET /", "span_kind": "SPAN_KIND_SERVER", "status_code": "STATUS_CODE_ERROR",
		"cluster": "production", "http_method": "GET", "http_status_code": "500", "k8s_deployment_name": "frontend",
		"k8s_namespace": "shop", "job": "frontend",
	}, labelMap(calls.GetMetric()[0]))
	lat := fams["jaeger_spm_latency"]
	require.NotNil(t, lat)
	var bounds []float64
	for _, b := range lat.GetMetric()[0].GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	require.Equal(t, []float64{2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.Inf(1)}, bounds)
}

func TestUnknownServiceAndOverflow(t *testing.T) {
	f := config.Default()
	f.SpanMetrics.AggregationCardinalityLimit = 5
	a := startApp(t, f)
	var batch []spantest.Stub
	for i := range 20 {
		batch = append(batch, spantest.Stub{Name: fmt.Sprint("op", i)})
	}
	require.NoError(t, exporters(t, a)["grpc+gzip"].ExportSpans(context.Background(), spantest.Spans(batch...)))
	flushTwice(a)
	calls := scrape(t, a)["traces_span_metrics_calls_total"]
	require.Equal(t, 20.0, sumCounter(calls, nil))
	require.Equal(t, 5.0, sumCounter(calls, map[string]string{"service_name": "unknown_service"}))
	require.Equal(t, 15.0, sumCounter(calls, map[string]string{"otel_metric_overflow": "true"}))
}

func TestNewSeriesAreExposedAtZeroFirst(t *testing.T) {
	a := startApp(t, nil)
	require.NoError(t, exporters(t, a)["http"].ExportSpans(context.Background(), spantest.Spans(spantest.Stub{Service: "s", Name: "a"})))
	snap := a.Flush()
	require.Len(t, snap.Series, 1)
	require.Equal(t, uint64(1), snap.Series[0].Count, "the snapshot holds every acknowledged span")
	calls := scrape(t, a)["traces_span_metrics_calls_total"]
	require.Len(t, calls.GetMetric(), 1)
	require.Zero(t, calls.GetMetric()[0].GetCounter().GetValue())
	a.Flush()
	require.Equal(t, 1.0, sumCounter(scrape(t, a)["traces_span_metrics_calls_total"], nil))
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func counterValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := g.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == name {
			return sumCounter(f, want)
		}
	}
	return 0
}

// TestMalformedRequests sends bad requests over both protocols and checks
// the answer, the rejection metric, and that nothing was counted.
func TestMalformedRequests(t *testing.T) {
	a := startApp(t, nil, func(o *app.Options) { o.Ingest.MaxRequestBytes = 64 << 10 })
	url := "http://" + a.OTLPHTTPAddr().String() + "/v1/traces"
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(b)
		_ = w.Close()
		return buf.Bytes()
	}
	bomb := gz(make([]byte, 1<<20)) // 1 MiB of zeros, limit is 64 KiB
	cases := []struct {
		name, method, ct, enc string
		body                  []byte
		code                  int
		reason                string
	}{
		{"GET", http.MethodGet, "application/x-protobuf", "", nil, 405, "method"},
		{"text/plain", http.MethodPost, "text/plain", "", []byte("x"), 415, "content_type"},
		{"no content type", http.MethodPost, "", "", []byte("x"), 415, "content_type"},
		{"garbage protobuf", http.MethodPost, "application/x-protobuf", "", []byte{0x0a, 0x05, 0x01}, 400, "decode"},
		{"garbage json", http.MethodPost, "application/json", "", []byte("{not json"), 400, "decode"},
		{"not gzip", http.MethodPost, "application/x-protobuf", "gzip", []byte("plain"), 400, "decode"},
		{"truncated gzip", http.MethodPost, "application/x-protobuf", "gzip", gz([]byte("0123456789"))[:15], 400, "decode"},
		{"brotli", http.MethodPost, "application/x-protobuf", "br", []byte("x"), 415, "content_encoding"},
		{"too large", http.MethodPost, "application/x-protobuf", "", make([]byte, 65<<10), 413, "too_large"},
		{"gzip bomb", http.MethodPost, "application/x-protobuf", "gzip", bomb, 413, "too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := counterValue(t, a.Registry(), "spanwatch_ingest_rejected_requests_total", map[string]string{"protocol": "http", "reason": tc.reason})
			req, err := http.NewRequest(tc.method, url, bytes.NewReader(tc.body))
			require.NoError(t, err)
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			if tc.enc != "" {
				req.Header.Set("Content-Encoding", tc.enc)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode, "body: %s", body)
			require.NotEmpty(t, body, "a rejection carries a Status message")
			after := counterValue(t, a.Registry(), "spanwatch_ingest_rejected_requests_total", map[string]string{"protocol": "http", "reason": tc.reason})
			require.Equal(t, before+1, after)
		})
	}
	t.Run("json error body is a Status", func(t *testing.T) {
		resp, err := http.Post(url, "application/json", strings.NewReader("[]"))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 400, resp.StatusCode)
		require.Contains(t, string(body), `"message"`)
		require.Contains(t, string(body), `"code":3`)
	})
	testMalformedGRPC(t, a)
	snap := a.Flush()
	require.Empty(t, snap.Series, "rejected requests count nothing")
}

func TestOTLPJSON(t *testing.T) {
	a := startApp(t, nil)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "json-svc")
	for i := range 7 {
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName("op")
		sp.SetKind(ptrace.SpanKindConsumer)
		now := time.Now()
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Millisecond)))
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	require.NoError(t, err)
	var gzBody bytes.Buffer
	zw := gzip.NewWriter(&gzBody)
	_, _ = zw.Write(body)
	require.NoError(t, zw.Close())
	for _, gz := range []bool{false, true} {
		req, err := http.NewRequest(http.MethodPost, "http://"+a.OTLPHTTPAddr().String()+"/v1/traces", bytes.NewReader(body))
		require.NoError(t, err)
		if gz {
			req.Body = io.NopCloser(bytes.NewReader(gzBody.Bytes()))
			req.ContentLength = int64(gzBody.Len())
			req.Header.Set("Content-Encoding", "gzip")
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.Equal(t, "{}", string(out))
	}
	flushTwice(a)
	require.Equal(t, 14.0, sumCounter(scrape(t, a)["traces_span_metrics_calls_total"],
		map[string]string{"service_name": "json-svc", "span_kind": "SPAN_KIND_CONSUMER"}))
}

// TestMetricsCreatedTimestamps: with the option, a new series' counts are
// on /metrics after one flush for OpenMetrics (with _created lines), while
// the text format still shows it at zero first.
func TestMetricsCreatedTimestamps(t *testing.T) {
	a := startApp(t, nil, func(o *app.Options) { o.MetricsCreatedTimestamps = true })
	require.NoError(t, exporters(t, a)["http"].ExportSpans(context.Background(), spantest.Spans(
		spantest.Stub{Service: "s", Name: "a", Dur: time.Millisecond, Kind: trace.SpanKindServer})))
	a.Flush()
	get := func(accept string) string {
		req, err := http.NewRequest(http.MethodGet, "http://"+a.MetricsAddr().String()+"/metrics", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	om := get("application/openmetrics-text;version=1.0.0")
	require.Regexp(t, `(?m)^traces_span_metrics_calls_total\{[^}]*service_name="s"[^}]*\} 1\.0$`, om)
	require.Contains(t, om, "traces_span_metrics_calls_created{")
	require.Equal(t, 0.0, sumCounter(scrape(t, a)["traces_span_metrics_calls_total"], map[string]string{"service_name": "s"}), "text: zero first")
}

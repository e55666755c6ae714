package app_test

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
)

// invalidUTF8Traces has invalid UTF-8 in every string that becomes a label
// value: span name, service.name, service.namespace, service.instance.id,
// a span attribute and a resource attribute used as dimensions, and a
// resource attribute that only target_info shows.
func invalidUTF8Traces(tag string) ptrace.Traces {
	bad := func(s string) string { return s + "\xff\xfe" + tag + "\xc3" }
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", bad("svc"))
	ra.PutStr("service.namespace", bad("ns"))
	ra.PutStr("service.instance.id", bad("inst"))
	ra.PutStr("service.version", bad("v"))
	ra.PutStr("k8s.namespace", bad("prod"))
	ra.PutStr("host.name", bad("host"))
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName(bad("GET /\x80"))
	sp.SetKind(ptrace.SpanKindServer)
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(3 * time.Millisecond)))
	sp.Attributes().PutStr("http.method", bad("GET"))
	return td
}

// TestInvalidUTF8IsReplacedAndScrapeParses sends invalid UTF-8 in every
// label source over OTLP/HTTP protobuf and JSON: the exposition stays
// valid (promtool check metrics), the invalid sequences show as U+FFFD,
// and the replacements are counted.
func TestInvalidUTF8IsReplacedAndScrapeParses(t *testing.T) {
	promtool := testutil.Binary(t, "promtool")
	cfg := config.Default()
	cfg.SpanMetrics.Dimensions = []spanmetrics.Dimension{{Name: "http.method"}, {Name: "k8s.namespace"}}
	a := startApp(t, cfg)
	url := "http://" + a.OTLPHTTPAddr().String() + "/v1/traces"

	protoBody, err := ptraceotlp.NewExportRequestFromTraces(invalidUTF8Traces("p")).MarshalProto()
	require.NoError(t, err)
	// pdata's JSON marshaler would not write invalid UTF-8; a hostile
	// client writes it raw.
	jsonBody := []byte("{\"resourceSpans\":[{\"resource\":{\"attributes\":[" +
		"{\"key\":\"service.name\",\"value\":{\"stringValue\":\"svc\xff\xfej\xc3\"}}," +
		"{\"key\":\"host.name\",\"value\":{\"stringValue\":\"host\xffj\"}}]}," +
		"\"scopeSpans\":[{\"spans\":[{\"name\":\"GET /\x80j\",\"kind\":2," +
		"\"attributes\":[{\"key\":\"http.method\",\"value\":{\"stringValue\":\"G\xe2\x82ET\"}}]}]}]}]}")
	for ct, body := range map[string][]byte{"application/x-protobuf": protoBody, "application/json": jsonBody} {
		resp, err := http.Post(url, ct, bytes.NewReader(body))
		require.NoError(t, err)
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", ct, out)
	}
	flushTwice(a)

	resp, err := http.Get("http://" + a.MetricsAddr().String() + "/metrics")
	require.NoError(t, err)
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.True(t, utf8.Valid(text), "exposition is valid UTF-8")
	// Each run of invalid bytes is one U+FFFD.
	for _, want := range []string{
		"service_name=\"svc\uFFFDp\uFFFD\"", "span_name=\"GET /\uFFFDp\uFFFD\"", "http_method=\"GET\uFFFDp\uFFFD\"",
		"k8s_namespace=\"prod\uFFFDp\uFFFD\"", "service_version=\"v\uFFFDp\uFFFD\"",
		"job=\"ns\uFFFDp\uFFFD/svc\uFFFDp\uFFFD\"", "instance=\"inst\uFFFDp\uFFFD\"", "host_name=\"host\uFFFDp\uFFFD\"",
		"service_name=\"svc\uFFFDj\uFFFD\"", "span_name=\"GET /\uFFFDj\"", "http_method=\"G\uFFFDET\"", "host_name=\"host\uFFFDj\"",
	} {
		require.Contains(t, string(text), want)
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	// The one finding the compatible names force (see TestPromtoolCheckMetrics).
	require.Equal(t, "traces_span_metrics_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"\n", string(out), "on:\n%s", text)
	require.Error(t, err)

	// Protobuf: span name, service.name, service.namespace,
	// service.instance.id, service.version, k8s.namespace, http.method.
	// JSON: span name, service.name, http.method. host.name reaches only
	// target_info and is not counted.
	require.Equal(t, 10.0, counterValue(t, a.Registry(), "spanwatch_spanmetrics_invalid_utf8_values_total", nil))
}

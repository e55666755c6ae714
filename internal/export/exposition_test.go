package export

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

func snapshotWith(t *testing.T, native bool, durs ...time.Duration) (*spanmetrics.Aggregator, *spanmetrics.Snapshot) {
	t.Helper()
	cfg := spanmetrics.DefaultConfig()
	cfg.Histogram.Exponential.Enabled = native
	a, err := spanmetrics.New(cfg, spanmetrics.Options{})
	require.NoError(t, err)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	rs.Resource().Attributes().PutStr("service.instance.id", "i-1")
	rs.Resource().Attributes().PutStr("host.name", "h1")
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Now()
	for _, d := range durs {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(d)))
	}
	_, err = a.ConsumeTraces(td)
	require.NoError(t, err)
	return a, a.Snapshot(now)
}

func TestNewSeriesRenderAtZero(t *testing.T) {
	a, s := snapshotWith(t, true, time.Millisecond, 3*time.Millisecond)
	fams := Families(s)
	require.Len(t, fams, 3)
	require.Equal(t, "target_info", fams[0].GetName())
	require.Equal(t, "traces_span_metrics_calls_total", fams[1].GetName())
	require.Zero(t, fams[1].GetMetric()[0].GetCounter().GetValue())
	h := fams[2].GetMetric()[0].GetHistogram()
	require.Zero(t, h.GetSampleCount())
	require.NotEmpty(t, h.GetPositiveSpan(), "an empty native histogram still says it is native")
	fams = Families(a.Snapshot(time.Now()))
	require.Equal(t, 2.0, fams[1].GetMetric()[0].GetCounter().GetValue())
	h = fams[2].GetMetric()[0].GetHistogram()
	require.Equal(t, uint64(2), h.GetSampleCount())
	require.Equal(t, int32(3), h.GetSchema())
	var n int64
	var cur int64
	for _, d := range h.GetPositiveDelta() {
		cur += d
		n += cur
	}
	require.Equal(t, int64(2), n)
	require.Equal(t, map[string]string{"job": "svc", "instance": "i-1", "host_name": "h1"}, labels(fams[0].GetMetric()[0]))
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestContentNegotiation(t *testing.T) {
	a, _ := snapshotWith(t, true, time.Millisecond)
	e := NewExposition(ExpositionOptions{Registerer: prometheus.NewRegistry()})
	e.ConsumeSnapshot(a.Snapshot(time.Now()))
	e.ConsumeSnapshot(a.Snapshot(time.Now()))
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		accept, wantType, wantBody string
	}{
		{"", "text/plain; version=0.0.4", `traces_span_metrics_calls_total{`},
		{"application/openmetrics-text; version=1.0.0", "application/openmetrics-text", "# EOF"},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "application/vnd.google.protobuf", "traces_span_metrics_duration_milliseconds"},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), tc.wantType), resp.Header.Get("Content-Type"))
		require.Contains(t, string(body), tc.wantBody)
		if tc.wantType == "application/vnd.google.protobuf" {
			dec := expfmt.NewDecoder(strings.NewReader(string(body)), expfmt.NewFormat(expfmt.TypeProtoDelim))
			var found bool
			for {
				var mf dto.MetricFamily
				if err := dec.Decode(&mf); err != nil {
					break
				}
				if mf.GetType() == dto.MetricType_HISTOGRAM {
					found = len(mf.GetMetric()[0].GetHistogram().GetPositiveSpan()) > 0
				}
			}
			require.True(t, found, "native histogram in the protobuf exposition")
		}
	}
}

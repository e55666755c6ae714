package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/testutil"
)

// TestScaleOutRemoteWrite runs two spanwatch replicas remote-writing to one
// real Prometheus: the summed calls equal every span sent, the same PromQL
// gives the same numbers on a replica's own API and on Prometheus, and a
// third, stateless spanwatch with --query.url answers from Prometheus.
func TestScaleOutRemoteWrite(t *testing.T) {
	bin := buildBinary(t)
	prom := testutil.StartPrometheus(t, "global:\n  scrape_interval: 15s\n",
		"--web.enable-remote-write-receiver", "--enable-feature=native-histograms")
	dir := t.TempDir()
	replica := func(name string) *process {
		cfg := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
spanmetrics:
  metrics_flush_interval: 200ms
  histogram:
    exponential: {}
remote_write:
  - url: %s/api/v1/write
    external_labels:
      replica: %s
`, prom.URL, name)), 0o644))
		return startProcess(t, bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, name))
	}
	a, b := replica("a"), replica("b")
	send := func(p *process, requests int) {
		req := otlpRequest(t, 10)
		for range requests {
			resp, err := http.Post("http://"+p.otlp+"/v1/traces", "application/x-protobuf", bytes.NewReader(req))
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}
	send(a, 30)
	send(b, 50)

	eventually := func(p func(string, time.Time) (float64, bool), expr string, want float64) {
		t.Helper()
		require.Eventually(t, func() bool {
			v, ok := p(expr, time.Now())
			return ok && v == want
		}, 30*time.Second, 100*time.Millisecond, "%s != %g", expr, want)
	}
	promQuery := func(expr string, at time.Time) (float64, bool) {
		_ = at
		s, err := testutil.Query(t.Context(), prom.URL, expr)
		if err != nil || len(s) != 1 {
			return 0, false
		}
		return s[0].Value, true
	}
	own := func(p *process) func(string, time.Time) (float64, bool) {
		return func(expr string, at time.Time) (float64, bool) { return p.instant(t, expr, at) }
	}
	eventually(promQuery, `sum(traces_span_metrics_calls_total)`, 800)
	eventually(promQuery, `sum(traces_span_metrics_calls_total{replica="a"})`, 300)
	eventually(promQuery, `sum(traces_span_metrics_calls_total{replica="b"})`, 500)
	eventually(own(a), `sum(traces_span_metrics_calls_total)`, 300)
	eventually(own(b), `sum(traces_span_metrics_calls_total)`, 500)
	// The same PromQL over the same series gives the same numbers.
	for _, expr := range []string{
		`sum(traces_span_metrics_duration_milliseconds_bucket{le="2"})`,
		`histogram_count(sum(traces_span_metrics_duration_milliseconds))`,
		`sum(traces_span_metrics_duration_milliseconds_sum)`,
	} {
		v, ok := a.instant(t, expr, time.Now())
		require.True(t, ok, expr)
		eventually(promQuery, addReplica(expr, "a"), v)
	}

	// A stateless spanwatch reading its API from Prometheus.
	c := startProcess(t, bin, "--storage.mode=none", "--query.url="+prom.URL)
	eventually(own(c), `sum(traces_span_metrics_calls_total)`, 800)
}

// addReplica adds replica="<r>" to the single selector of a simple
// aggregate expression.
func addReplica(expr, r string) string {
	if i := bytes.IndexByte([]byte(expr), '}'); i >= 0 {
		return expr[:i] + `,replica="` + r + `"` + expr[i:]
	}
	j := bytes.IndexByte([]byte(expr), ')')
	return expr[:j] + `{replica="` + r + `"}` + expr[j:]
}

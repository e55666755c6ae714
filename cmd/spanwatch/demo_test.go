package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

// TestDemoShortTimeline runs the demo with a timeline of seconds: the gate
// must call the canary's POST /charge a regression, and the data directory
// must be gone afterwards.
func TestDemoShortTimeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"demo", "--web.listen-address=127.0.0.1:0", "--rate=300",
		"--canary-after=2s", "--gate-after=6s", "--window=1m", "--poll-interval=1s", "--max-wait=20s",
		"--flush-interval=500ms", "--exit-after-verdict"}, &out, &errb)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	require.Less(t, time.Since(start), 45*time.Second)
	require.Regexp(t, `spanwatch demo: open http://127\.0\.0\.1:\d+/`, out.String())
	require.Regexp(t, `POST /charge .*regression`, out.String(), "stderr:\n%s", errb.String())
	require.Contains(t, out.String(), "the gate says regression (exit code 1)")
	require.Contains(t, errb.String(), "canary checkout v2 now serves")
	// The automatic verdicts: the rolling update regresses, the canary not.
	require.Regexp(t, `automatic verdict: payments v2 \((rolling|canary), replacing v1\): regression`, out.String(), "stderr:\n%s", errb.String())
	require.Regexp(t, `automatic verdict: cart v2 \(canary, replacing v1\): pass`, out.String(), "stderr:\n%s", errb.String())
	dir := regexp.MustCompile(`data in (\S+),`).FindStringSubmatch(out.String())
	require.Len(t, dir, 2)
	_, err := os.Stat(filepath.Clean(dir[1]))
	require.True(t, os.IsNotExist(err), "the demo removes its data directory")
}

func TestLoadgenCommand(t *testing.T) {
	s := spantest.NewSimulation(t, nil, time.Now())
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"loadgen", "--otlp-endpoint=http://" + s.App.OTLPGRPCAddr().String(),
		"--scenario=../../examples/loadgen/scenario.yaml", "--rate=100", "--duration=1s"}, &out, &errb)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	require.Regexp(t, `sent 1\d\d requests \(\d+ spans, \d+ failed requests\); 0 exports failed`, out.String())
	// spanwatch turned them into series per service and version.
	s.App.Flush()
	resp, err := http.Get("http://" + s.App.WebAddr().String() + "/api/v1/query?query=" +
		url.QueryEscape(`count by (service_name, service_version) (traces_span_metrics_calls_total{span_kind="SPAN_KIND_SERVER"})`))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	for _, svc := range []string{`"service_name":"api-gateway","service_version":"v1"`, `"service_name":"orders","service_version":"1.4.0"`, `"service_name":"billing"`} {
		require.Contains(t, string(body), svc)
	}

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("rate: 1\nservices:\n  - name: a\n    operation: []\n"), 0o644))
	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{"loadgen", "--scenario=" + bad}, &out, &errb)
	require.Equal(t, exitUsage, code)
	require.Contains(t, errb.String(), "bad.yaml: yaml: unmarshal errors:\n  line 4: field operation not found")

	out.Reset()
	code = run(context.Background(), []string{"loadgen", "--print-scenario"}, &out, &errb)
	require.Equal(t, exitOK, code)
	require.Contains(t, out.String(), "latency_factor: 3")
}

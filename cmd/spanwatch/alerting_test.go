package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/testutil"
)

const (
	e2eAlert       = "SpansArriving"
	e2eExpr        = `sum by (service_name) (rate(traces_span_metrics_calls_total[1m])) > 0`
	e2eExternalURL = "http://spanwatch.example:8890"
)

// TestServeAlertsThroughFlags runs `spanwatch serve` with a rule file,
// rules.external_labels, --alertmanager.url (a real Alertmanager routing to
// a webhook), --alert.webhook.url and --web.external-url: spans arrive, the
// rule fires, and both routes deliver the alert with its labels, the
// external label, the rendered annotation and a link back to spanwatch;
// /api/v1/alerts and the ALERTS series show it firing.
func TestServeAlertsThroughFlags(t *testing.T) {
	viaAM := testutil.StartWebhookRecorder(t)
	am := testutil.StartAlertmanager(t, testutil.AlertmanagerToWebhook(viaAM.URL))
	direct := testutil.StartWebhookRecorder(t)

	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.WriteFile(rulesFile, []byte(`
groups:
  - name: e2e
    rules:
      - alert: `+e2eAlert+`
        expr: `+e2eExpr+`
        for: 0s
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.service_name }} receives {{ $value }} spans/s in {{ $externalLabels.cluster }}'
`), 0o644))
	cfg := filepath.Join(dir, "spanwatch.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
spanmetrics:
  metrics_flush_interval: 200ms
rules:
  evaluation_interval: 1s
  external_labels:
    cluster: e2e
`), 0o644))
	p := startProcess(t, buildBinary(t),
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--rules.file="+rulesFile,
		"--no-rules.builtin",
		"--alertmanager.url="+am,
		"--alert.webhook.url="+direct.URL,
		"--web.external-url="+e2eExternalURL,
	)

	// rate() needs the counter to grow between two stored samples: send a
	// batch, wait until a flush holds it, send another.
	send := func() {
		resp, err := http.Post("http://"+p.otlp+"/v1/traces", "application/x-protobuf", bytes.NewReader(otlpRequest(t, 10)))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	send()
	require.Eventually(t, func() bool {
		v, ok := p.instant(t, `sum(traces_span_metrics_calls_total)`, time.Now())
		return ok && v == 10
	}, 30*time.Second, 100*time.Millisecond, "the first batch is flushed")
	send()

	firing := func(r *testutil.WebhookRecorder) func() bool {
		return func() bool { a, _ := r.Find("firing", e2eAlert); return a != nil }
	}
	require.Eventually(t, firing(direct), 30*time.Second, 100*time.Millisecond, "the direct webhook receives the firing alert")
	require.Eventually(t, firing(viaAM), 30*time.Second, 100*time.Millisecond, "Alertmanager notifies its webhook of the firing alert")
	require.Empty(t, direct.Errors())
	require.Empty(t, viaAM.Errors())

	summary := regexp.MustCompile(`^crashy receives (\S+) spans/s in e2e$`)
	for _, route := range []struct {
		name string
		r    *testutil.WebhookRecorder
	}{{"alertmanager", viaAM}, {"direct webhook", direct}} {
		a, msg := route.r.Find("firing", e2eAlert)
		require.Equal(t, "4", msg.Version, route.name)
		require.Equal(t, "firing", msg.Status, route.name)
		require.Equal(t, map[string]string{
			"alertname":    e2eAlert,
			"service_name": "crashy",
			"severity":     "page",
			"cluster":      "e2e",
		}, a.Labels, "%s: the rule's labels and rules.external_labels", route.name)
		m := summary.FindStringSubmatch(a.Annotations["summary"])
		require.NotNil(t, m, "%s: rendered summary %q", route.name, a.Annotations["summary"])
		require.NotContains(t, a.Annotations["summary"], "{{", route.name)
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err, "%s: $value renders a number", route.name)
		require.Greater(t, v, 0.0, route.name)
		require.True(t, strings.HasPrefix(a.GeneratorURL, e2eExternalURL+"/graph?"),
			"%s: generatorURL %q links to --web.external-url", route.name, a.GeneratorURL)
		u, err := url.Parse(a.GeneratorURL)
		require.NoError(t, err, route.name)
		require.Equal(t, e2eExpr, u.Query().Get("g0.expr"), "%s: generatorURL links to the rule's expression", route.name)
		require.False(t, a.StartsAt.IsZero(), route.name)
	}
	// Both routes carry the alert of the same evaluation.
	amAlert, _ := viaAM.Find("firing", e2eAlert)
	directAlert, msg := direct.Find("firing", e2eAlert)
	require.Equal(t, amAlert.Annotations, directAlert.Annotations)
	// The same link (escaped as Prometheus escapes it), fingerprint and
	// end time (none while firing) as Alertmanager's own webhook, so a
	// receiver can match the two routes.
	require.Equal(t, amAlert.GeneratorURL, directAlert.GeneratorURL)
	require.Equal(t, amAlert.Fingerprint, directAlert.Fingerprint)
	require.True(t, amAlert.EndsAt.IsZero())
	require.True(t, directAlert.EndsAt.IsZero(), "firing: %s", directAlert.EndsAt)
	require.Equal(t, e2eExternalURL, msg.ExternalURL)

	// spanwatch's own API shows the alert firing.
	resp, err := http.Get("http://" + p.web + "/api/v1/alerts")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var alerts struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
				State       string            `json:"state"`
				Value       string            `json:"value"`
			} `json:"alerts"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&alerts))
	require.Equal(t, "success", alerts.Status)
	require.Len(t, alerts.Data.Alerts, 1)
	got := alerts.Data.Alerts[0]
	require.Equal(t, "firing", got.State)
	require.Equal(t, e2eAlert, got.Labels["alertname"])
	require.Equal(t, "crashy", got.Labels["service_name"])
	require.Equal(t, "page", got.Labels["severity"])
	require.Regexp(t, summary, got.Annotations["summary"])

	// The alert state series is stored and queryable.
	var series []testutil.Sample
	require.Eventually(t, func() bool {
		series, err = testutil.Query(context.Background(), "http://"+p.web,
			`ALERTS{alertname="`+e2eAlert+`",alertstate="firing"}`)
		return err == nil && len(series) == 1
	}, 30*time.Second, 100*time.Millisecond, "ALERTS: %+v, %v", series, err)
	require.Equal(t, 1.0, series[0].Value)
	require.Equal(t, "crashy", series[0].Metric["service_name"])
	require.Equal(t, "page", series[0].Metric["severity"])
}

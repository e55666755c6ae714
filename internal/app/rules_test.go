package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

const goodRules = `groups:
  - name: mine
    rules:
      - record: job:calls:rate5m
        expr: sum by (job) (rate(traces_span_metrics_calls_total[5m]))
      - alert: AnySpans
        expr: sum(traces_span_metrics_calls_total) > 0
        annotations:
          summary: "{{ $value }} spans"
`

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if v != nil {
		require.NoError(t, json.Unmarshal(body, v), "%s", body)
	}
	return resp.StatusCode
}

// TestRulesAPIAndReload: rule files and the built-in pack are served by
// /api/v1/rules; a broken file on reload keeps the previous rules and
// reports the error.
func TestRulesAPIAndReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mine.yml")
	require.NoError(t, os.WriteFile(file, []byte(goodRules), 0o644))
	a := startApp(t, nil, func(o *app.Options) {
		o.RuleFiles = []string{filepath.Join(filepath.Dir(file), "*.yml")}
		o.EnableLifecycle = true
	})
	base := "http://" + a.WebAddr().String()
	groupsOf := func() map[string][]string {
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Groups []struct {
					Name  string `json:"name"`
					File  string `json:"file"`
					Rules []struct {
						Name string `json:"name"`
						Type string `json:"type"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/rules", &r))
		require.Equal(t, "success", r.Status)
		out := map[string][]string{}
		for _, g := range r.Data.Groups {
			for _, rl := range g.Rules {
				out[g.Name] = append(out[g.Name], rl.Type+":"+rl.Name)
			}
		}
		return out
	}
	got := groupsOf()
	require.Equal(t, []string{"recording:job:calls:rate5m", "alerting:AnySpans"}, got["mine"])
	require.Contains(t, got["spanwatch_service_performance"], "alerting:ServiceLatencyP95Regression")
	var alerts struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []any `json:"alerts"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/alerts", &alerts))
	require.Equal(t, "success", alerts.Status)

	// A broken file: the reload fails, the old rules stay.
	require.NoError(t, os.WriteFile(file, []byte("groups:\n  - name: mine\n    rules:\n      - alert: X\n        expr: sum(\n"), 0o644))
	resp, err := http.Post(base+"/-/reload", "", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Contains(t, string(body), "mine.yml")
	require.Equal(t, []string{"recording:job:calls:rate5m", "alerting:AnySpans"}, groupsOf()["mine"])
	require.Equal(t, 0.0, counterValue(t, a.Registry(), "spanwatch_rules_last_reload_successful", nil)+gaugeValue(t, a, "spanwatch_rules_last_reload_successful"))

	// Fixed: the reload applies it.
	require.NoError(t, os.WriteFile(file, []byte(goodRules[:len(goodRules)-len("          summary: \"{{ $value }} spans\"\n")-len("        annotations:\n")]), 0o644))
	resp, err = http.Post(base+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 1.0, gaugeValue(t, a, "spanwatch_rules_last_reload_successful"))
}

func gaugeValue(t *testing.T, a *app.App, name string) float64 {
	t.Helper()
	fams, err := a.Registry().Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestAlertStateSurvivesRestart: a pending alert's ALERTS_FOR_STATE is
// stored, and a restarted spanwatch on the same storage restores when the
// alert became active instead of starting its `for` again.
func TestAlertStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pending.yml")
	require.NoError(t, os.WriteFile(file, []byte(`groups:
  - name: slow
    interval: 1s
    rules:
      - alert: AnySpansForAnHour
        expr: sum(traces_span_metrics_calls_total) > 0
        for: 1h
`), 0o644))
	storage := filepath.Join(dir, "data")
	opts := func(o *app.Options) {
		o.RuleFiles = []string{file}
		o.RulesBuiltin = false
		o.Storage.Path = storage
	}
	activeAt := func(a *app.App) string {
		var r struct {
			Data struct {
				Alerts []struct {
					State    string `json:"state"`
					ActiveAt string `json:"activeAt"`
				} `json:"alerts"`
			} `json:"data"`
		}
		getJSON(t, "http://"+a.WebAddr().String()+"/api/v1/alerts", &r)
		if len(r.Data.Alerts) != 1 || r.Data.Alerts[0].State != "pending" {
			return ""
		}
		return r.Data.Alerts[0].ActiveAt
	}
	a := startApp(t, nil, opts)
	require.NoError(t, exporters(t, a)["http"].ExportSpans(context.Background(), spantest.Spans(spantest.Stub{Service: "s", Name: "op"})))
	flushTwice(a)
	var first string
	require.Eventually(t, func() bool { first = activeAt(a); return first != "" }, 20*time.Second, 100*time.Millisecond)
	time.Sleep(5 * time.Second) // pending for a while, ALERTS_FOR_STATE written every second
	require.NoError(t, a.Shutdown(context.Background()))

	restart := time.Now()
	b := startApp(t, nil, opts)
	var second string
	require.Eventually(t, func() bool { second = activeAt(b); return second != "" }, 20*time.Second, 100*time.Millisecond)
	time.Sleep(2500 * time.Millisecond) // the state is restored after the first evaluation
	second = activeAt(b)
	// Prometheus's rules manager restores the active time from
	// ALERTS_FOR_STATE and moves it by the downtime (the outage does not
	// count towards `for`): about first + 1–2 s, well before the restart,
	// where a fresh start (active at its first evaluation) would be after.
	t1, err := time.Parse(time.RFC3339Nano, first)
	require.NoError(t, err)
	t2, err := time.Parse(time.RFC3339Nano, second)
	require.NoError(t, err)
	require.True(t, !t2.Before(t1) && t2.Before(restart), "restored active time %s, first %s, restart %s", t2, t1, restart)
}

// TestNoRulesServesEmptyRulesAndReload: without rules, /api/v1/rules and
// /api/v1/alerts answer empty lists (Grafana asks for them) and
// POST /-/reload says there is nothing to reload.
func TestNoRulesServesEmptyRulesAndReload(t *testing.T) {
	a := startApp(t, nil, func(o *app.Options) {
		o.RulesBuiltin = false
		o.EnableLifecycle = true
	})
	base := "http://" + a.WebAddr().String()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Groups []any `json:"groups"`
			Alerts []any `json:"alerts"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/rules", &r))
	require.Equal(t, "success", r.Status)
	require.NotNil(t, r.Data.Groups)
	require.Empty(t, r.Data.Groups)
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/alerts", &r))
	require.NotNil(t, r.Data.Alerts)
	resp, err := http.Post(base+"/-/reload", "", nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "nothing to reload: no rule files are configured")
}

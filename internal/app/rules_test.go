package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
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
	activeAt := func(a *app.App) time.Time {
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
			return time.Time{}
		}
		at, err := time.Parse(time.RFC3339Nano, r.Data.Alerts[0].ActiveAt)
		require.NoError(t, err)
		return at
	}
	const state = `ALERTS_FOR_STATE{alertname="AnySpansForAnHour"}`
	a := startApp(t, nil, opts)
	require.NoError(t, exporters(t, a)["http"].ExportSpans(context.Background(), spantest.Spans(spantest.Stub{Service: "s", Name: "op"})))
	flushTwice(a)
	var first time.Time
	require.Eventually(t, func() bool { first = activeAt(a); return !first.IsZero() }, 20*time.Second, 100*time.Millisecond)
	// ALERTS_FOR_STATE (value: the active time in seconds) is written at
	// every evaluation. Wait until the stored state has the alert pending
	// for 3 s, so that a restored active time (moved by the downtime) and a
	// fresh one (after the restart) are seconds apart.
	require.Eventually(t, func() bool {
		v, ok := instant(t, a, "timestamp("+state+") - "+state)
		return ok && v >= 3
	}, 20*time.Second, 100*time.Millisecond)
	require.NoError(t, a.Shutdown(context.Background()))

	restart := time.Now()
	b := startApp(t, nil, opts)
	// Prometheus's rules manager restores the state after the group's
	// second evaluation, then sets this gauge.
	require.Eventually(t, func() bool {
		fams, err := b.Registry().Gather()
		require.NoError(t, err)
		for _, f := range fams {
			if f.GetName() == "prometheus_rule_group_last_restore_duration_seconds" {
				return len(f.GetMetric()) > 0
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond)
	second := activeAt(b)
	restored := time.Now()
	require.False(t, second.IsZero(), "the alert is pending after the restart")

	// What the first run stored last, as the restore reads it: the
	// sample's time and value in whole seconds. spanwatch b writes
	// ALERTS_FOR_STATE only once restored, so at the restart this is a's.
	at := fmt.Sprintf(" @ %.3f", float64(restart.UnixMilli())/1000)
	downAt, ok := instant(t, b, "timestamp("+state+at+")")
	require.True(t, ok, "a stored ALERTS_FOR_STATE")
	storedActive, ok := instant(t, b, state+at)
	require.True(t, ok)
	require.Equal(t, float64(first.Unix()), storedActive)
	// The rules manager moves the stored active time by the downtime (the
	// outage does not count towards `for`): second = stored active time +
	// (restore time − stored sample's time). The restore time this implies
	// lies between the restart and the moment the gauge was seen. A fresh
	// start, active at its first evaluation, would imply one at least 2 s
	// after that evaluation, past the restore, which follows it by one
	// interval (1 s).
	restoreAt := time.Unix(int64(downAt), 0).Add(second.Sub(time.Unix(int64(storedActive), 0)))
	require.True(t, !restoreAt.Before(restart) && !restoreAt.After(restored),
		"restored active time %s implies a restore at %s, not between the restart %s and %s (first active %s, stored at %.3f)",
		second, restoreAt, restart, restored, first, downAt)
	require.False(t, second.Before(first))
}

// instant evaluates expr with a's query API; ok is false unless the result
// is one sample.
func instant(t *testing.T, a *app.App, expr string) (float64, bool) {
	t.Helper()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if getJSON(t, "http://"+a.WebAddr().String()+"/api/v1/query?query="+url.QueryEscape(expr), &r) != http.StatusOK || len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
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

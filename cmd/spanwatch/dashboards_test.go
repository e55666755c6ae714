package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// exampleDashboard is the shipped rendering of `spanwatch dashboards grafana`.
const exampleDashboard = "../../examples/grafana/spanwatch-dashboard.json"

// TestDashboardsGrafanaExampleUpToDate keeps the shipped dashboard equal to
// what the generator prints. To update it after changing the generator:
//
//	go run ./cmd/spanwatch dashboards grafana > examples/grafana/spanwatch-dashboard.json
func TestDashboardsGrafanaExampleUpToDate(t *testing.T) {
	code, out, errOut := runCLI("dashboards", "grafana")
	require.Equal(t, exitOK, code, errOut)
	want, err := os.ReadFile(exampleDashboard)
	require.NoError(t, err)
	require.True(t, string(want) == out,
		"examples/grafana/spanwatch-dashboard.json is stale: run `go run ./cmd/spanwatch dashboards grafana > examples/grafana/spanwatch-dashboard.json`")
}

func TestDashboardsGrafana(t *testing.T) {
	dir := t.TempDir()
	legacyCfg := filepath.Join(dir, "legacy.yaml")
	require.NoError(t, os.WriteFile(legacyCfg, []byte("exposition:\n  naming: legacy\n  namespace: jaeger_spm\n"), 0o644))
	secondsCfg := filepath.Join(dir, "seconds.yaml")
	require.NoError(t, os.WriteFile(secondsCfg, []byte("spanmetrics:\n  histogram:\n    unit: s\n"), 0o644))
	_, recipe, _ := runCLI("dashboards", "grafana", "--naming=legacy", "--namespace=jaeger_spm")

	for _, tc := range []struct {
		name     string
		args     []string
		contains []string
		absent   []string
	}{
		{"default otel", nil,
			[]string{`"uid": "spanwatch-spm"`, "traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds_bucket", "by (le, span_name)"},
			[]string{"{{operation}}", "jaeger_spm"}},
		{"legacy recipe names", []string{"--naming=legacy", "--namespace=jaeger_spm"},
			[]string{`"uid": "spanwatch-spm-jaeger_spm_calls"`, "label_values(jaeger_spm_calls_total, service_name)", "jaeger_spm_latency_bucket", "by (le, operation)"},
			[]string{"traces_span_metrics", "{{span_name}}"}},
		{"legacy without namespace", []string{"--naming", "legacy"},
			[]string{"label_values(calls_total, service_name)", "(rate(latency_bucket{"},
			[]string{"traces_span_metrics", "jaeger_spm"}},
		{"otel with namespace", []string{"--namespace=acme"},
			[]string{"acme_traces_span_metrics_calls_total", "acme_traces_span_metrics_duration_milliseconds_bucket"},
			[]string{"{{operation}}"}},
		{"config file", []string{"--config.file=" + legacyCfg},
			[]string{"jaeger_spm_calls_total", "by (le, operation)"}, nil},
		{"flags override the config file", []string{"--config.file=" + legacyCfg, "--naming=otel"},
			[]string{"jaeger_spm_traces_span_metrics_calls_total", "by (le, span_name)"}, nil},
		{"histogram unit from the config file", []string{"--config.file=" + secondsCfg},
			[]string{"traces_span_metrics_duration_seconds_bucket", `"unit": "s"`}, []string{`"unit": "ms"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"dashboards", "grafana"}, tc.args...)...)
			require.Equal(t, exitOK, code, errOut)
			for _, s := range tc.contains {
				require.True(t, strings.Contains(out, s), "missing %q", s)
			}
			for _, s := range tc.absent {
				require.False(t, strings.Contains(out, s), "unexpected %q", s)
			}
			if tc.name == "config file" {
				require.Equal(t, recipe, out, "config file and flags give the same dashboard")
			}
		})
	}

	for _, args := range [][]string{
		{"--naming=jaeger"},
		{"--config.file=" + filepath.Join(dir, "missing.yaml")},
	} {
		code, _, errOut := runCLI(append([]string{"dashboards", "grafana"}, args...)...)
		require.Equal(t, exitUsage, code, "%v: %s", args, errOut)
	}
}

package rules

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/spanwatch/spanwatch/internal/field"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

var updatePack = flag.Bool("update-pack", false, "rewrite testdata/pack_*.rules.yml")

// packNamings are the namings the committed promtool tests cover. The rule
// file of each is testdata/pack_<name>.rules.yml, its tests
// testdata/pack_<name>_test.yml.
var packNamings = []struct {
	name  string
	names *spanmetrics.Names
}{
	{"otel", spanmetrics.NewNames(spanmetrics.DefaultConfig(), spanmetrics.DefaultNamingConfig())},
	{"legacy", spanmetrics.NewNames(spanmetrics.DefaultConfig(),
		spanmetrics.NamingConfig{Naming: spanmetrics.NamingLegacy, Namespace: "jaeger_spm"})},
}

var allAlerts = []string{AlertP95Regression, AlertP99Spike, AlertErrorRate, AlertSlowOperation, AlertThroughputDrop}

// parsePack parses a rendered pack as Prometheus does and checks every
// expression with the PromQL parser.
func parsePack(t *testing.T, b []byte) *rulefmt.RuleGroups {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	rgs, errs := rulefmt.Parse(b, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	require.Empty(t, errs, "rulefmt.Parse:\n%s", b)
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			_, err := p.ParseExpr(r.Expr)
			require.NoError(t, err, "%s: %s", r.Alert, r.Expr)
		}
	}
	return rgs
}

func alertsOf(rgs *rulefmt.RuleGroups) map[string]rulefmt.Rule {
	m := map[string]rulefmt.Rule{}
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			m[r.Alert] = r
		}
	}
	return m
}

// TestPackGolden keeps the committed rule files, which the promtool test
// files name, equal to what Pack renders. go test -run TestPackGolden
// -update-pack rewrites them.
func TestPackGolden(t *testing.T) {
	for _, n := range packNamings {
		t.Run(n.name, func(t *testing.T) {
			b, err := Pack(n.names, DefaultPackConfig())
			require.NoError(t, err)
			golden := filepath.Join("testdata", "pack_"+n.name+".rules.yml")
			if *updatePack {
				require.NoError(t, os.WriteFile(golden, b, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), string(b), "rerun with -update-pack")
		})
	}
}

func TestPackParses(t *testing.T) {
	seconds := spanmetrics.DefaultConfig()
	seconds.Histogram.Unit = spanmetrics.UnitSeconds
	named := map[string]*spanmetrics.Names{
		"seconds": spanmetrics.NewNames(seconds, spanmetrics.DefaultNamingConfig()),
	}
	for _, n := range packNamings {
		named[n.name] = n.names
	}
	for name, n := range named {
		t.Run(name, func(t *testing.T) {
			b, err := Pack(n, DefaultPackConfig())
			require.NoError(t, err)
			rgs := parsePack(t, b)
			require.Len(t, rgs.Groups, 1)
			g := rgs.Groups[0]
			require.Equal(t, PackGroup, g.Name)
			require.Equal(t, model.Duration(30*time.Second), g.Interval)
			alerts := alertsOf(rgs)
			require.Len(t, alerts, len(allAlerts))
			for _, a := range allAlerts {
				r, ok := alerts[a]
				require.True(t, ok, a)
				require.Contains(t, r.Expr, n.Calls+"{", a)
				require.Contains(t, r.Expr, "sum by (service_name, "+n.SpanNameLabel, a)
				if n.SpanNameLabel != "operation" {
					require.NotContains(t, r.Expr, "operation", a)
				}
				require.Contains(t, r.Annotations["description"], "{{ $labels."+n.SpanNameLabel+" }}", a)
				require.Contains(t, r.Annotations["summary"], "{{ $labels.service_name }}", a)
				require.NotEmpty(t, r.Labels["severity"], a)
			}
			require.Contains(t, alerts[AlertP99Spike].Expr, n.Duration+"_bucket{")
		})
	}
}

func TestPackUnits(t *testing.T) {
	cfg := spanmetrics.DefaultConfig()
	cfg.Histogram.Unit = spanmetrics.UnitSeconds
	n := spanmetrics.NewNames(cfg, spanmetrics.DefaultNamingConfig())
	b, err := Pack(n, DefaultPackConfig())
	require.NoError(t, err)
	alerts := alertsOf(parsePack(t, b))
	require.Contains(t, alerts[AlertP99Spike].Expr, "traces_span_metrics_duration_seconds_bucket")
	require.Contains(t, alerts[AlertP99Spike].Expr, "[5m]))) > 5\n")
	require.Contains(t, alerts[AlertSlowOperation].Expr, "[5m]))) > 1\n")
	require.Contains(t, alerts[AlertP99Spike].Annotations["description"], `{{ printf "%.3f" $value }} s (threshold 5 s)`)

	c := DefaultPackConfig()
	c.SlowOperation.ThresholdMS = 300
	b, err = Pack(n, c)
	require.NoError(t, err)
	require.Contains(t, alertsOf(parsePack(t, b))[AlertSlowOperation].Expr, "[5m]))) > 0.3\n")

	b, err = Pack(packNamings[0].names, DefaultPackConfig())
	require.NoError(t, err)
	alerts = alertsOf(parsePack(t, b))
	require.Contains(t, alerts[AlertP99Spike].Expr, "[5m]))) > 5000\n")
	require.Contains(t, alerts[AlertP99Spike].Annotations["description"], `{{ printf "%.0f" $value }} ms (threshold 5000 ms)`)
}

func TestPackConfigured(t *testing.T) {
	c := DefaultPackConfig()
	c.Interval = time.Minute
	c.RateWindow = 2 * time.Minute
	c.MinRequestRate = 0
	c.Labels = map[string]string{"team": "sre", "severity": "page"}
	c.P99Spike.Labels = map[string]string{"severity": ""}
	c.ErrorRate.Threshold = 0.01
	c.ErrorRate.For = 0
	c.SlowOperation.Enabled = false
	c.ThroughputDrop.Offset = 30 * time.Minute
	c.P95Regression.Offset = 24 * time.Hour
	c.P95Regression.Threshold = 1.5
	b, err := Pack(packNamings[0].names, c)
	require.NoError(t, err)
	rgs := parsePack(t, b)
	require.Equal(t, model.Duration(time.Minute), rgs.Groups[0].Interval)
	alerts := alertsOf(rgs)
	require.Len(t, alerts, 4)
	require.NotContains(t, alerts, AlertSlowOperation)

	require.Equal(t, map[string]string{"team": "sre", "severity": "warning"}, alerts[AlertP95Regression].Labels, "the alert's labels win")
	require.Equal(t, map[string]string{"team": "sre"}, alerts[AlertP99Spike].Labels, "an empty value removes the label")

	for a, r := range alerts {
		require.NotContains(t, r.Expr, "[5m]", a)
		require.Contains(t, r.Expr, "[2m]", a)
		require.NotContains(t, r.Expr, ">=", "min_request_rate 0 keeps only the > 0 guard: %s", a)
	}
	require.Contains(t, alerts[AlertErrorRate].Expr, "[2m])) > 0)\n) > 0.01")
	require.Zero(t, alerts[AlertErrorRate].For)
	require.Contains(t, alerts[AlertErrorRate].Annotations["summary"], "above 1%")
	require.Contains(t, alerts[AlertThroughputDrop].Expr, "offset 30m")
	require.Contains(t, alerts[AlertP95Regression].Expr, "offset 1d")
	require.Contains(t, alerts[AlertP95Regression].Expr, ") > 1.5\n")
	require.Contains(t, alerts[AlertP95Regression].Annotations["description"], "1d ago (threshold 150%)")
}

// TestPackGroupBy: the exposition's const labels and group_by are kept
// apart in every aggregation and guard.
func TestPackGroupBy(t *testing.T) {
	nc := spanmetrics.NamingConfig{Naming: spanmetrics.NamingLegacy, Namespace: "jaeger_spm",
		ConstLabels: map[string]string{"cluster": "production", "service_name": "ignored"}}
	c := DefaultPackConfig()
	c.GroupBy = []string{"deployment_environment", "cluster"}
	b, err := Pack(spanmetrics.NewNames(spanmetrics.DefaultConfig(), nc), c)
	require.NoError(t, err)
	for a, r := range alertsOf(parsePack(t, b)) {
		require.NotContains(t, r.Expr, "(service_name, operation)", a)
		require.Contains(t, r.Expr, "sum by (service_name, operation, cluster, deployment_environment)", a)
		if strings.Contains(r.Expr, " and on ") {
			require.Contains(t, r.Expr, "and on (service_name, operation, cluster, deployment_environment)", a)
		}
	}
}

func TestPackAllDisabled(t *testing.T) {
	c := DefaultPackConfig()
	for _, a := range []*AlertConfig{&c.P95Regression.AlertConfig, &c.P99Spike.AlertConfig,
		&c.ErrorRate.AlertConfig, &c.SlowOperation.AlertConfig, &c.ThroughputDrop.AlertConfig} {
		a.Enabled = false
	}
	b, err := Pack(packNamings[0].names, c)
	require.NoError(t, err)
	rgs := parsePack(t, b)
	require.Len(t, rgs.Groups, 1)
	require.Empty(t, rgs.Groups[0].Rules)
}

func TestPackErrors(t *testing.T) {
	_, err := Pack(nil, DefaultPackConfig())
	require.Error(t, err)

	c := DefaultPackConfig()
	c.ErrorRate.Threshold = 5
	_, err = Pack(packNamings[0].names, c)
	var fe *field.Error
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "error_rate.threshold", fe.Path)
}

func TestPackConfigValidate(t *testing.T) {
	d := DefaultPackConfig()
	require.NoError(t, d.Validate())
	require.True(t, d.Enabled)

	for _, tc := range []struct {
		path string
		edit func(c *PackConfig)
	}{
		{"interval", func(c *PackConfig) { c.Interval = 0 }},
		{"rate_window", func(c *PackConfig) { c.RateWindow = 0 }},
		{"min_request_rate", func(c *PackConfig) { c.MinRequestRate = -1 }},
		{"labels.alertname", func(c *PackConfig) { c.Labels = map[string]string{"alertname": "x"} }},
		{"labels.a-b", func(c *PackConfig) { c.Labels = map[string]string{"a-b": "x"} }},
		{"labels.__x", func(c *PackConfig) { c.Labels = map[string]string{"__x": "x"} }},
		{"p99_spike.labels.team", func(c *PackConfig) { c.P99Spike.Labels = map[string]string{"team": "\xff"} }},
		{"group_by[1]", func(c *PackConfig) { c.GroupBy = []string{"cluster", "le"} }},
		{"group_by[0]", func(c *PackConfig) { c.GroupBy = []string{"status_code"} }},
		{"group_by[0]", func(c *PackConfig) { c.GroupBy = []string{"a.b"} }},
		{"p95_regression.for", func(c *PackConfig) { c.P95Regression.For = -time.Second }},
		{"p95_regression.threshold", func(c *PackConfig) { c.P95Regression.Threshold = 0 }},
		{"p95_regression.offset", func(c *PackConfig) { c.P95Regression.Offset = time.Minute }},
		{"p99_spike.threshold_ms", func(c *PackConfig) { c.P99Spike.ThresholdMS = -5 }},
		{"error_rate.threshold", func(c *PackConfig) { c.ErrorRate.Threshold = 1 }},
		{"slow_operation.threshold_ms", func(c *PackConfig) { c.SlowOperation.ThresholdMS = 0 }},
		{"throughput_drop.threshold", func(c *PackConfig) { c.ThroughputDrop.Threshold = 1 }},
		{"throughput_drop.offset", func(c *PackConfig) { c.ThroughputDrop.Offset = 4 * time.Minute }},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c := DefaultPackConfig()
			tc.edit(&c)
			err := c.Validate()
			var fe *field.Error
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Equal(t, tc.path, fe.Path)
		})
	}
}

// TestPackConfigYAML decodes a rules.builtin section as the config loader
// does (strictly, over the defaults).
func TestPackConfigYAML(t *testing.T) {
	src := `
enabled: false
min_request_rate: 0.5
labels: {team: sre}
p99_spike:
  threshold_ms: 3000
  for: 2m
  labels: {page: "true"}
throughput_drop:
  enabled: false
  offset: 15m
`
	c := DefaultPackConfig()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c))
	require.NoError(t, c.Validate())
	require.False(t, c.Enabled)
	require.Equal(t, 0.5, c.MinRequestRate)
	require.Equal(t, map[string]string{"team": "sre"}, c.Labels)
	require.Equal(t, 3000.0, c.P99Spike.ThresholdMS)
	require.Equal(t, 2*time.Minute, c.P99Spike.For)
	require.True(t, c.P99Spike.Enabled)
	require.Equal(t, map[string]string{"severity": "critical", "page": "true"}, c.P99Spike.Labels, "the file's labels add to the defaults")
	require.False(t, c.ThroughputDrop.Enabled)
	require.Equal(t, 15*time.Minute, c.ThroughputDrop.Offset)
	require.Equal(t, 0.5, c.ThroughputDrop.Threshold)

	dec = yaml.NewDecoder(strings.NewReader("p99_spike: {threshold: 3}\n"))
	dec.KnownFields(true)
	require.Error(t, dec.Decode(&c), "a latency alert's key is threshold_ms")
}

// TestPackPromtool runs promtool on the rendered pack: `check rules`, and
// `test rules` with the committed unit tests (a firing and a not-firing case
// for every alert, and the guards). promtool names rule files relative to
// the test file, so both go to one temporary directory. $PROMTOOL names
// another promtool binary.
func TestPackPromtool(t *testing.T) {
	name := "promtool"
	if p := os.Getenv("PROMTOOL"); p != "" {
		name = p
	}
	promtool, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool is required in CI: %v", err)
		}
		t.Skip("promtool not installed")
	}
	for _, n := range packNamings {
		t.Run(n.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := Pack(n.names, DefaultPackConfig())
			require.NoError(t, err)
			rules := "pack_" + n.name + ".rules.yml"
			require.NoError(t, os.WriteFile(filepath.Join(dir, rules), b, 0o644))
			tests := "pack_" + n.name + "_test.yml"
			src, err := os.ReadFile(filepath.Join("testdata", tests))
			require.NoError(t, err)
			require.Contains(t, string(src), "\n  - "+rules+"\n", "the test file names the rule file")
			require.NoError(t, os.WriteFile(filepath.Join(dir, tests), src, 0o644))

			run := func(args ...string) {
				t.Helper()
				cmd := exec.CommandContext(t.Context(), promtool, args...)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
			}
			run("check", "rules", rules)
			run("test", "rules", tests)
		})
	}
}

// TestPackTestsCoverEveryAlert checks that each promtool test file has,
// for every alert, a case where it fires and one where it does not.
func TestPackTestsCoverEveryAlert(t *testing.T) {
	type alertTest struct {
		Alertname string `yaml:"alertname"`
		ExpAlerts []any  `yaml:"exp_alerts"`
	}
	type testFile struct {
		Tests []struct {
			AlertRuleTest []alertTest `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	for _, n := range packNamings {
		t.Run(n.name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "pack_"+n.name+"_test.yml"))
			require.NoError(t, err)
			var f testFile
			require.NoError(t, yaml.Unmarshal(src, &f))
			firing, quiet := map[string]bool{}, map[string]bool{}
			for _, tc := range f.Tests {
				for _, a := range tc.AlertRuleTest {
					if len(a.ExpAlerts) > 0 {
						firing[a.Alertname] = true
					} else {
						quiet[a.Alertname] = true
					}
				}
			}
			for _, a := range allAlerts {
				require.True(t, firing[a], "%s has no firing case", a)
				require.True(t, quiet[a], "%s has no not-firing case", a)
			}
		})
	}
}

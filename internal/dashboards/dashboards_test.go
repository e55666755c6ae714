package dashboards_test

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/dashboards"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
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

// namings are the configurations every test renders the dashboard for.
var namings = []struct {
	name   string
	naming spanmetrics.NamingConfig
	calls  string
	bucket string
	op     string
}{
	{"otel", spanmetrics.NamingConfig{Naming: spanmetrics.NamingOTel},
		"traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds_bucket", "span_name"},
	{"legacy jaeger_spm", spanmetrics.NamingConfig{Naming: spanmetrics.NamingLegacy, Namespace: "jaeger_spm"},
		"jaeger_spm_calls_total", "jaeger_spm_latency_bucket", "operation"},
}

func configFor(nc spanmetrics.NamingConfig) *config.File {
	f := config.Default()
	f.Exposition.Naming = nc.Naming
	f.Exposition.Namespace = nc.Namespace
	return f
}

// render returns the dashboard JSON for f's names, decoded.
func render(t *testing.T, f *config.File) map[string]any {
	t.Helper()
	out, err := dashboards.GrafanaJSON(dashboards.DefaultOptions(spanmetrics.NewNames(f.SpanMetrics, f.Exposition)))
	require.NoError(t, err)
	var d map[string]any
	require.NoError(t, json.Unmarshal(out, &d))
	return d
}

// target is one query of a panel.
type target struct {
	panel, panelType, expr, format string
}

// targets walks the whole dashboard JSON (panels, rows' panels, anything
// else) and returns every object with an "expr" that sits in a "targets"
// list.
func targets(v any, panel, panelType string) []target {
	var out []target
	switch v := v.(type) {
	case map[string]any:
		if title, ok := v["title"].(string); ok {
			panel = title
		}
		if typ, ok := v["type"].(string); ok {
			panelType = typ
		}
		if ts, ok := v["targets"].([]any); ok {
			for _, tg := range ts {
				m, _ := tg.(map[string]any)
				if expr, ok := m["expr"].(string); ok {
					format, _ := m["format"].(string)
					out = append(out, target{panel, panelType, expr, format})
				}
			}
		}
		for k, c := range v {
			if k != "targets" {
				out = append(out, targets(c, panel, panelType)...)
			}
		}
	case []any:
		for _, c := range v {
			out = append(out, targets(c, panel, panelType)...)
		}
	}
	return out
}

// variables returns the dashboard's template variables by name.
func variables(t *testing.T, d map[string]any) map[string]map[string]any {
	t.Helper()
	templating, ok := d["templating"].(map[string]any)
	require.True(t, ok, "templating")
	list, ok := templating["list"].([]any)
	require.True(t, ok, "templating.list")
	out := map[string]map[string]any{}
	for _, v := range list {
		m := v.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// substitute replaces Grafana's variables as Grafana would for a range
// query with the given service and version regex.
func substitute(expr, service, version string) string {
	return strings.NewReplacer(
		"$__rate_interval", "1m",
		"$__interval", "1m",
		"${datasource}", "prometheus",
		"$datasource", "prometheus",
		"$service", service,
		"$version", version,
	).Replace(expr)
}

func TestGrafanaDashboardShape(t *testing.T) {
	for _, tc := range namings {
		t.Run(tc.name, func(t *testing.T) {
			d := render(t, configFor(tc.naming))
			vars := variables(t, d)
			require.Equal(t, "datasource", vars["datasource"]["type"])
			require.Equal(t, "prometheus", vars["datasource"]["query"])
			require.Equal(t, "query", vars["service"]["type"])
			require.Equal(t, "label_values("+tc.calls+", service_name)", vars["service"]["query"])
			require.Equal(t, "query", vars["version"]["type"])
			require.Equal(t, `label_values(`+tc.calls+`{service_name="$service"}, service_version)`, vars["version"]["query"])
			require.Equal(t, true, vars["version"]["multi"])
			require.Equal(t, true, vars["version"]["includeAll"])
			for _, v := range []string{"service", "version"} {
				require.Equal(t, map[string]any{"type": "prometheus", "uid": "${datasource}"}, vars[v]["datasource"], v)
			}

			ts := targets(d["panels"], "", "")
			require.Len(t, ts, 9)
			var heatmaps, quantiles, byVersion int
			for _, tg := range ts {
				require.Contains(t, tg.expr, `service_name="$service"`, tg.panel)
				require.Contains(t, tg.expr, `service_version=~"$version"`, tg.panel)
				require.Contains(t, tg.expr, "[$__rate_interval]", tg.panel)
				require.True(t, strings.Contains(tg.expr, tc.calls) || strings.Contains(tg.expr, tc.bucket), tg.expr)
				if tg.panelType == "heatmap" {
					heatmaps++
					require.Equal(t, "heatmap", tg.format)
					require.Equal(t, "sum by (le) (increase("+tc.bucket+`{service_name="$service", service_version=~"$version"}[$__rate_interval]))`, tg.expr)
				}
				if strings.HasPrefix(tg.expr, "histogram_quantile(") {
					quantiles++
					require.Contains(t, tg.expr, "sum by (le, ")
					require.Contains(t, tg.expr, "(rate("+tc.bucket+"{")
				}
				if strings.Contains(tg.expr, "by (service_version)") || strings.Contains(tg.expr, "by (le, service_version)") {
					byVersion++
				} else if tg.panelType != "heatmap" {
					require.Regexp(t, `by \((le, )?`+tc.op+`\)`, tg.expr)
				}
			}
			require.Equal(t, 1, heatmaps)
			require.Equal(t, 4, quantiles, "P50/P95/P99 by operation, P95 by version")
			require.Equal(t, 3, byVersion, "rate, errors and P95 by version")
		})
	}
}

// versions are the two service versions of the simulation; v2 is slower and
// fails 20 % of POST /charge.
var versions = []string{"1.4.0", "1.5.0"}

// traffic is one flush interval of two services, checkout in two versions:
// per version and operation 10 spans of 3, 30 and 300 ms (v2: 6, 60, 600 ms).
func traffic() []spantest.Stub {
	var out []spantest.Stub
	for vi, v := range versions {
		for _, op := range []string{"GET /cart", "POST /charge"} {
			for i := range 10 {
				st := codes.Unset
				if vi == 1 && op == "POST /charge" && i%5 == 0 {
					st = codes.Error
				}
				d := []time.Duration{3 * time.Millisecond, 30 * time.Millisecond, 300 * time.Millisecond}[i%3] * time.Duration(vi+1)
				out = append(out, spantest.Stub{Service: "checkout", Name: op, Kind: trace.SpanKindServer, Status: st, Dur: d,
					Res: []attribute.KeyValue{attribute.String("service.version", v)}})
			}
		}
	}
	out = append(out, spantest.Stub{Service: "cart", Name: "GET /items", Kind: trace.SpanKindServer, Dur: 5 * time.Millisecond})
	return out
}

// apiGet returns the data of a successful Prometheus API answer.
func apiGet(t *testing.T, base, path string, params url.Values) json.RawMessage {
	t.Helper()
	resp, err := http.Get(base + path + "?" + params.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	require.Equal(t, "success", env.Status, "%s %v: %s", path, params, env.Error)
	return env.Data
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// TestGrafanaQueriesReturnData renders the dashboard for each naming, and
// runs every query of it, with Grafana's variables substituted, against a
// spanwatch that was fed 10 simulated minutes of spans from two versions.
func TestGrafanaQueriesReturnData(t *testing.T) {
	for _, tc := range namings {
		t.Run(tc.name, func(t *testing.T) {
			f := configFor(tc.naming)
			d := render(t, f)
			s := spantest.NewSimulation(t, f, time.Now().Add(-20*time.Minute).Truncate(time.Minute))
			for range 40 { // 10 minutes of 15 s flushes
				s.Step(15*time.Second, traffic())
			}
			base := "http://" + s.App.WebAddr().String()
			at := strconv.FormatInt(s.Clock.Now().Unix(), 10)

			t.Run("variables", func(t *testing.T) {
				labelValues := regexp.MustCompile(`^label_values\((.+), (\w+)\)$`)
				want := map[string][]string{"service": {"cart", "checkout"}, "version": versions}
				for name, v := range variables(t, d) {
					if v["type"] != "query" {
						continue
					}
					m := labelValues.FindStringSubmatch(v["query"].(string))
					require.NotNil(t, m, v["query"])
					sel := substitute(m[1], "checkout", ".*")
					_, err := parser.NewParser(parser.Options{}).ParseMetricSelector(sel)
					require.NoError(t, err, sel)
					r := apiGet(t, base, "/api/v1/label/"+m[2]+"/values", url.Values{"match[]": {sel},
						"start": {strconv.FormatInt(s.Clock.Now().Add(-time.Hour).Unix(), 10)}, "end": {at}})
					var got []string
					require.NoError(t, json.Unmarshal(r, &got), string(r))
					require.Equal(t, want[name], got, name)
				}
			})

			ts := targets(d["panels"], "", "")
			require.NotEmpty(t, ts)
			p := parser.NewParser(parser.Options{})
			for _, version := range []string{".*", versions[1], "(" + versions[0] + "|" + versions[1] + ")"} {
				for i, tg := range ts {
					q := substitute(tg.expr, "checkout", version)
					require.NotContains(t, q, "$", "unsubstituted variable in %q", q)
					t.Run(tg.panel+"/"+strconv.Itoa(i)+"/version="+version, func(t *testing.T) {
						t.Log(q)
						_, err := p.ParseExpr(q)
						require.NoError(t, err)
						var r struct {
							ResultType string   `json:"resultType"`
							Result     []sample `json:"result"`
						}
						require.NoError(t, json.Unmarshal(apiGet(t, base, "/api/v1/query", url.Values{"query": {q}, "time": {at}}), &r))
						require.Equal(t, "vector", r.ResultType)
						res := r.Result
						require.NotEmpty(t, res, "no data")
						for _, smp := range res {
							v, err := strconv.ParseFloat(smp.Value[1].(string), 64)
							require.NoError(t, err)
							require.False(t, math.IsNaN(v), "NaN for %v", smp.Metric)
							if strings.Contains(q, "by (service_version)") && !strings.Contains(q, "STATUS_CODE_ERROR") {
								require.InDelta(t, 20.0/15, v, 1e-9, "calls/s of %v", smp.Metric)
							}
							if strings.Contains(q, "STATUS_CODE_ERROR") && smp.Metric["service_version"] != "" {
								want := map[string]float64{versions[0]: 0, versions[1]: 0.1}[smp.Metric["service_version"]]
								require.InDelta(t, want, v, 1e-9, "error ratio of %v", smp.Metric)
							}
						}
						if version == versions[1] && strings.Contains(q, "by (service_version)") {
							require.Len(t, res, 1)
							require.Equal(t, versions[1], res[0].Metric["service_version"])
						}
					})
				}
			}
		})
	}
}

// TestGrafanaJSONRoundTrip decodes the rendered JSON strictly with the SDK's
// own schema types (every field known, every panel and query type
// registered) and checks that it validates and encodes to the same JSON.
func TestGrafanaJSONRoundTrip(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, tc := range namings {
		t.Run(tc.name, func(t *testing.T) {
			f := configFor(tc.naming)
			opts := dashboards.DefaultOptions(spanmetrics.NewNames(f.SpanMetrics, f.Exposition))
			built, err := dashboards.Grafana(opts)
			require.NoError(t, err)
			out, err := dashboards.GrafanaJSON(opts)
			require.NoError(t, err)
			// The strict decoder checks every field name; in this SDK version
			// it drops the panels it decoded, so the round trip below uses the
			// ordinary decoder.
			var strict dashboard.Dashboard //nolint:staticcheck // v1 model on purpose
			require.NoError(t, sdkErr(strict.UnmarshalJSONStrict(out)))
			var decoded dashboard.Dashboard //nolint:staticcheck // v1 model on purpose
			require.NoError(t, json.Unmarshal(out, &decoded))
			require.NoError(t, sdkErr(decoded.Validate()))
			again, err := json.Marshal(decoded)
			require.NoError(t, err)
			first, err := json.Marshal(built)
			require.NoError(t, err)
			require.JSONEq(t, string(first), string(again), "decoding and encoding again changes the dashboard")
		})
	}
	var d dashboard.Dashboard //nolint:staticcheck // v1 model on purpose
	require.Error(t, sdkErr(d.UnmarshalJSONStrict([]byte(`{"title": "x", "bogus": 1}`))), "the strict decoder rejects unknown fields")
	_, err := dashboards.Grafana(dashboards.Options{})
	require.Error(t, err)
}

// sdkErr turns the SDK's empty cog.BuildErrors, which its strict decoder and
// validator return as a non-nil error, into nil.
func sdkErr(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

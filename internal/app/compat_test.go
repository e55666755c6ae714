package app_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

// simulation is spantest.Simulation with the flush interval of these tests
// and the API helpers below.
type simulation struct {
	*spantest.Simulation
	t   *testing.T
	app *app.App
}

func newSimulation(t *testing.T, cfg *config.File, start time.Time) *simulation {
	s := spantest.NewSimulation(t, cfg, start)
	return &simulation{Simulation: s, t: t, app: s.App}
}

// step sends stubs, advances the clock by the flush interval and flushes.
func (s *simulation) step(stubs []spantest.Stub) { s.Step(15*time.Second, stubs) }

// apiResult is the data of a Prometheus API answer.
type apiResult struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
		Values [][2]any          `json:"values"`
	} `json:"result"`
}

func (s *simulation) api(method, path string, params url.Values) apiResult {
	s.t.Helper()
	u := "http://" + s.app.WebAddr().String() + path
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = http.PostForm(u, params)
	} else {
		resp, err = http.Get(u + "?" + params.Encode())
	}
	require.NoError(s.t, err)
	defer resp.Body.Close()
	var env struct {
		Status string    `json:"status"`
		Error  string    `json:"error"`
		Data   apiResult `json:"data"`
	}
	require.NoError(s.t, json.NewDecoder(resp.Body).Decode(&env))
	require.Equal(s.t, "success", env.Status, "%s %s: %s", path, params.Get("query"), env.Error)
	return env.Data
}

func num(t *testing.T, v any) float64 {
	s, ok := v.(string)
	require.True(t, ok, "values are strings, got %T", v)
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

// checkoutTraffic is one flush interval of the checkout service: 30 server
// spans, ten each of 3 ms, 30 ms and 300 ms, three of them errors.
func checkoutTraffic() []spantest.Stub {
	var out []spantest.Stub
	for i := range 30 {
		st := codes.Unset
		if i%10 == 0 {
			st = codes.Error
		}
		d := []time.Duration{3 * time.Millisecond, 30 * time.Millisecond, 300 * time.Millisecond}[i%3]
		out = append(out, spantest.Stub{Service: "checkout", Name: "POST /charge", Kind: trace.SpanKindServer, Status: st, Dur: d})
	}
	return out
}

// TestJaegerMonitorQueries sends the exact requests the Jaeger Monitor tab
// sends (form POST to query_range) and checks their values against what the
// data must give: 2 calls/s, 10 % errors, and P95 = 200 + 0.85 × 200 = 370 ms
// (rank 28.5 of 30 falls 85 % into the (200, 400] bucket).
func TestJaegerMonitorQueries(t *testing.T) {
	start := time.Now().Add(-20 * time.Minute).Truncate(time.Minute)
	s := newSimulation(t, nil, start)
	for range 40 { // 10 minutes
		s.step(checkoutTraffic())
	}
	end := s.Clock.Now()
	params := func(q string) url.Values {
		return url.Values{
			"query": {q},
			"start": {strconv.FormatInt(end.Add(-5*time.Minute).Unix(), 10)},
			"end":   {strconv.FormatInt(end.Unix(), 10)},
			"step":  {"60"},
		}
	}
	const sel = `service_name =~ "checkout", span_kind =~ "SPAN_KIND_SERVER"`
	for _, tc := range []struct {
		query string
		want  float64
		by    string
	}{
		{`histogram_quantile(0.95, sum(rate(traces_span_metrics_duration_milliseconds_bucket{` + sel + `}[1m])) by (service_name,le))`, 370, "service_name"},
		{`histogram_quantile(0.95, sum(rate(traces_span_metrics_duration_milliseconds_bucket{` + sel + `}[1m])) by (service_name,span_name,le))`, 370, "span_name"},
		{`histogram_quantile(0.5, sum(rate(traces_span_metrics_duration_milliseconds_bucket{` + sel + `}[1m])) by (service_name,le))`, 10 + 40*(15.0-10)/10, "service_name"},
		{`sum(rate(traces_span_metrics_calls_total{` + sel + `}[1m])) by (service_name)`, 2, "service_name"},
		{`sum(rate(traces_span_metrics_calls_total{` + sel + `}[1m])) by (service_name,span_name)`, 2, "span_name"},
		{`sum(rate(traces_span_metrics_calls_total{service_name =~ "checkout", status_code = "STATUS_CODE_ERROR", span_kind =~ "SPAN_KIND_SERVER"}[1m])) by (service_name) / sum(rate(traces_span_metrics_calls_total{` + sel + `}[1m])) by (service_name)`, 0.1, "service_name"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := s.api(http.MethodPost, "/api/v1/query_range", params(tc.query))
			require.Equal(t, "matrix", r.ResultType)
			require.Len(t, r.Result, 1)
			require.NotEmpty(t, r.Result[0].Metric[tc.by])
			require.Len(t, r.Result[0].Values, 6)
			for _, v := range r.Result[0].Values {
				require.InDelta(t, tc.want, num(t, v[1]), 1e-9)
			}
		})
	}
	t.Run("no data is NaN, not an error", func(t *testing.T) {
		r := s.api(http.MethodPost, "/api/v1/query_range", params(
			`sum(rate(traces_span_metrics_calls_total{service_name =~ "checkout", status_code = "STATUS_CODE_ERROR", span_kind =~ "SPAN_KIND_CLIENT"}[1m])) by (service_name) / sum(rate(traces_span_metrics_calls_total{service_name =~ "checkout"}[1m])) by (service_name)`))
		require.Equal(t, "matrix", r.ResultType)
		require.Empty(t, r.Result)
		r = s.api(http.MethodPost, "/api/v1/query_range", params(`vector(0) / vector(0)`))
		require.Equal(t, "NaN", r.Result[0].Values[0][1])
	})
}

// TestRecipeDashboardQueries evaluates every expression of the recipe's
// Grafana dashboard, verbatim, over ingested spans.
func TestRecipeDashboardQueries(t *testing.T) {
	data, err := os.ReadFile(testutil.RecipeFile(t, "spm-dashboard.json"))
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Dashboard *struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		} `json:"dashboard"`
	}
	require.NoError(t, json.Unmarshal(data, &dash))
	panels := dash.Panels
	if dash.Dashboard != nil {
		panels = dash.Dashboard.Panels
	}
	cfg, err := config.Parse(testutil.RecipeConfig(t, spanmetrics.NamingLegacy), "recipe.yaml")
	require.NoError(t, err)
	s := newSimulation(t, cfg, time.Now().Add(-20*time.Minute).Truncate(time.Minute))
	for range 40 {
		s.step(checkoutTraffic())
	}
	// Recipe buckets: 2, 5, 10, 25, 50, 100, 250, 500 ms …: 3 ms in (2,5], 30 ms
	// in (25,50], 300 ms in (250,500].
	want := map[string]float64{
		`sum(rate(jaeger_spm_calls_total{service_name="$service"}[5m])) by (operation)`:                                                                                                                  2,
		`sum(rate(jaeger_spm_calls_total{service_name="$service", status_code="STATUS_CODE_ERROR"}[5m])) by (operation) / sum(rate(jaeger_spm_calls_total{service_name="$service"}[5m])) by (operation)`: 0.1,
		`histogram_quantile(0.50, sum(rate(jaeger_spm_latency_bucket{service_name="$service"}[5m])) by (le, operation))`:                                                                                 25 + 25*(15.0-10)/10,
		`histogram_quantile(0.95, sum(rate(jaeger_spm_latency_bucket{service_name="$service"}[5m])) by (le, operation))`:                                                                                 250 + 250*(28.5-20)/10,
		`histogram_quantile(0.99, sum(rate(jaeger_spm_latency_bucket{service_name="$service"}[5m])) by (le, operation))`:                                                                                 250 + 250*(29.7-20)/10,
	}
	var exprs int
	for _, p := range panels {
		for _, tg := range p.Targets {
			exprs++
			q := strings.ReplaceAll(tg.Expr, "$service", "checkout")
			r := s.api(http.MethodGet, "/api/v1/query", url.Values{"query": {q}})
			require.Equal(t, "vector", r.ResultType, q)
			require.NotEmpty(t, r.Result, "%s: %s returned nothing", p.Title, q)
			if w, ok := want[tg.Expr]; ok {
				require.Len(t, r.Result, 1, q)
				require.Equal(t, "POST /charge", r.Result[0].Metric["operation"])
				require.InDelta(t, w, num(t, r.Result[0].Value[1]), 1e-9, q)
				continue
			}
			// The heatmap: increase over 1 m per bucket: 4 flushes × 10 spans
			// per duration, so every bucket at or above 5 ms holds ≥ 40.
			require.Contains(t, q, "increase(jaeger_spm_latency_bucket")
			byLE := map[string]float64{}
			for _, smp := range r.Result {
				byLE[smp.Metric["le"]] = num(t, smp.Value[1])
			}
			require.InDelta(t, 40, byLE["5"], 1e-9)
			require.InDelta(t, 80, byLE["50"], 1e-9)
			require.InDelta(t, 120, byLE["+Inf"], 1e-9)
			require.InDelta(t, 0, byLE["2"], 1e-9)
		}
	}
	require.Equal(t, 6, exprs, "every expression of the dashboard was checked")
}

// TestPromtoolQuery runs promtool's instant and range queries against
// spanwatch.
func TestPromtoolQuery(t *testing.T) {
	promtool := testutil.Binary(t, "promtool")
	s := newSimulation(t, nil, time.Now().Add(-10*time.Minute).Truncate(time.Minute))
	for range 20 {
		s.step(checkoutTraffic())
	}
	server := "http://" + s.app.WebAddr().String()
	end := s.Clock.Now()
	out, err := exec.Command(promtool, "query", "instant", "--time="+end.Format(time.RFC3339), server,
		`sum(rate(traces_span_metrics_calls_total[1m]))`).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Len(t, promtoolValues(t, string(out)), 1)
	require.InDelta(t, 2, promtoolValues(t, string(out))[0], 1e-9, "%s", out)
	out, err = exec.Command(promtool, "query", "range", "--start="+end.Add(-2*time.Minute).Format(time.RFC3339),
		"--end="+end.Format(time.RFC3339), "--step=1m", server,
		`sum by (service_name) (rate(traces_span_metrics_calls_total[1m]))`).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), `{service_name="checkout"} =>`)
	vals := promtoolValues(t, string(out))
	require.Len(t, vals, 3, "%s", out)
	for _, v := range vals {
		require.InDelta(t, 2, v, 1e-9, "%s", out)
	}
	out, err = exec.Command(promtool, "query", "series", "--match=traces_span_metrics_calls_total", server).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), `service_name="checkout"`)
	out, err = exec.Command(promtool, "query", "labels", server, "span_kind").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "SPAN_KIND_SERVER")
}

// TestRecipeDetectRegressionScript runs the recipe's detect_regression.py,
// unmodified: its hard-coded Prometheus address is reached through an HTTP
// proxy that is spanwatch itself. An hour of simulated history: checkout
// doubles its latency in the last 15 minutes, cart does not change.
func TestRecipeDetectRegressionScript(t *testing.T) {
	script := testutil.RecipeFile(t, "detect_regression.py")
	python := "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import requests").CombinedOutput(); err != nil {
		testutil.Missing(t, fmt.Sprintf("python3 with requests (Debian python3-requests): %v %s", err, out))
	}
	cfg, err := config.Parse(testutil.RecipeConfig(t, spanmetrics.NamingLegacy), "recipe.yaml")
	require.NoError(t, err)
	s := newSimulation(t, cfg, time.Now().Add(-80*time.Minute).Truncate(time.Minute))
	const flushes = 80 * 4
	for i := range flushes {
		var batch []spantest.Stub
		for range 20 {
			d := 100 * time.Millisecond
			batch = append(batch, spantest.Stub{Service: "cart", Name: "GET /cart", Kind: trace.SpanKindServer, Dur: d})
			if i >= flushes-15*4 {
				d = 200 * time.Millisecond
			}
			batch = append(batch, spantest.Stub{Service: "checkout", Name: "POST /charge", Kind: trace.SpanKindServer, Dur: d})
		}
		s.step(batch)
	}
	run := func(service string) (int, string) {
		cmd := exec.Command(python, filepath.Base(script), service)
		cmd.Dir = filepath.Dir(script)
		cmd.Env = append(os.Environ(), "HTTP_PROXY=http://"+s.app.WebAddr().String(), "http_proxy=http://"+s.app.WebAddr().String(), "NO_PROXY=", "no_proxy=")
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err, "%s", out)
		}
		return code, string(out)
	}
	code, out := run("checkout")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "REGRESSION DETECTED: checkout/POST /charge")
	require.Contains(t, out, "Current P95: 242.50ms")
	require.Contains(t, out, "Baseline P95: 97.50ms")
	code, out = run("cart")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "No latency regression detected for cart")
}

// promtoolValues extracts the values of promtool's "<value> @[<time>]" output.
func promtoolValues(t *testing.T, out string) []float64 {
	var vals []float64
	for _, m := range regexp.MustCompile(`([-+0-9.eENaInf]+) @\[`).FindAllStringSubmatch(out, -1) {
		f, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		vals = append(vals, f)
	}
	return vals
}

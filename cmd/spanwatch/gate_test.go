package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

// trickyOp is an operation name with quotes, backslashes and regular
// expression metacharacters.
const trickyOp = `GET /items/{id}?q="a|b".*\d`

// versionTraffic is one flush interval of two versions of checkout: 120
// spans per version and operation, lognormal latencies (median 40 ms, σ 0.5);
// slow multiplies the v2 latencies of POST /charge.
func versionTraffic(rng *rand.Rand, slow float64) []spantest.Stub {
	var out []spantest.Stub
	for _, v := range []string{"v1", "v2"} {
		for _, op := range []string{"POST /charge", "GET /cart", trickyOp} {
			for range 120 {
				d := 40 * math.Exp(0.5*rng.NormFloat64())
				if v == "v2" && op == "POST /charge" {
					d *= slow
				}
				out = append(out, spantest.Stub{Service: "checkout", Name: op, Kind: trace.SpanKindServer,
					Dur: time.Duration(d * float64(time.Millisecond)),
					Res: []attribute.KeyValue{attribute.String("service.version", v)}})
			}
		}
	}
	return out
}

// gateSim runs 10 simulated minutes ending now.
func gateSim(t *testing.T, cfg *config.File, slow float64) *spantest.Simulation {
	s := spantest.NewSimulation(t, cfg, time.Now().Add(-10*time.Minute))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		s.Step(15*time.Second, versionTraffic(rng, slow))
	}
	return s
}

func runGate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"gate"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestGateEndToEnd(t *testing.T) {
	classic := config.Default()
	classic.SpanMetrics.Histogram.Exponential.Enabled = false
	legacy := config.Default()
	legacy.Exposition = spanmetrics.NamingConfig{Naming: spanmetrics.NamingLegacy, Namespace: "jaeger_spm"}
	seconds := config.Default()
	seconds.SpanMetrics.Histogram.Unit = spanmetrics.UnitSeconds
	for name, cfg := range map[string]*config.File{"classic": classic, "native": config.Default(), "legacy": legacy, "seconds": seconds} {
		t.Run(name, func(t *testing.T) {
			slow := gateSim(t, cfg, 2)
			url := "--url=http://" + slow.App.WebAddr().String()
			code, out, errOut := runGate(t, url, "--service=checkout", `--baseline=service_version="v1"`, `--candidate=service_version="v2"`,
				"--max-wait=0s")
			require.Equal(t, gateRegression, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.Contains(t, out, "POST /charge")
			require.Regexp(t, `POST /charge .*regression`, out)
			// Notes are in the report on stdout, once, and not in the
			// progress on stderr.
			require.Equal(t, 1, strings.Count(out, "note: reading "), out)
			require.NotContains(t, errOut, "note:")
			if name == "seconds" {
				require.Contains(t, out, "traces_span_metrics_duration_seconds")
				require.Regexp(t, `POST /charge\s+\d+ / \d+\s+\d\d\.\d → \d\d\.\d`, out, "latencies in milliseconds")
			}

			// The tricky operation alone, and the auto-detected versions.
			code, out, errOut = runGate(t, url, "--service=checkout", "--operation="+trickyOp, "--max-wait=0s", "--format=json")
			require.Equal(t, gatePass, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.Contains(t, out, `comparing the older \"v1\" (baseline) with the newer \"v2\" (candidate)`)
			require.NotContains(t, errOut, "comparing the older")
			require.Contains(t, out, `"verdict": "pass"`)
			require.Contains(t, out, strings.ReplaceAll(strings.ReplaceAll(trickyOp, `\`, `\\`), `"`, `\"`))
		})
	}
}

func TestGateNoRegressionPasses(t *testing.T) {
	s := gateSim(t, nil, 1)
	code, out, errOut := runGate(t, "--url=http://"+s.App.WebAddr().String(), "--service=checkout",
		`--baseline=service_version="v1"`, `--candidate=service_version="v2"`, "--max-wait=0s", "--format=markdown")
	require.Equal(t, gatePass, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, out, "**PASS**")
}

func TestGateNoTrafficIsInconclusiveAfterMaxWait(t *testing.T) {
	s := spantest.NewSimulation(t, nil, time.Now())
	start := time.Now()
	code, out, errOut := runGate(t, "--url=http://"+s.App.WebAddr().String(), "--service=ghost",
		`--baseline=service_version="v1"`, `--candidate=service_version="v2"`, "--max-wait=2s", "--poll-interval=1s")
	require.Equal(t, gateInconclusive, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.GreaterOrEqual(t, time.Since(start), 2*time.Second, "waits for data until --max-wait")
	require.Contains(t, errOut, "look 3/3")
	code, _, _ = runGate(t, "--url=http://"+s.App.WebAddr().String(), "--service=ghost",
		`--baseline=service_version="v1"`, `--candidate=service_version="v2"`, "--max-wait=0s", "--on-inconclusive=pass")
	require.Equal(t, gatePass, code)
}

func TestGateUsageAndBackendErrors(t *testing.T) {
	code, _, errOut := runGate(t, "--service=x", "--baseline=service_version=", "--url=http://127.0.0.1:1")
	require.Equal(t, gateUsage, code, errOut)
	code, _, _ = runGate(t, "--bogus")
	require.Equal(t, gateUsage, code)
	code, _, errOut = runGate(t, "--service=x", `--baseline=service_version="a"`, `--candidate=service_version="b"`,
		"--naming=otel", "--url=http://127.0.0.1:1", "--max-wait=0s")
	require.Equal(t, gateBackend, code, errOut)
}

func TestGateConfigFileAndStepSummary(t *testing.T) {
	s := gateSim(t, nil, 2)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "spanwatch.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("gate:\n  min_ratio: {p50: 100, p95: 100, p99: 100}\n  max_wait: 0s\n"), 0o644))
	summary := filepath.Join(dir, "summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	args := []string{"--url=http://" + s.App.WebAddr().String(), "--service=checkout",
		`--baseline=service_version="v1"`, `--candidate=service_version="v2"`, "--config.file=" + cfg}
	code, out, errOut := runGate(t, args...)
	require.Equal(t, gatePass, code, "a doubling is not 100×: stdout:\n%s\nstderr:\n%s", out, errOut)
	md, err := os.ReadFile(summary)
	require.NoError(t, err)
	require.Contains(t, string(md), "### spanwatch gate: `checkout` — **PASS**")
	// A flag wins over the file.
	code, _, _ = runGate(t, append(args, "--min-ratio-p95=1.1", "--min-ratio-p50=1.1")...)
	require.Equal(t, gateRegression, code)
	md, err = os.ReadFile(summary)
	require.NoError(t, err)
	require.Contains(t, string(md), "**REGRESSION**", "appended, not overwritten")
	require.Contains(t, string(md), "**PASS**")
	// A bad value in the file is a usage error naming the key.
	require.NoError(t, os.WriteFile(cfg, []byte("gate:\n  alpha: 2\n"), 0o644))
	code, _, errOut = runGate(t, args...)
	require.Equal(t, gateUsage, code)
	require.Contains(t, errOut, "spanwatch.yaml:2: gate")
}

// TestGateAgainstScrapingPrometheus runs the gate against a real Prometheus
// that scrapes spanwatch's exposition, rather than against spanwatch.
func TestGateAgainstScrapingPrometheus(t *testing.T) {
	testutil.Binary(t, "prometheus")
	type setup struct {
		cfg     *config.File
		flags   []string
		latency string
		prom    *testutil.Prometheus
		exp     *otlptrace.Exporter
	}
	// With the default config (native histograms on), a Prometheus without
	// the native-histograms feature stores the classic buckets only.
	classic := config.Default()
	legacy := config.Default()
	legacy.Exposition = spanmetrics.NamingConfig{Naming: spanmetrics.NamingLegacy, Namespace: "jaeger_spm"}
	native := config.Default()
	setups := map[string]*setup{
		"otel classic": {cfg: classic, latency: "latencies from classic buckets"},
		"legacy":       {cfg: legacy, latency: "latencies from classic buckets"},
		"otel native":  {cfg: native, flags: []string{"--enable-feature=native-histograms"}, latency: "latencies from native histograms"},
	}
	// One spanwatch and one Prometheus scraping it per setup, all fed the
	// same traffic at the same time.
	for _, s := range setups {
		s.cfg.SpanMetrics.MetricsFlushInterval = 250 * time.Millisecond
		a := spantest.StartApp(t, s.cfg)
		s.prom = testutil.StartPrometheus(t, fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: spanwatch\n    static_configs:\n      - targets: [%q]\n",
			a.MetricsAddr().String()), s.flags...)
		exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(a.OTLPGRPCAddr().String()), otlptracegrpc.WithInsecure())
		require.NoError(t, err)
		t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
		s.exp = exp
	}
	callsOf := func(s *setup) string {
		if s.cfg.Exposition.Naming == spanmetrics.NamingLegacy {
			return "jaeger_spm_calls_total"
		}
		return "traces_span_metrics_calls_total"
	}
	rng := rand.New(rand.NewPCG(3, 4))
	// 20 batches of 3 × 2 × 120 spans, each sent once every Prometheus has
	// scraped the previous one, so that the samples spread over ~20 s.
	for i := range 20 {
		spans := spantest.Spans(versionTraffic(rng, 2)...)
		for _, s := range setups {
			require.NoError(t, s.exp.ExportSpans(context.Background(), spans))
		}
		for _, s := range setups {
			testutil.Eventually(t, s.prom.URL, `sum(`+callsOf(s)+`{service_name="checkout"})`, 30*time.Second,
				func(v float64) bool { return v == float64((i+1)*720) })
		}
	}
	for name, s := range setups {
		t.Run(name, func(t *testing.T) {
			calls := callsOf(s)
			code, out, errOut := runGate(t, "--url="+s.prom.URL, "--service=checkout", `--baseline=service_version="v1"`,
				`--candidate=service_version="v2"`, "--window=1m", "--max-wait=0s")
			require.Equal(t, gateRegression, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.Regexp(t, `POST /charge .*regression`, out)
			require.Contains(t, out, s.latency)
			require.Contains(t, out, "note: reading "+calls)
		})
	}
}

// oneVersionSim runs ten simulated minutes of one version whose POST
// /charge gets slow× slower half-way through.
func oneVersionSim(t *testing.T, cfg *config.File, seed uint64, slow float64) *spantest.Simulation {
	s := spantest.NewSimulation(t, cfg, time.Now().Add(-10*time.Minute))
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for i := range 40 {
		f := 1.0
		if i >= 20 {
			f = slow
		}
		var stubs []spantest.Stub
		for _, st := range versionTraffic(rng, f) {
			if st.Res[0].Value.AsString() == "v2" {
				stubs = append(stubs, st) // one version only
			}
		}
		s.Step(15*time.Second, stubs)
	}
	return s
}

// TestGateOffsetAndRangeModes: one version whose POST /charge doubles its
// latency half-way through ten simulated minutes.
func TestGateOffsetAndRangeModes(t *testing.T) {
	s := oneVersionSim(t, nil, 5, 2)
	url := "--url=http://" + s.App.WebAddr().String()
	code, out, errOut := runGate(t, url, "--service=checkout", "--baseline-offset=5m", "--window=4m", "--max-wait=0s")
	require.Equal(t, gateRegression, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, out, "daily traffic patterns", "offset mode warns about confounding")
	require.Contains(t, out, "offset 5m")
	require.Contains(t, out, "offset mode: a change counts from P50 ×1.2, P95 ×1.2, P99 ×1.3")
	// A flag given on the command line is kept as it is.
	code, out, errOut = runGate(t, url, "--service=checkout", "--baseline-offset=5m", "--window=4m", "--max-wait=0s", "--min-ratio-p95=1.05")
	require.Equal(t, gateRegression, code, errOut)
	require.Contains(t, out, "offset mode: a change counts from P50 ×1.2, P95 ×1.05, P99 ×1.3")
	// The compare API decides offset mode with the same thresholds.
	code, out, errOut = runGate(t, url, "--service=checkout", "--baseline-offset=5m", "--window=4m", "--max-wait=0s", "--format=json")
	require.Equal(t, gateRegression, code, errOut)
	api := postCompare(t, "http://"+s.App.WebAddr().String(), `{"service":"checkout","baseline":{"offset":"5m"},"window":"4m"}`)
	requireSameReport(t, out, api)
	require.Equal(t, "regression", api.Data.Report.Verdict)

	code, out, errOut = runGate(t, url, "--service=checkout", "--baseline-range=-9m,-5m30s", "--candidate-range=-4m30s,now", "--max-wait=0s")
	require.Equal(t, gateRegression, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	code, out, errOut = runGate(t, url, "--service=checkout", "--baseline-range=-9m,-7m", "--candidate-range=-7m,-5m30s", "--max-wait=0s")
	require.Equal(t, gatePass, code, "before the change: stdout:\n%s\nstderr:\n%s", out, errOut)

	code, _, errOut = runGate(t, url, "--service=checkout", "--baseline-range=-9m,-7m", "--max-wait=0s")
	require.Equal(t, gateUsage, code, errOut)
	require.Contains(t, errOut, "go together")
	code, _, errOut = runGate(t, url, "--service=checkout", "--baseline-range=-9m,-7m", "--candidate-range=-7m,-8m")
	require.Equal(t, gateUsage, code, errOut)
}

// TestGateHeadersAndAuth runs the gate against a store that needs a tenant
// header and basic authentication, as Mimir behind a gateway does.
func TestGateHeadersAndAuth(t *testing.T) {
	s := gateSim(t, nil, 2)
	proxy := testutil.StartTenantProxy(t, "http://"+s.App.WebAddr().String(), "team-a", "gate", "s3cret")
	authURL := strings.Replace(proxy.URL, "http://", "http://gate:s3cret@", 1)
	arms := []string{"--service=checkout", `--baseline=service_version="v1"`, `--candidate=service_version="v2"`, "--max-wait=0s"}

	code, out, errOut := runGate(t, append(arms, "--url="+proxy.URL)...)
	require.Equal(t, gateBackend, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Positive(t, proxy.Denied())

	code, out, errOut = runGate(t, append(arms, "--url="+authURL, "--header=x-scope-orgid: team-a")...)
	require.Equal(t, gateRegression, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	// The same from the config file; a flag wins over the file.
	cfg := filepath.Join(t.TempDir(), "spanwatch.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("gate:\n  url: "+authURL+"\n  headers:\n    X-Scope-OrgID: team-b\n"), 0o644))
	code, _, errOut = runGate(t, append(arms, "--config.file="+cfg)...)
	require.Equal(t, gateBackend, code, errOut)
	code, out, errOut = runGate(t, append(arms, "--config.file="+cfg, "--header=X-Scope-OrgID: team-a")...)
	require.Equal(t, gateRegression, code, "stdout:\n%s\nstderr:\n%s", out, errOut)

	for _, bad := range []string{"--header=X-Scope-OrgID", "--header=Host: evil", "--header=A: 1", "--header=a: 2"} {
		code, _, errOut = runGate(t, append(arms, "--url="+authURL, "--header=A: 0", bad)...)
		if bad == "--header=A: 1" || bad == "--header=a: 2" {
			require.Contains(t, errOut, "is given twice")
		}
		require.Equal(t, gateUsage, code, "%s: %s", bad, errOut)
		require.Contains(t, errOut, "--header")
	}
	require.NoError(t, os.WriteFile(cfg, []byte("gate:\n  headers:\n    \"Bad Name\": x\n"), 0o644))
	code, _, errOut = runGate(t, append(arms, "--config.file="+cfg)...)
	require.Equal(t, gateUsage, code)
	require.Contains(t, errOut, "spanwatch.yaml:3: gate.headers")
}

// TestGateAutoWaitsForTheSecondVersion: with no populations given, the gate
// waits for a second version to serve (a rollout's start) instead of
// failing at once, and without one by --max-wait it is inconclusive.
func TestGateAutoWaitsForTheSecondVersion(t *testing.T) {
	s := spantest.NewSimulation(t, nil, time.Now().Add(-10*time.Minute))
	rng := rand.New(rand.NewPCG(1, 2))
	onlyV1 := func() []spantest.Stub {
		var out []spantest.Stub
		for _, st := range versionTraffic(rng, 2) {
			if st.Res[0].Value.AsString() == "v1" {
				out = append(out, st)
			}
		}
		return out
	}
	for range 30 {
		s.Step(15*time.Second, onlyV1())
	}
	url := "--url=http://" + s.App.WebAddr().String()

	code, out, errOut := runGate(t, url, "--service=checkout", "--max-wait=2s", "--poll-interval=1s")
	require.Equal(t, gateInconclusive, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, errOut, "look 1: 1 version(s) of checkout served traffic in the last 5m (v1); waiting for a second one")
	require.Contains(t, out, "only 1 version(s) of checkout served traffic in the last 5m (v1) by max_wait")

	var stdout, stderr testutil.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"gate", url, "--service=checkout", "--max-wait=30s", "--poll-interval=1s"}, &stdout, &stderr)
	}()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "waiting for a second one") }, 10*time.Second, 20*time.Millisecond,
		"stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	for range 8 {
		s.Step(15*time.Second, versionTraffic(rng, 2))
	}
	select {
	case code = <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("the gate did not finish")
	}
	require.Equal(t, gateRegression, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.Contains(t, stdout.String(), `note: two versions served traffic: comparing the older "v1" (baseline) with the newer "v2" (candidate)`)
	require.Regexp(t, `POST /charge .*regression`, stdout.String())
}

// TestGateInterruptedIsInconclusive: Ctrl-C while waiting is exit 2, not a
// backend failure and never a pass.
func TestGateInterruptedIsInconclusive(t *testing.T) {
	s := spantest.NewSimulation(t, nil, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"gate", "--url=http://" + s.App.WebAddr().String(), "--service=ghost",
		`--baseline=service_version="v1"`, `--candidate=service_version="v2"`, "--max-wait=1m", "--poll-interval=1s"}, &out, &errb)
	require.Equal(t, gateInconclusive, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	require.Contains(t, errb.String(), "interrupted before a verdict")
}

// TestGateOffsetModeWiderThresholds: in offset mode a +15 % change does not
// count (the windows hold different traffic), in the CLI and the compare
// API alike, unless the thresholds are set on the command line.
func TestGateOffsetModeWiderThresholds(t *testing.T) {
	// The default native histograms are precise enough to size +15 %.
	s := oneVersionSim(t, config.Default(), 7, 1.15)
	url := "--url=http://" + s.App.WebAddr().String()
	args := []string{url, "--service=checkout", "--baseline-offset=5m", "--window=4m", "--max-wait=0s"}
	code, out, errOut := runGate(t, append(args, "--min-ratio-p50=1.1", "--min-ratio-p95=1.1")...)
	require.Equal(t, gateRegression, code, "same-window thresholds: stdout:\n%s\nstderr:\n%s", out, errOut)
	code, out, errOut = runGate(t, append(args, "--format=json")...)
	require.NotEqual(t, gateRegression, code, "offset thresholds: stdout:\n%s\nstderr:\n%s", out, errOut)

	api := postCompare(t, "http://"+s.App.WebAddr().String(), `{"service":"checkout","baseline":{"offset":"5m"},"window":"4m"}`)
	requireSameReport(t, out, api)
}

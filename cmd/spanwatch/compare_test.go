package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/gate"
	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/regress"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

type compareAnswer struct {
	Status string `json:"status"`
	Data   struct {
		Report struct {
			Verdict string `json:"verdict"`
			Results []struct {
				Name     string `json:"name"`
				Verdict  string `json:"verdict"`
				Findings []struct {
					Check       string `json:"check"`
					Verdict     string `json:"verdict"`
					Significant bool   `json:"significant"`
					Large       bool   `json:"large"`
				} `json:"findings"`
			} `json:"results"`
		} `json:"report"`
		Distributions map[string]struct {
			Bounds   []*float64 `json:"bounds"`
			Counts   []float64  `json:"counts"`
			Requests float64    `json:"requests"`
		} `json:"distributions"`
	} `json:"data"`
}

// gateClock sets the CLI's clock for the test, so that its report's time
// equals the server's.
func gateClock(t *testing.T, now func() time.Time) {
	t.Helper()
	prev := gateNow
	gateNow = now
	t.Cleanup(func() { gateNow = prev })
}

// onePath runs one request through the CLI (args), the compare API (body)
// and the package (req) at the simulation's time, and returns the three
// JSON reports, compacted, and the CLI's exit code.
func onePath(t *testing.T, s *spantest.Simulation, args []string, body string, req gate.Request) (cli, api, pkg string, code int) {
	t.Helper()
	base := "http://" + s.App.WebAddr().String()
	gateClock(t, s.Clock.Now)
	code, out, errOut := runGate(t, append([]string{"--url=" + base, "--format=json"}, args...)...)
	require.Contains(t, []int{gatePass, gateRegression, gateInconclusive}, code, errOut)
	var b bytes.Buffer
	require.NoError(t, json.Compact(&b, []byte(out)))
	cli = b.String()

	resp, err := http.Post(base+"/api/v1/compare", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var env struct {
		Status string
		Data   struct{ Report json.RawMessage }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	api = string(env.Data.Report)

	cfg := gate.DefaultConfig()
	cfg.MaxWait = 0
	plan, err := gate.NewPlan(&req, cfg, s.Clock.Now())
	require.NoError(t, err)
	client, err := query.Remote{URL: base}.Client(nil)
	require.NoError(t, err)
	rep, err := gate.Run(context.Background(), plan, gate.Options{API: v1.NewAPI(client), Now: s.Clock.Now})
	require.NoError(t, err)
	enc, err := json.Marshal(gate.JSON(rep))
	require.NoError(t, err)
	return cli, api, string(enc), code
}

// TestOneGatePath: the CLI, POST /api/v1/compare and internal/gate give
// byte-identical JSON reports for the same request.
func TestOneGatePath(t *testing.T) {
	v1v2 := []string{`--baseline=service_version="v1"`, `--candidate=service_version="v2"`}
	for name, tc := range map[string]struct {
		slow float64
		args []string
		body string
		req  gate.Request
		want string
	}{
		"regression": {2, append(v1v2, "--max-wait=0s"),
			`{"service":"checkout","baseline":{"matchers":"service_version=\"v1\""},"candidate":{"matchers":"service_version=\"v2\""}}`,
			gate.Request{Service: "checkout", Baseline: gate.ArmRequest{Matchers: `service_version="v1"`}, Candidate: gate.ArmRequest{Matchers: `service_version="v2"`}},
			"regression"},
		"pass, every kind, one operation": {1, append(v1v2, "--max-wait=0s", "--span-kind=any", "--operation=GET /cart"),
			`{"service":"checkout","span_kind":"any","operations":["GET /cart"],"baseline":{"matchers":"service_version=\"v1\""},"candidate":{"matchers":"service_version=\"v2\""}}`,
			gate.Request{Service: "checkout", SpanKind: "any", Operations: []string{"GET /cart"}, Baseline: gate.ArmRequest{Matchers: `service_version="v1"`}, Candidate: gate.ArmRequest{Matchers: `service_version="v2"`}},
			"pass"},
		"auto versions": {2, []string{"--max-wait=0s"}, `{"service":"checkout"}`, gate.Request{Service: "checkout"}, "regression"},
		// Offset mode widens the ratios the user did not set, in all three.
		"offset, one ratio set": {2, []string{"--baseline-offset=5m", "--window=4m", "--max-wait=0s", "--min-ratio-p95=1.05", `--candidate=service_version="v2"`, `--baseline=service_version="v2"`},
			`{"service":"checkout","window":"4m","baseline":{"offset":"5m","matchers":"service_version=\"v2\""},"candidate":{"matchers":"service_version=\"v2\""},"thresholds":{"min_ratio":{"p95":1.05}}}`,
			gate.Request{Service: "checkout", Window: "4m", Baseline: gate.ArmRequest{Offset: "5m", Matchers: `service_version="v2"`}, Candidate: gate.ArmRequest{Matchers: `service_version="v2"`},
				Thresholds: json.RawMessage(`{"min_ratio":{"p95":1.05}}`)},
			""},
	} {
		t.Run(name, func(t *testing.T) {
			s := gateSim(t, nil, tc.slow)
			cli, api, pkg, _ := onePath(t, s, append([]string{"--service=checkout"}, tc.args...), tc.body, tc.req)
			require.Equal(t, pkg, cli, "CLI")
			require.Equal(t, pkg, api, "compare API")
			var rep struct {
				Verdict string
				Notes   []string
			}
			require.NoError(t, json.Unmarshal([]byte(pkg), &rep))
			if tc.want != "" {
				require.Equal(t, tc.want, rep.Verdict)
			}
			if strings.Contains(name, "offset") {
				require.Contains(t, strings.Join(rep.Notes, "\n"), "P50 ×1.2, P95 ×1.05, P99 ×1.3")
			}
		})
	}
}

// TestOneGatePathWhereCallersDiffered: the cases where the CLI and the
// compare API used to answer differently now answer alike.
func TestOneGatePathWhereCallersDiffered(t *testing.T) {
	s := oneVersionSim(t, nil, 5, 1)
	base := "http://" + s.App.WebAddr().String()
	gateClock(t, s.Clock.Now)

	// Fewer than two versions: inconclusive in both (the API answered 400).
	code, out, errOut := runGate(t, "--url="+base, "--service=checkout", "--max-wait=0s", "--format=json")
	require.Equal(t, gateInconclusive, code, errOut)
	api := postCompare(t, base, `{"service":"checkout"}`)
	require.Equal(t, "inconclusive", api.Data.Report.Verdict)
	requireSameReport(t, out, api)
	require.Empty(t, api.Data.Distributions["baseline"].Counts, "no look ran")

	// An offset on the candidate is refused by the plan (the API ran it).
	_, err := gate.NewPlan(&gate.Request{Service: "checkout", Candidate: gate.ArmRequest{Offset: "1h"}}, gate.DefaultConfig(), time.Now())
	require.ErrorContains(t, err, "candidate.offset")
	requireCompareError(t, base, `{"service":"checkout","candidate":{"offset":"1h"}}`, "candidate.offset")

	// Matchers narrow explicit ranges in both (the CLI refused them).
	code, out, errOut = runGate(t, "--url="+base, "--service=checkout", `--baseline=service_version="v2"`, `--candidate=service_version="v2"`,
		"--baseline-range=-10m,-5m", "--candidate-range=-5m,now", "--format=json")
	require.Contains(t, []int{gatePass, gateInconclusive}, code, errOut)
	api = postCompare(t, base, `{"service":"checkout","baseline":{"matchers":"service_version=\"v2\"","start":"-10m","end":"-5m"},"candidate":{"matchers":"service_version=\"v2\"","start":"-5m","end":"now"}}`)
	requireSameReport(t, out, api)

	// A span kind outside the list is refused by both, with the same list.
	code, _, errOut = runGate(t, "--url="+base, "--service=checkout", "--span-kind=sideways")
	require.Equal(t, gateUsage, code)
	require.Contains(t, errOut, "server")
	requireCompareError(t, base, `{"service":"checkout","span_kind":"sideways"}`, strings.Join(gate.SpanKinds(), ", "))

	// A bad window names the key once in both.
	code, _, errOut = runGate(t, "--url="+base, "--service=checkout", "--window=30s")
	require.Equal(t, gateUsage, code)
	require.Contains(t, errOut, "gate settings: window: must be at least 1m, got 30s")
	requireCompareError(t, base, `{"service":"checkout","window":"30s"}`, "window: must be at least 1m, got 30s")
}

// TestCompareReadsEachArmOnce: the compare endpoint draws the
// distributions from what the run read, so a comparison costs the queries
// of one gate run and no more.
func TestCompareReadsEachArmOnce(t *testing.T) {
	s := gateSim(t, nil, 2)
	target, err := url.Parse("http://" + s.App.WebAddr().String())
	require.NoError(t, err)
	var queries atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries.Add(1)
		proxy.ServeHTTP(w, r)
	})
	api := query.HandlerAPI(counting)
	c := &gate.Comparer{API: api, Defaults: gate.DefaultConfig(), Now: s.Clock.Now}
	body := `{"service":"checkout","naming":"otel","baseline":{"matchers":"service_version=\"v1\""},"candidate":{"matchers":"service_version=\"v2\""}}`
	resp, err := c.Compare(context.Background(), strings.NewReader(body))
	require.NoError(t, err)
	compared := queries.Swap(0)
	require.NotEmpty(t, resp.(*gate.CompareResponse).Distributions["candidate"].Counts)

	var req gate.Request
	require.NoError(t, json.Unmarshal([]byte(body), &req))
	cfg := gate.DefaultConfig()
	cfg.MaxWait = 0
	plan, err := gate.NewPlan(&req, cfg, s.Clock.Now())
	require.NoError(t, err)
	_, err = gate.Run(context.Background(), plan, gate.Options{API: api, Now: s.Clock.Now})
	require.NoError(t, err)
	require.Equal(t, queries.Load(), compared, "one comparison = one gate run")
	require.Equal(t, int64(16), compared, "8 queries per arm, each arm once")
}

func requireCompareError(t *testing.T, base, body, msg string) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/compare", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var e struct{ Status, ErrorType, Error string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, e.Error)
	require.Equal(t, "bad_data", e.ErrorType)
	require.Contains(t, e.Error, msg)
}

func TestCompareAPIErrors(t *testing.T) {
	s := gateSim(t, nil, 1)
	base := "http://" + s.App.WebAddr().String()
	for name, tc := range map[string]struct {
		body, msg string
	}{
		"no service":      {`{}`, "service: is required"},
		"unknown key":     {`{"service":"checkout","bogus":1}`, "bogus"},
		"bad matchers":    {`{"service":"checkout","baseline":{"matchers":"service_version="}}`, "baseline.matchers"},
		"bad threshold":   {`{"service":"checkout","thresholds":{"alpha":2}}`, "alpha"},
		"unknown thresh":  {`{"service":"checkout","thresholds":{"alfa":0.1}}`, "alfa"},
		"one range":       {`{"service":"checkout","baseline":{"start":"-9m","end":"-5m"}}`, "go together"},
		"bad window":      {`{"service":"checkout","window":"10s"}`, "window"},
		"bad span kind":   {`{"service":"checkout","span_kind":"sideways"}`, "span_kind"},
		"not json at all": {`nope`, "request body"},
	} {
		t.Run(name, func(t *testing.T) { requireCompareError(t, base, tc.body, tc.msg) })
	}
	resp, err := http.Get(base + "/api/v1/compare")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// TestCompareAPIUsesTheConfigFileThresholds: the server's gate: section
// sets the comparison's thresholds, as --config.file does for the CLI.
func TestCompareAPIUsesTheConfigFileThresholds(t *testing.T) {
	cfg := config.Default()
	cfg.Gate.MinRatio = regress.Quantiles{P50: 100, P95: 100, P99: 100}
	s := gateSim(t, cfg, 2)
	body := `{"service":"checkout","baseline":{"matchers":"service_version=\"v1\""},"candidate":{"matchers":"service_version=\"v2\""}}`
	api := postCompare(t, "http://"+s.App.WebAddr().String(), body)
	require.Equal(t, "pass", api.Data.Report.Verdict, "a doubling is not 100×")
}

// postCompare posts body to POST /api/v1/compare and returns the successful
// answer.
func postCompare(t *testing.T, base, body string) compareAnswer {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/compare", "application/json", bytes.NewBufferString(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var api compareAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&api))
	require.Equal(t, "success", api.Status)
	return api
}

// requireSameReport: the compare API's report equals `spanwatch gate
// --format json`'s output cliJSON.
func requireSameReport(t *testing.T, cliJSON string, api compareAnswer) {
	t.Helper()
	var cli compareAnswer
	require.NoError(t, json.Unmarshal([]byte(`{"status":"success","data":{"report":`+cliJSON+`}}`), &cli))
	require.Equal(t, cli.Data.Report, api.Data.Report)
}

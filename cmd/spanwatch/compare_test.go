package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/gate"
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

// TestCompareAPIMatchesGate: POST /api/v1/compare and `spanwatch gate` on
// the same data reach the same verdicts and findings.
func TestCompareAPIMatchesGate(t *testing.T) {
	for name, slow := range map[string]float64{"regression": 2, "pass": 1} {
		t.Run(name, func(t *testing.T) {
			s := gateSim(t, nil, slow)
			base := "http://" + s.App.WebAddr().String()
			body := `{"service":"checkout","baseline":{"matchers":"service_version=\"v1\""},"candidate":{"matchers":"service_version=\"v2\""}}`
			api := postCompare(t, base, body)
			code, out, errOut := runGate(t, "--url="+base, "--service=checkout", `--baseline=service_version="v1"`,
				`--candidate=service_version="v2"`, "--max-wait=0s", "--format=json")
			require.Contains(t, []int{gatePass, gateRegression}, code, errOut)
			requireSameReport(t, out, api)
			require.Equal(t, map[float64]string{2: "regression", 1: "pass"}[slow], api.Data.Report.Verdict)
			for _, arm := range []string{"baseline", "candidate"} {
				d := api.Data.Distributions[arm]
				require.NotEmpty(t, d.Counts, arm)
				require.Len(t, d.Bounds, len(d.Counts), arm)
				require.Greater(t, d.Requests, 0.0, arm)
			}
		})
	}
}

func TestCompareAPIErrors(t *testing.T) {
	s := gateSim(t, nil, 1)
	base := "http://" + s.App.WebAddr().String()
	for name, tc := range map[string]struct {
		body string
		code int
		msg  string
	}{
		"no service":      {`{}`, 400, "service is required"},
		"unknown key":     {`{"service":"checkout","bogus":1}`, 400, "bogus"},
		"bad matchers":    {`{"service":"checkout","baseline":{"matchers":"service_version="}}`, 400, "baseline.matchers"},
		"bad threshold":   {`{"service":"checkout","thresholds":{"alpha":2}}`, 400, "alpha"},
		"unknown thresh":  {`{"service":"checkout","thresholds":{"alfa":0.1}}`, 400, "alfa"},
		"one range":       {`{"service":"checkout","baseline":{"start":"-9m","end":"-5m"}}`, 400, "go together"},
		"auto 1 version":  {`{"service":"ghost","naming":"otel"}`, 400, "0 versions"},
		"bad window":      {`{"service":"checkout","window":"10s"}`, 400, "window"},
		"bad span kind":   {`{"service":"checkout","span_kind":"sideways"}`, 400, "span_kind"},
		"not json at all": {`nope`, 400, "request body"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := http.Post(base+"/api/v1/compare", "application/json", bytes.NewBufferString(tc.body))
			require.NoError(t, err)
			defer func() { _ = resp.Body.Close() }()
			var e struct{ Status, ErrorType, Error string }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			require.Equal(t, tc.code, resp.StatusCode, e.Error)
			require.Equal(t, "error", e.Status)
			require.Equal(t, "bad_data", e.ErrorType)
			require.Contains(t, e.Error, tc.msg)
		})
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
	cfg.Gate.MinRatio = gate.Quantiles{P50: 100, P95: 100, P99: 100}
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

package main

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/spanwatch/spanwatch/internal/app"
	"github.com/spanwatch/spanwatch/internal/config"
	"github.com/spanwatch/spanwatch/internal/testutil/spantest"
)

// oneVersion is one flush interval of one version of checkout.
func oneVersion(rng *rand.Rand, version string, n int, slow float64) []spantest.Stub {
	out := make([]spantest.Stub, 0, n)
	for range n {
		d := 40 * math.Exp(0.5*rng.NormFloat64()) * slow
		out = append(out, spantest.Stub{Service: "checkout", Name: "POST /charge", Kind: trace.SpanKindServer,
			Dur: time.Duration(d * float64(time.Millisecond)),
			Res: []attribute.KeyValue{attribute.String("service.version", version)}})
	}
	return out
}

// TestGateWaitsForServerDeploymentVerdict: `spanwatch gate --deployment`
// answers with the server's own verdict of a switch that made checkout
// twice as slow, with the gate's exit codes, though the old version has
// stopped serving.
func TestGateWaitsForServerDeploymentVerdict(t *testing.T) {
	cfg := config.Default()
	s := spantest.NewSimulation(t, cfg, time.Now().Add(-15*time.Minute), func(o *app.Options) { o.DeployManualPolls = true })
	rng := rand.New(rand.NewPCG(3, 4))
	step := func(stubs []spantest.Stub) {
		s.Step(15*time.Second, stubs)
		require.NoError(t, s.App.PollDeployments(context.Background()))
	}
	for range 24 {
		step(oneVersion(rng, "v1", 100, 1))
	}
	url := "--url=http://" + s.App.WebAddr().String()
	code, out, errOut := runGate(t, url, "--service=checkout", "--deployment=v2", "--max-wait=0s")
	require.Equal(t, gateInconclusive, code, out+errOut)
	require.Contains(t, errOut, "no deployment v2")

	step(oneVersion(rng, "v2", 100, 2))
	code, _, errOut = runGate(t, url, "--service=checkout", "--deployment=latest", "--max-wait=0s")
	require.Equal(t, gateInconclusive, code, "watching is no verdict yet")
	require.Contains(t, errOut, "is being watched")

	for range 40 {
		step(oneVersion(rng, "v2", 100, 2))
	}
	code, out, errOut = runGate(t, url, "--service=checkout", "--deployment=v2", "--max-wait=1m", "--format=json")
	require.Equal(t, gateRegression, code, out+errOut)
	var d serverDeployment
	require.NoError(t, json.Unmarshal([]byte(out), &d))
	require.Equal(t, "regression", d.Verdict)
	require.Equal(t, "v1", d.PreviousVersion)
	require.NotEmpty(t, d.Report)

	code, out, _ = runGate(t, url, "--service=checkout", "--deployment=latest")
	require.Equal(t, gateRegression, code)
	require.Contains(t, out, "regression")

	code, _, errOut = runGate(t, url, "--service=checkout", "--deployment=latest", `--baseline=service_version="v1"`)
	require.Equal(t, gateUsage, code)
	require.Contains(t, errOut, "--baseline does not apply")

	code, _, _ = runGate(t, "--url=http://127.0.0.1:1", "--service=checkout", "--deployment=latest")
	require.Equal(t, gateBackend, code)
}

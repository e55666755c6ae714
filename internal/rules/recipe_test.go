package rules_test

import (
	"context"
	"testing"
	"time"

	prules "github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/rules"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
)

// TestRecipeAlertsFire loads the recipe's alert rules, verbatim, over span
// metrics named as its collector names them (legacy naming, namespace
// jaeger_spm), and drives them with spans: checkout's latency doubles.
func TestRecipeAlertsFire(t *testing.T) {
	file := testutil.RecipeFile(t, "alerts.yml")
	now := time.Now().Truncate(15 * time.Second)
	start := now.Add(-90 * time.Minute)
	slowFrom := now.Add(-20 * time.Minute)
	nc := spanmetrics.NamingConfig{Naming: spanmetrics.NamingLegacy, Namespace: "jaeger_spm", ConstLabels: map[string]string{"cluster": "production"}}
	h := newHistory(t, spanmetrics.DefaultConfig(), nc, start)
	h.run(t, now, func(ts time.Time) time.Duration {
		if ts.Before(slowFrom) {
			return 100 * time.Millisecond
		}
		return 200 * time.Millisecond
	})
	m, err := rules.New(rules.Options{
		Files:              []string{file},
		EvaluationInterval: 30 * time.Second,
		QueryFunc:          prules.EngineQueryFunc(h.eng.Engine, h.store.Queryable()),
		Appendable:         h.store.Appendable(),
	})
	require.NoError(t, err)
	defer m.Stop()
	for ts := slowFrom; !ts.After(now); ts = ts.Add(30 * time.Second) {
		m.EvalAt(context.Background(), ts)
	}
	states := map[string]string{}
	var summary string
	for _, ar := range m.AlertingRules() {
		require.NoError(t, ar.LastError(), ar.Name())
		states[ar.Name()] = ar.State().String()
		if ar.Name() == "ServiceLatencyP95Regression" {
			for _, a := range ar.ActiveAlerts() {
				require.Equal(t, "checkout", a.Labels.Get("service_name"))
				require.Equal(t, "POST /charge", a.Labels.Get("operation"))
				require.Equal(t, "production", a.Labels.Get("cluster"))
				summary = a.Annotations.Get("summary")
			}
		}
	}
	require.Equal(t, map[string]string{
		"ServiceLatencyP95Regression": "firing",
		"ServiceLatencyP99Spike":      "inactive",
		"ServiceErrorRateIncreased":   "inactive",
		"SlowOperationDetected":       "inactive",
		"ServiceThroughputDrop":       "inactive",
	}, states)
	require.Equal(t, "Service checkout P95 latency increased by 100%", summary)

	// The alert state is stored, so that a restarted spanwatch restores the
	// state of `for` (Prometheus's rules manager reads ALERTS_FOR_STATE).
	q := prules.EngineQueryFunc(h.eng.Engine, h.store.Queryable())
	for _, expr := range []string{
		`ALERTS{alertname="ServiceLatencyP95Regression", alertstate="firing", service_name="checkout"}`,
		`ALERTS_FOR_STATE{alertname="ServiceLatencyP95Regression", service_name="checkout"}`,
	} {
		v, err := q(context.Background(), expr, now)
		require.NoError(t, err)
		require.NotEmpty(t, v, expr)
	}
}

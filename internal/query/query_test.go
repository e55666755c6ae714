package query

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPromQLBuiltinSuite runs Prometheus's own scripted PromQL test suite
// through spanwatch's engine wiring, with every feature on as that suite
// expects (Prometheus runs it the same way).
func TestPromQLBuiltinSuite(t *testing.T) {
	opts := DefaultOptions()
	opts.Timeout = 100 * time.Second
	opts.Features = AllFeatures()
	e, err := NewEngine(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	promqltest.RunBuiltinTests(t, e.Engine)
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"zero timeout", func(o *Options) { o.Timeout = 0 }, "query timeout must be positive, got 0s"},
		{"negative timeout", func(o *Options) { o.Timeout = -time.Second }, "query timeout must be positive, got -1s"},
		{"negative max samples", func(o *Options) { o.MaxSamples = -1 }, "query max samples must be positive, got -1"},
		{"zero max samples", func(o *Options) { o.MaxSamples = 0 }, "query max samples must be positive, got 0"},
		{"zero lookback delta", func(o *Options) { o.LookbackDelta = 0 }, "lookback delta must be positive, got 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.mutate(&o)
			require.EqualError(t, o.Validate(), tc.want)
			e, err := NewEngine(o)
			require.EqualError(t, err, tc.want)
			require.Nil(t, e)
		})
	}
	o := DefaultOptions()
	require.NoError(t, o.Validate())
}

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
	for _, mutate := range []func(*Options){
		func(o *Options) { o.Timeout = 0 },
		func(o *Options) { o.MaxSamples = -1 },
		func(o *Options) { o.LookbackDelta = 0 },
	} {
		o := DefaultOptions()
		mutate(&o)
		_, err := NewEngine(o)
		require.Error(t, err)
	}
}

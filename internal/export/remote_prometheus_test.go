package export

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
)

// TestRemoteWriteRealPrometheus has two replicas, each with its own
// aggregator and replica external label, remote-write to a real Prometheus
// (the Debian 2.42 package) and checks with PromQL that sums over the
// replicas, classic buckets, native histograms, increase() over new series
// and staleness markers come out right. The aggregators run on a fake
// clock and every query is pinned with @, so the test waits for nothing
// but Prometheus's answers.
func TestRemoteWriteRealPrometheus(t *testing.T) {
	testutil.Binary(t, "prometheus")
	prom := testutil.StartPrometheus(t, "global:\n  scrape_interval: 1m\n",
		"--web.enable-remote-write-receiver", "--enable-feature=native-histograms")

	reg := prometheus.NewRegistry()
	clk := &rwClock{}
	clk.set(time.Now())
	type replica struct {
		agg *spanmetrics.Aggregator
		w   *RemoteWriter
	}
	newReplica := func(name string, expiry time.Duration) replica {
		cfg := spanmetrics.DefaultConfig()
		cfg.SeriesExpiration = expiry
		agg, err := spanmetrics.New(cfg, spanmetrics.Options{Now: clk.now})
		require.NoError(t, err)
		w, err := NewRemoteWriter(RemoteWriteConfig{
			URL:            prom.URL + "/api/v1/write",
			Name:           name,
			ExternalLabels: map[string]string{"replica": name},
		}, nil, reg)
		require.NoError(t, err)
		w.Start()
		t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
		return replica{agg, w}
	}
	// b's series expire 3 s after its last span.
	a, b := newReplica("a", time.Hour), newReplica("b", 3*time.Second)

	// n spans of 1…100 ms (i%100+1), so ≤10 ms holds n/10 of them.
	feed := func(r replica, n int) {
		durs := make([]time.Duration, n)
		for i := range durs {
			durs[i] = time.Duration(i%100+1) * time.Millisecond
		}
		rwSpans(t, r.agg, "svc", "GET /items", durs...)
	}
	flush := func(rs ...replica) time.Time {
		now := clk.now()
		for _, r := range rs {
			r.w.ConsumeSnapshot(r.agg.Snapshot(now))
		}
		return now
	}

	feed(a, 600)
	feed(b, 400)
	flush(a, b) // new series: zero samples at creation, then 600 and 400
	clk.add(1500 * time.Millisecond)
	feed(a, 100)
	t2 := flush(a, b)

	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	const wait = 20 * time.Second
	atTime := func(t time.Time) string { return fmt.Sprintf("@ %.3f", float64(t.UnixMilli())/1000) }
	at := atTime(t2)
	// Each replica's series are its own: sums over replicas are correct.
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_calls_total `+at+`)`, wait, eq(1100))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_calls_total{replica="a"} `+at+`)`, wait, eq(700))
	testutil.Eventually(t, prom.URL, `count(traces_span_metrics_calls_total `+at+`)`, wait, eq(2))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_bucket{le="10"} `+at+`)`, wait, eq(110))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_bucket{le="+Inf"} `+at+`)`, wait, eq(1100))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_sum `+at+`)`, wait, eq(7*5050+4*5050))
	testutil.Eventually(t, prom.URL, `histogram_count(sum(traces_span_metrics_duration_milliseconds `+at+`))`, wait, eq(1100))
	testutil.Eventually(t, prom.URL, `histogram_sum(sum(traces_span_metrics_duration_milliseconds `+at+`))`, wait, eq(11*5050))
	p50 := testutil.Eventually(t, prom.URL, `histogram_quantile(0.5, sum(traces_span_metrics_duration_milliseconds `+at+`))`, wait,
		func(v float64) bool { return !math.IsNaN(v) })
	require.InEpsilon(t, 50, p50, 0.1, "native P50 within a bucket width")
	// The zero sample at creation lets increase() count the first spans,
	// b's included although it has one non-zero sample only. With the range
	// ending on the last sample and starting at a zero, nothing is
	// extrapolated.
	testutil.Eventually(t, prom.URL, `sum(increase(traces_span_metrics_calls_total[5m] `+at+`))`, wait, eq(1100))
	testutil.Eventually(t, prom.URL, `sum(increase(traces_span_metrics_duration_milliseconds_bucket{le="10"}[5m] `+at+`))`, wait, eq(110))
	// Native histograms: Prometheus 2.42 does not clamp the extrapolation
	// towards the range start at a zero count as it does for floats, so
	// with three samples per series (0, then two values) it adds half the
	// average interval: 1100 × 1.25. Later versions clamp: 1100.
	testutil.Eventually(t, prom.URL, `histogram_count(sum(increase(traces_span_metrics_duration_milliseconds[5m] `+at+`)))`, wait,
		func(v float64) bool { return v == 1100 || v == 1375 })
	// target_info arrives with the replica label.
	testutil.Eventually(t, prom.URL, `count(target_info{host_name="h1"} `+at+`)`, wait, eq(2))

	// b's series expire: staleness markers (float and native histogram)
	// end them at once instead of after the 5 m lookback.
	clk.add(3100 * time.Millisecond)
	at = atTime(flush(a, b))
	testutil.Eventually(t, prom.URL, `absent(traces_span_metrics_calls_total{replica="b"} `+at+`)`, wait, eq(1))
	testutil.Eventually(t, prom.URL, `absent(traces_span_metrics_duration_milliseconds_bucket{replica="b"} `+at+`)`, wait, eq(1))
	testutil.Eventually(t, prom.URL, `absent(traces_span_metrics_duration_milliseconds{replica="b"} `+at+`)`, wait, eq(1))
	testutil.Eventually(t, prom.URL, `absent(target_info{replica="b"} `+at+`)`, wait, eq(1))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_calls_total `+at+`)`, wait, eq(700))
	testutil.Eventually(t, prom.URL, `histogram_count(sum(traces_span_metrics_duration_milliseconds `+at+`))`, wait, eq(700))

	for _, r := range []replica{a, b} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		require.NoError(t, r.w.Shutdown(ctx))
		cancel()
		for reason, c := range r.w.m.dropped {
			require.Zero(t, promtestutil.ToFloat64(c), "%s dropped %s", r.w.Name(), reason)
		}
		require.Zero(t, promtestutil.ToFloat64(r.w.m.failed), r.w.Name())
		t.Logf("replica %s: %v samples sent", r.w.Name(), promtestutil.ToFloat64(r.w.m.sent))
	}
}

// TestRemoteWriteRealPrometheusWithoutNativeHistograms writes span metrics
// with the default config (native histograms on) to a real Prometheus 2.x
// started without --enable-feature=native-histograms. Such a Prometheus
// answers 500 to every request that holds a native histogram: a destination
// with the default send_native_histograms gets nothing stored, classic
// series included, one with send_native_histograms: false gets the classic
// series.
func TestRemoteWriteRealPrometheusWithoutNativeHistograms(t *testing.T) {
	testutil.Binary(t, "prometheus")
	prom := testutil.StartPrometheus(t, "global:\n  scrape_interval: 1m\n", "--web.enable-remote-write-receiver")

	clk := &rwClock{}
	clk.set(time.Now())
	agg, err := spanmetrics.New(spanmetrics.DefaultConfig(), spanmetrics.Options{Now: clk.now})
	require.NoError(t, err)
	newWriter := func(name string, sendNative *bool) *RemoteWriter {
		w, err := NewRemoteWriter(RemoteWriteConfig{
			URL:                  prom.URL + "/api/v1/write",
			Name:                 name,
			MinBackoff:           10 * time.Millisecond,
			MaxBackoff:           100 * time.Millisecond,
			SendNativeHistograms: sendNative,
			ExternalLabels:       map[string]string{"replica": name},
		}, nil, nil)
		require.NoError(t, err)
		w.Start()
		t.Cleanup(func() {
			// Bounded: the native destination never succeeds.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = w.Shutdown(ctx)
		})
		return w
	}
	classic, native := newWriter("classic", new(false)), newWriter("native", nil)
	flush := func() (time.Time, int) {
		s := agg.Snapshot(clk.now())
		classic.ConsumeSnapshot(s)
		native.ConsumeSnapshot(s)
		return s.Time, countSamples(s, false)
	}

	// n spans of 1…100 ms (i%100+1), so ≤10 ms holds n/10 of them.
	feed := func(n int) {
		durs := make([]time.Duration, n)
		for i := range durs {
			durs[i] = time.Duration(i%100+1) * time.Millisecond
		}
		rwSpans(t, agg, "svc", "GET /items", durs...)
	}
	feed(600)
	_, n1 := flush()
	clk.add(50 * time.Millisecond)
	feed(100)
	t2, n2 := flush()

	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	const wait = 20 * time.Second
	at := fmt.Sprintf("@ %.3f", float64(t2.UnixMilli())/1000)
	sel := `{replica="classic"} ` + at
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_calls_total`+sel+`)`, wait, eq(700))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_bucket{replica="classic",le="10"} `+at+`)`, wait, eq(70))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_sum`+sel+`)`, wait, eq(7*5050))
	testutil.Eventually(t, prom.URL, `sum(traces_span_metrics_duration_milliseconds_count`+sel+`)`, wait, eq(700))
	testutil.Eventually(t, prom.URL, `sum(increase(traces_span_metrics_calls_total{replica="classic"}[5m] `+at+`))`, wait, eq(700))
	testutil.Eventually(t, prom.URL, `count(target_info`+sel+`)`, wait, eq(1))
	// No native histogram, and nothing from the destination that sends them.
	testutil.Eventually(t, prom.URL, `absent(traces_span_metrics_duration_milliseconds`+sel+`)`, wait, eq(1))
	require.Eventually(t, func() bool { return promtestutil.ToFloat64(native.m.failed) >= 2 }, wait, 10*time.Millisecond)
	testutil.Eventually(t, prom.URL, `absent(traces_span_metrics_calls_total{replica="native"} `+at+`)`, wait, eq(1))
	testutil.Eventually(t, prom.URL, `absent(target_info{replica="native"} `+at+`)`, wait, eq(1))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, classic.Shutdown(ctx))
	require.Equal(t, float64(n1+n2), promtestutil.ToFloat64(classic.m.sent))
	require.Zero(t, promtestutil.ToFloat64(classic.m.failed))
	for reason, c := range classic.m.dropped {
		require.Zero(t, promtestutil.ToFloat64(c), "classic dropped %s", reason)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, native.Shutdown(ctx), context.DeadlineExceeded, "the native destination retries until shutdown")
	require.Zero(t, promtestutil.ToFloat64(native.m.sent))
	require.Positive(t, promtestutil.ToFloat64(native.m.retried))
}

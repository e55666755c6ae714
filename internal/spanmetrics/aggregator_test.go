package spanmetrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func labelsOf(s *Snapshot, ss *SeriesSnapshot) map[string]string {
	out := map[string]string{}
	for _, l := range s.Names.Labels(nil, ss) {
		out[l.Name] = l.Value
	}
	return out
}

func TestBucketsAreInclusive(t *testing.T) {
	a := newTestAgg(t, DefaultConfig(), NamingConfig{})
	durs := []time.Duration{0, -time.Second, 2 * time.Millisecond, 2*time.Millisecond + 1, 10 * time.Millisecond, 15 * time.Second, 15*time.Second + 1, time.Hour}
	for _, d := range durs {
		td := makeTraces(spanSpec{service: "svc", name: "op", dur: d})
		if d < 0 {
			// end before start
			sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			sp.SetEndTimestamp(sp.StartTimestamp() - 1000)
		}
		_, err := a.ConsumeProto(marshal(t, td))
		require.NoError(t, err)
	}
	s := a.Snapshot(t0)
	require.Len(t, s.Series, 1)
	b := s.Series[0].Buckets
	require.Len(t, b, len(DefaultBuckets)+1)
	want := make([]uint64, len(b))
	want[0] = 3 // 0, negative→0, exactly 2ms
	want[1] = 1 // 2ms+1ns
	want[4] = 1 // exactly 10ms
	want[15] = 1
	want[16] = 2 // above 15s
	require.Equal(t, want, b)
	require.Equal(t, uint64(len(durs)), s.Series[0].Count)
	require.InDelta(t, (2+2+1e-6+10+15000+15000+1e-6+3600000)*1.0, s.Series[0].Sum, 1e-6)
	require.Equal(t, []float64{2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000}, s.Bounds)
}

func TestDimensionsLookupOrder(t *testing.T) {
	a := newTestAgg(t, recipeConfig(), NamingConfig{})
	td := makeTraces(
		// span attribute beats resource attribute
		spanSpec{service: "a", name: "1", attrs: map[string]any{"k8s.namespace": "span", "http.status_code": int64(404)},
			resAttrs: map[string]any{"k8s.namespace": "res", "k8s.deployment.name": "dep", "service.version": "v2"}},
		// default applies; absent without default is omitted
		spanSpec{service: "a", name: "2"},
	)
	_, err := a.ConsumeProto(marshal(t, td))
	require.NoError(t, err)
	s := a.Snapshot(t0)
	got := findSeries(t, s, map[string]string{"span_name": "1"})
	require.Len(t, got, 1)
	require.Equal(t, map[string]string{
		"job": "a", "service_name": "a", "span_name": "1", "span_kind": "SPAN_KIND_UNSPECIFIED", "status_code": "STATUS_CODE_UNSET",
		"k8s_namespace": "span", "k8s_deployment_name": "dep", "http_status_code": "404", "http_method": "GET", "service_version": "v2",
	}, labelsOf(s, got[0]))
	got = findSeries(t, s, map[string]string{"span_name": "2"})
	require.Len(t, got, 1)
	require.Equal(t, map[string]string{
		"job": "a", "service_name": "a", "span_name": "2", "span_kind": "SPAN_KIND_UNSPECIFIED", "status_code": "STATUS_CODE_UNSET",
		"http_method": "GET",
	}, labelsOf(s, got[0]))
}

func TestUnknownServiceAndIdentity(t *testing.T) {
	a := newTestAgg(t, DefaultConfig(), NamingConfig{})
	td := makeTraces(
		spanSpec{name: "x", kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError},
		spanSpec{service: "cart", name: "y", resAttrs: map[string]any{"service.namespace": "shop", "service.instance.id": "pod-7", "host.name": "n1"}},
	)
	n, err := a.ConsumeProto(marshal(t, td))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	s := a.Snapshot(t0)
	got := findSeries(t, s, map[string]string{"service_name": UnknownService})
	require.Len(t, got, 1)
	require.Equal(t, "SPAN_KIND_SERVER", labelsOf(s, got[0])["span_kind"])
	require.Equal(t, "STATUS_CODE_ERROR", labelsOf(s, got[0])["status_code"])
	got = findSeries(t, s, map[string]string{"job": "shop/cart", "instance": "pod-7"})
	require.Len(t, got, 1)
	require.Len(t, s.Targets, 1)
	require.Equal(t, []Label{{"job", "shop/cart"}, {"instance", "pod-7"}, {"host_name", "n1"}}, s.Targets[0].Attributes)
}

func TestNaming(t *testing.T) {
	cfg := recipeConfig()
	for _, tc := range []struct {
		nc                      NamingConfig
		calls, duration, opName string
	}{
		{NamingConfig{}, "traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds", "span_name"},
		{NamingConfig{Naming: NamingLegacy}, "calls_total", "latency", "operation"},
		{NamingConfig{Naming: NamingLegacy, Namespace: "jaeger_spm", ConstLabels: map[string]string{"cluster": "production"}},
			"jaeger_spm_calls_total", "jaeger_spm_latency", "operation"},
		{NamingConfig{Naming: NamingOTel, Namespace: "jaeger_spm"}, "jaeger_spm_traces_span_metrics_calls_total", "jaeger_spm_traces_span_metrics_duration_milliseconds", "span_name"},
	} {
		t.Run(tc.calls, func(t *testing.T) {
			a := newTestAgg(t, cfg, tc.nc)
			_, err := a.ConsumeProto(marshal(t, makeTraces(spanSpec{service: "s", name: "GET /", kind: ptrace.SpanKindServer})))
			require.NoError(t, err)
			s := a.Snapshot(t0)
			require.Equal(t, tc.calls, s.Names.Calls)
			require.Equal(t, tc.duration, s.Names.Duration)
			l := labelsOf(s, &s.Series[0])
			require.Equal(t, "GET /", l[tc.opName])
			for k, v := range tc.nc.ConstLabels {
				require.Equal(t, v, l[k])
			}
		})
	}
	cfg.Histogram.Unit = UnitSeconds
	a := newTestAgg(t, cfg, NamingConfig{})
	require.Equal(t, "traces_span_metrics_duration_seconds", a.Names().Duration)
}

func TestExcludeDimensions(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ExcludeDimensions = []string{DimStatusCode, DimServiceVersion, DimServiceName}
	a := newTestAgg(t, cfg, NamingConfig{})
	_, err := a.ConsumeProto(marshal(t, makeTraces(
		spanSpec{service: "s", name: "a", status: ptrace.StatusCodeError, resAttrs: map[string]any{"service.version": "1"}},
		spanSpec{service: "s", name: "a", status: ptrace.StatusCodeOk, resAttrs: map[string]any{"service.version": "2"}})))
	require.NoError(t, err)
	s := a.Snapshot(t0)
	require.Len(t, s.Series, 1)
	require.Equal(t, map[string]string{"job": "s", "span_name": "a", "span_kind": "SPAN_KIND_UNSPECIFIED"}, labelsOf(s, &s.Series[0]))
	require.Equal(t, uint64(2), s.Series[0].Count)
}

func TestCardinalityOverflow(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AggregationCardinalityLimit = 3
	a := newTestAgg(t, cfg, NamingConfig{})
	var specs []spanSpec
	for i := range 10 {
		specs = append(specs, spanSpec{service: "s", name: fmt.Sprint("op", i)})
	}
	_, err := a.ConsumeProto(marshal(t, makeTraces(append(specs, specs...)...)))
	require.NoError(t, err)
	s := a.Snapshot(t0)
	require.Equal(t, 3, a.ActiveSeries())
	require.Len(t, s.Series, 4)
	require.Equal(t, uint64(20), totalCalls(s))
	over := findSeries(t, s, map[string]string{"otel_metric_overflow": "true"})
	require.Len(t, over, 1)
	require.Equal(t, uint64(14), over[0].Count)
	require.Equal(t, map[string]string{"otel_metric_overflow": "true"}, labelsOf(s, over[0]))
}

func TestExpiryAndNewSeries(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SeriesExpiration = time.Minute
	now := t0
	a, err := New(cfg, Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	req := marshal(t, makeTraces(spanSpec{service: "s", name: "a", resAttrs: map[string]any{"host.name": "h"}}))
	_, err = a.ConsumeProto(req)
	require.NoError(t, err)
	s := a.Snapshot(now)
	require.True(t, s.Series[0].New)
	require.True(t, t0.Equal(s.Series[0].Created))
	require.Len(t, s.Targets, 1)
	now = now.Add(30 * time.Second)
	s = a.Snapshot(now)
	require.False(t, s.Series[0].New)
	now = now.Add(31 * time.Second)
	s = a.Snapshot(now)
	require.Empty(t, s.Series)
	require.Empty(t, s.Targets)
	require.Zero(t, a.ActiveSeries())
	_, err = a.ConsumeProto(req)
	require.NoError(t, err)
	s = a.Snapshot(now)
	require.Len(t, s.Series, 1)
	require.True(t, s.Series[0].New)
	require.Equal(t, uint64(1), s.Series[0].Count)
}

// TestExpiryShorterThanFlushKeepsSpans: a series idle for longer than its
// expiration is still reported once with every span it counted before it
// goes.
func TestExpiryShorterThanFlushKeepsSpans(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SeriesExpiration = time.Second
	now := t0
	a, err := New(cfg, Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	req := marshal(t, makeTraces(spanSpec{service: "s", name: "a"}, spanSpec{service: "s", name: "a"}))
	_, err = a.ConsumeProto(req)
	require.NoError(t, err)
	now = now.Add(15 * time.Second)
	s := a.Snapshot(now)
	require.Len(t, s.Series, 1, "spans counted before the expiration are reported")
	require.Equal(t, uint64(2), s.Series[0].Count)
	// Reported and idle: expired at the next snapshot, marked gone.
	_, err = a.ConsumeProto(req)
	require.NoError(t, err)
	now = now.Add(15 * time.Second)
	s = a.Snapshot(now)
	require.Len(t, s.Series, 1, "a span after the last report keeps it one more snapshot")
	require.Equal(t, uint64(4), s.Series[0].Count)
	now = now.Add(15 * time.Second)
	s = a.Snapshot(now)
	require.Empty(t, s.Series)
	require.Len(t, s.Gone, 1)
}

// TestNativeHistogramByDefault: every duration series keeps a native
// histogram beside its classic buckets unless exponential.enabled is false
// or the histogram is disabled.
func TestNativeHistogramByDefault(t *testing.T) {
	for name, c := range map[string]struct {
		mutate func(*Config)
		native bool
	}{
		"default":             {mutate: func(*Config) {}, native: true},
		"only enabled set":    {mutate: func(c *Config) { c.Histogram.Exponential = ExponentialConfig{Enabled: true} }, native: true},
		"exponential off":     {mutate: func(c *Config) { c.Histogram.Exponential.Enabled = false }},
		"histogram disabled":  {mutate: func(c *Config) { c.Histogram.Disable = true }},
		"zero value disabled": {mutate: func(c *Config) { c.Histogram.Exponential = ExponentialConfig{} }},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.SeriesExpiration = time.Minute
			c.mutate(&cfg)
			now := t0
			a, err := New(cfg, Options{Now: func() time.Time { return now }})
			require.NoError(t, err)
			_, err = a.ConsumeProto(marshal(t, makeTraces(
				spanSpec{service: "s", name: "a", dur: 3 * time.Millisecond},
				spanSpec{service: "s", name: "a", dur: 300 * time.Millisecond})))
			require.NoError(t, err)
			s := a.Snapshot(now)
			require.Len(t, s.Series, 1)
			ss := s.Series[0]
			require.Equal(t, []uint64{0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, ss.Buckets, "classic buckets either way")
			if !c.native {
				require.Nil(t, ss.Native)
			} else {
				require.NotNil(t, ss.Native)
				require.Equal(t, int32(3), ss.Native.Schema)
				var n uint64
				for _, k := range ss.Native.Counts {
					n += k
				}
				require.Equal(t, uint64(2), n+ss.Native.ZeroCount)
			}
			now = now.Add(2 * time.Minute)
			s = a.Snapshot(now)
			require.Equal(t, []GoneSeries{{Key: ss.Key, Native: c.native}}, s.Gone)
		})
	}
}

func TestRejectedRequestCountsNothing(t *testing.T) {
	a := newTestAgg(t, DefaultConfig(), NamingConfig{})
	good := marshal(t, makeTraces(spanSpec{service: "s", name: "a"}, spanSpec{service: "s", name: "b"}))
	bad := append(append([]byte{}, good...), 0x0a, 0x10) // truncated trailing ResourceSpans
	_, err := a.ConsumeProto(bad)
	require.ErrorIs(t, err, ErrInvalidRequest)
	require.Zero(t, a.ActiveSeries())
	require.Zero(t, totalCalls(a.Snapshot(t0)))
}

// TestAcknowledgedMeansCounted ingests from several goroutines while
// snapshots are taken; the snapshot after the last acknowledgement holds
// every span.
func TestAcknowledgedMeansCounted(t *testing.T) {
	a := newTestAgg(t, DefaultConfig(), NamingConfig{})
	var reqs [][]byte
	for i := range 8 {
		var specs []spanSpec
		for j := range 50 {
			specs = append(specs, spanSpec{service: fmt.Sprint("s", i%3), name: fmt.Sprint("op", j%7), dur: time.Duration(j) * time.Millisecond})
		}
		reqs = append(reqs, marshal(t, makeTraces(specs...)))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				a.Snapshot(t0)
			}
		}
	}()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n, err := a.ConsumeProto(reqs[(g+i)%len(reqs)])
				if err == nil {
					mu.Lock()
					acked += n
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	s := a.Snapshot(t0)
	require.Equal(t, uint64(acked), totalCalls(s))
	require.Equal(t, 4*200*50, acked)
	for _, ss := range s.Series {
		native := ss.Native.ZeroCount
		for _, c := range ss.Native.Counts {
			native += c
		}
		require.Equal(t, ss.Count, native)
	}
}

// TestShardFillsCacheLines fails when a field is added to shard but not to
// shardFields.
func TestShardFillsCacheLines(t *testing.T) {
	require.Zero(t, unsafe.Sizeof(shard{})%cacheLine, "shard is %d bytes", unsafe.Sizeof(shard{}))
	require.Equal(t, shardFields, unsafe.Offsetof(shard{}.m)+unsafe.Sizeof(shard{}.m))
}

func TestSteadyStateIngestDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	a := newTestAgg(t, recipeConfig(), NamingConfig{})
	req := marshal(t, makeTraces(
		spanSpec{service: "s", name: "a", attrs: map[string]any{"http.status_code": int64(200), "http.method": "GET"}},
		spanSpec{service: "s", name: "b", attrs: map[string]any{"k8s.namespace": "x"}, resAttrs: map[string]any{"service.version": "1"}}))
	_, err := a.ConsumeProto(req)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := a.ConsumeProto(req); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
}

func TestNativeIndex(t *testing.T) {
	// Bucket i holds (2^((i-1)/2^s), 2^(i/2^s)].
	for _, schema := range []int32{-2, 0, 1, 3, 8} {
		for _, i := range []int32{-20, -1, 0, 1, 5, 37} {
			upper := math.Exp2(float64(i) / math.Exp2(float64(schema)))
			require.Equal(t, i, nativeIndex(upper, schema), "schema %d upper bound of %d", schema, i)
			require.Equal(t, i+1, nativeIndex(upper*1.0000001, schema), "schema %d just above %d", schema, i)
		}
	}
}

func TestNativeDownscale(t *testing.T) {
	h := newNativeHist(3)
	vals := []float64{0.001, 0.5, 1, 3, 10, 100, 1000, 100000}
	for _, v := range vals {
		h.observe(v, 40)
	}
	h.observe(0, 40)
	require.LessOrEqual(t, len(h.counts), 40)
	require.Less(t, h.schema, int32(3))
	counts := h.appendCounts(nil)
	var n uint64
	for _, c := range counts {
		n += c
	}
	require.Equal(t, uint64(len(vals)), n)
	require.Equal(t, uint64(1), h.zero)
	for _, v := range vals {
		i := nativeIndex(v, h.schema)
		require.NotZero(t, counts[i-h.offset], "value %g", v)
	}
	nh := NativeHistogram{Schema: h.schema, Offset: h.offset, Counts: counts}
	offs, lens, deltas := nh.Spans()
	var total int
	for _, l := range lens {
		total += int(l)
	}
	require.Equal(t, total, len(deltas))
	require.Equal(t, len(offs), len(lens))
	var sum, cur int64
	for _, d := range deltas {
		cur += d
		sum += cur
	}
	require.Equal(t, int64(len(vals)), sum)
}

// TestNativeMatchesRecount: after observations that grow the window both
// ways and downscale it, every bucket holds what counting the values again
// at the final schema gives.
func TestNativeMatchesRecount(t *testing.T) {
	for _, maxSize := range []int{8, 20, 160} {
		r := rand.New(rand.NewPCG(3, uint64(maxSize)))
		h := newNativeHist(3)
		var vals []float64
		for range 5000 {
			v := 20 * math.Exp(1.5*r.NormFloat64())
			vals = append(vals, v)
			h.observe(v, maxSize)
		}
		require.LessOrEqual(t, len(h.counts), maxSize)
		want := map[int32]uint64{}
		for _, v := range vals {
			want[nativeIndex(v, h.schema)]++
		}
		got := map[int32]uint64{}
		for k, c := range h.appendCounts(nil) {
			if c != 0 {
				got[h.offset+int32(k)] = c
			}
		}
		require.Equal(t, want, got, "max_size %d, schema %d", maxSize, h.schema)
	}
}

// TestNativeCountsCarry: a bucket count past 2^32-1 carries into the high
// word, which survives the window growing and adds up when buckets merge.
func TestNativeCountsCarry(t *testing.T) {
	h := newNativeHist(3)
	h.observe(1, 160)   // bucket 0: (2^-1/8, 1]
	h.observe(0.9, 160) // bucket -1
	b0 := int(nativeIndex(1, 3) - h.offset)
	h.counts[b0] = math.MaxUint32
	h.observe(1, 160)
	require.Equal(t, uint64(1)<<32, h.count(b0), "wrapped into the carry")
	h.observe(1, 160)
	h.observe(100, 160)  // grows the window upwards
	h.observe(0.01, 160) // and downwards: bucket 0 moves
	b0 = int(nativeIndex(1, 3) - h.offset)
	require.Equal(t, uint64(1)<<32+1, h.count(b0))
	counts := h.appendCounts(nil)
	require.Equal(t, uint64(1)<<32+1, counts[b0])
	require.Equal(t, uint64(1), counts[nativeIndex(100, 3)-h.offset])

	// At schema 2, buckets -1 and 0 become bucket 0.
	h.counts[int(nativeIndex(0.9, 3)-h.offset)] = math.MaxUint32
	h.downscale()
	require.Equal(t, int32(2), h.schema)
	b0 = int(nativeIndex(1, 2) - h.offset)
	require.Equal(t, uint64(math.MaxUint32)+uint64(1)<<32+1, h.count(b0))
	require.Len(t, h.carry, 1)
	var total uint64
	for _, c := range h.appendCounts(nil) {
		total += c
	}
	require.Equal(t, uint64(math.MaxUint32)+uint64(1)<<32+1+2, total, "with the spans of 100 and 0.01")
}

func BenchmarkConsumeProto(b *testing.B) {
	a := newTestAgg(b, recipeConfig(), NamingConfig{})
	var specs []spanSpec
	for i := range 1000 {
		specs = append(specs, spanSpec{service: fmt.Sprint("svc", i%10), name: fmt.Sprint("GET /api/", i%25), kind: ptrace.SpanKindServer,
			dur:      time.Duration(i) * time.Millisecond,
			attrs:    map[string]any{"http.method": "GET", "http.status_code": int64(200), "http.route": "/api/x", "net.peer.name": "10.0.0.1"},
			resAttrs: map[string]any{"service.version": "v1", "k8s.namespace": "shop", "k8s.deployment.name": "d", "host.name": "h"}})
	}
	req := marshal(b, makeTraces(specs...))
	_, _ = a.ConsumeProto(req)
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.ConsumeProto(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/span")
}

// BenchmarkNativeObserve: one native-histogram observation of a span
// duration (milliseconds, log-normal around 20 ms), buckets already there.
func BenchmarkNativeObserve(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = 20 * math.Exp(0.6*r.NormFloat64())
	}
	h := newNativeHist(3)
	for _, v := range vals {
		h.observe(v, 160)
	}
	i := 0
	for b.Loop() {
		h.observe(vals[i%len(vals)], 160)
		i++
	}
}

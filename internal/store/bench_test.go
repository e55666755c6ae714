// Benchmarks of the storage write path (span-metrics snapshot → TSDB) and of
// the read path (PromQL range queries over a day of span metrics).
//
// Run them with a fixed iteration count, so that the percentiles rest on
// enough samples and the write benchmarks flush the same number of times on
// every machine:
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/store/
//
// Without -benchtime the query benchmarks still run every query at least 20
// times (the runs past the timed b.Loop count for the percentiles only), and
// the write benchmarks run for about one second of ConsumeSnapshot time.
//
// BenchmarkFlushAppend/series=N/native=B holds N active span-metric series
// (100 services × N/100 server operations, default config: 16 classic
// buckets and a native histogram, so 21 Prometheus series each; 20 with
// native=false, exponential.enabled: false). Each
// iteration advances a fake clock by the default flush interval (15 s), takes
// a snapshot and hands it to Store.ConsumeSnapshot. Only ConsumeSnapshot is
// timed; a warm-up flush that creates the TSDB series (and their zero-first
// samples) is not. Meanwhile one goroutine feeds the aggregator pre-built
// OTLP/protobuf requests (ConsumeProto) that hit the same series, as fast as
// it can, competing with the flush for the CPUs as ingestion does in
// production.
//
//	ns/op, ms/flush   wall time of one ConsumeSnapshot (append + commit)
//	ns/sample         that time divided by the samples in the snapshot
//	core-share@15s    ms/flush ÷ 15 s: the share of one core that flushing
//	                  costs at the default interval (0.01 = 1 % of a core)
//	ingest-spans/s    spans the concurrent ingest goroutine counted per
//	                  second of wall time while the benchmark loop ran
//	                  (snapshots included)
//	B/op, allocs/op   allocations while ConsumeSnapshot ran, those of the
//	                  ingest goroutine included (it should allocate little)
//
// BenchmarkQueryLatency/range=R/q=Q runs the PromQL expression Q as a range
// query over the last R of a store that holds 24 h of data for 1,000
// service×operation pairs (10 services × 100 server operations, 10 of which
// per service fail about 20 % of the time: 1,100 span-metric series, 22,000
// Prometheus series), written through the real path (aggregator → Snapshot →
// ConsumeSnapshot) with a flush every 15 s of fake time. The store is built
// once per BenchmarkQueryLatency run and takes about half a minute; it is
// compacted into 2 h blocks plus the head, as a running spanwatch has it. The
// queries are the five the Jaeger Monitor tab sends for service svc-3 (ratePer
// 1m) and the six of the SPM recipe dashboard (shared/recipe/
// spm-dashboard.json), in the otel naming. range=24h steps by 60 s,
// range=1h (the Monitor's default view) by 15 s. Every query is run once
// before timing, so the numbers are for warm caches.
//
//	ns/op             mean wall time of one query (NewRangeQuery, Exec, Close)
//	p50-ms, p99-ms    median and 99th percentile (nearest rank: with 20
//	                  runs p99 is the slowest run) of the same
//	series, points    size of the result matrix, to tell a cheap empty
//	                  answer from a real one
//
// The fixture flushes every 15 s (spanwatch's default metrics_flush_interval)
// rather than every 60 s: the Jaeger queries rate over [1m], and with one
// sample a minute a [1m] window (left-open since Prometheus 3) holds a single
// sample, so rate() and every Jaeger query would return nothing.
package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// benchFlushInterval is spanwatch's default metrics_flush_interval.
const benchFlushInterval = 15 * time.Second

// benchClock is a fake clock that the ingest goroutine may read while the
// benchmark advances it.
type benchClock struct{ ns atomic.Int64 }

func newBenchClock(t time.Time) *benchClock {
	c := &benchClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *benchClock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Add advances the clock by d and returns the new time.
func (c *benchClock) Add(d time.Duration) time.Time {
	return time.Unix(0, c.ns.Add(int64(d))).UTC()
}

// benchSpan is one span of a generated request.
type benchSpan struct {
	op  int
	dur time.Duration
	err bool
}

// benchRequest encodes an OTLP ExportTraceServiceRequest with one resource
// (service.name = service) holding the given server spans; span names are
// "op-<op>". Each span has trace and span IDs and two attributes, as
// instrumented HTTP servers send them.
func benchRequest(service string, spans []benchSpan) ([]byte, error) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	rs.Resource().Attributes().PutStr("service.instance.id", service+"-0")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("bench")
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := ss.Spans()
	out.EnsureCapacity(len(spans))
	for i, s := range spans {
		sp := out.AppendEmpty()
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], uint64(i+1))
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetName(fmt.Sprintf("op-%d", s.op))
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(s.dur)))
		sp.Attributes().PutStr("http.route", fmt.Sprintf("/api/op-%d", s.op))
		code := int64(200)
		if s.err {
			code = 500
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		sp.Attributes().PutInt("http.response.status_code", code)
	}
	return ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
}

// logNormal returns a duration around median with the given spread (sigma
// of the natural logarithm), at least 10 µs.
func logNormal(r *rand.Rand, median time.Duration, sigma float64) time.Duration {
	return max(time.Duration(float64(median)*math.Exp(sigma*r.NormFloat64())), 10*time.Microsecond)
}

func BenchmarkFlushAppend(b *testing.B) {
	for _, c := range []struct {
		series int
		native bool
	}{
		{series: 10_000},
		{series: 10_000, native: true},
		{series: 100_000},
		{series: 100_000, native: true},
	} {
		b.Run(fmt.Sprintf("series=%d/native=%t", c.series, c.native), func(b *testing.B) {
			benchFlushAppend(b, c.series, c.native)
		})
	}
}

// flushBenchRequests returns one request per service (100 services), each
// with one span for each of its n/100 operations: together they touch all n
// series once.
func flushBenchRequests(tb testing.TB, n int) [][]byte {
	tb.Helper()
	const services = 100
	r := rand.New(rand.NewPCG(1, uint64(n)))
	reqs := make([][]byte, 0, services)
	for s := range services {
		spans := make([]benchSpan, n/services)
		for op := range spans {
			spans[op] = benchSpan{op: op, dur: logNormal(r, time.Duration(2+op%200)*time.Millisecond, 0.6)}
		}
		req, err := benchRequest(fmt.Sprintf("svc-%d", s), spans)
		require.NoError(tb, err)
		reqs = append(reqs, req)
	}
	return reqs
}

func benchFlushAppend(b *testing.B, n int, native bool) {
	cfg := spanmetrics.DefaultConfig()
	cfg.Histogram.Exponential.Enabled = native
	clock := newBenchClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	agg, err := spanmetrics.New(cfg, spanmetrics.Options{Now: clock.Now})
	require.NoError(b, err)
	st, err := Open(Options{Path: b.TempDir(), Retention: DefaultOptions().Retention})
	require.NoError(b, err)
	b.Cleanup(func() {
		if err := st.Close(); err != nil {
			b.Error(err)
		}
	})

	reqs := flushBenchRequests(b, n)
	for _, req := range reqs {
		_, err := agg.ConsumeProto(req)
		require.NoError(b, err)
	}
	require.Equal(b, n, agg.ActiveSeries())
	// Warm-up: the first flush creates the TSDB series and writes the
	// zero-first samples; the benchmark is about the steady state.
	warm := agg.Snapshot(clock.Add(benchFlushInterval))
	require.Len(b, warm.Series, n, "no overflow series")
	st.ConsumeSnapshot(warm)
	require.NoError(b, st.Err())

	var (
		spans atomic.Int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k, err := agg.ConsumeProto(reqs[i%len(reqs)])
			if err != nil {
				b.Error(err)
				return
			}
			spans.Add(int64(k))
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()

	var (
		consume time.Duration
		samples int
		flushes int
	)
	b.ReportAllocs()
	spans0, wall0 := spans.Load(), time.Now()
	for b.Loop() {
		b.StopTimer()
		snap := agg.Snapshot(clock.Add(benchFlushInterval))
		for i := range snap.Series {
			samples += snap.NumSamples(&snap.Series[i])
		}
		b.StartTimer()
		t0 := time.Now()
		st.ConsumeSnapshot(snap)
		consume += time.Since(t0)
		flushes++
	}
	wall := time.Since(wall0)
	ingested := spans.Load() - spans0
	require.NoError(b, st.Err())
	require.Equal(b, n, agg.ActiveSeries(), "no series expired: the ingest goroutine keeps them all alive")

	perFlush := consume / time.Duration(flushes)
	b.ReportMetric(float64(consume.Nanoseconds())/float64(samples), "ns/sample")
	b.ReportMetric(float64(perFlush.Nanoseconds())/1e6, "ms/flush")
	b.ReportMetric(perFlush.Seconds()/benchFlushInterval.Seconds(), "core-share@15s")
	b.ReportMetric(float64(ingested)/wall.Seconds(), "ingest-spans/s")
}

// Query fixture shape: 10 services × 100 server operations; operations whose
// number is a multiple of 10 fail in one of their spans per flush.
const (
	qfServices   = 10
	qfOps        = 100
	qfSpansPerOp = 5 // per flush, so 20 a minute per operation
	qfDay        = 24 * time.Hour
)

// queryFixtureEnd is the time of the fixture's last flush.
var queryFixtureEnd = time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)

// queryFixtureRequests returns three requests, each with qfSpansPerOp spans
// for every service and operation, with different duration mixes: a calm
// one, a busier one (everything 1.5 × slower, wider spread) and one with a
// slow tail (5 % of the spans 8 × slower). Operation medians range from 3 ms
// to about 1.2 s, so the quantiles fall in different default buckets.
func queryFixtureRequests() ([][]byte, error) {
	type mix struct {
		scale, sigma, tailP, tailX float64
	}
	mixes := []mix{
		{scale: 1, sigma: 0.4},
		{scale: 1.5, sigma: 0.6},
		{scale: 1, sigma: 0.5, tailP: 0.05, tailX: 8},
	}
	r := rand.New(rand.NewPCG(2, 3))
	reqs := make([][]byte, 0, len(mixes))
	for _, m := range mixes {
		var body []byte
		for s := range qfServices {
			spans := make([]benchSpan, 0, qfOps*qfSpansPerOp)
			for op := range qfOps {
				median := time.Duration(3*math.Pow(1.062, float64(op))*m.scale*float64(time.Millisecond)) * time.Duration(1+s%3)
				for i := range qfSpansPerOp {
					d := logNormal(r, median, m.sigma)
					if r.Float64() < m.tailP {
						d = time.Duration(float64(d) * m.tailX)
					}
					spans = append(spans, benchSpan{op: op, dur: d, err: op%10 == 0 && i == 0})
				}
			}
			// Requests are sequences of ResourceSpans (field 1):
			// concatenating single-resource requests gives one request with
			// all the resources.
			req, err := benchRequest(fmt.Sprintf("svc-%d", s), spans)
			if err != nil {
				return nil, err
			}
			body = append(body, req...)
		}
		reqs = append(reqs, body)
	}
	return reqs, nil
}

// buildQueryFixture writes 24 h of span metrics for the query fixture into
// a new store in dir, through the aggregator and ConsumeSnapshot, one flush
// every benchFlushInterval of fake time, and compacts it.
func buildQueryFixture(dir string) (_ *Store, err error) {
	start := queryFixtureEnd.Add(-qfDay)
	clock := newBenchClock(start)
	agg, err := spanmetrics.New(spanmetrics.DefaultConfig(), spanmetrics.Options{Now: clock.Now})
	if err != nil {
		return nil, err
	}
	reqs, err := queryFixtureRequests()
	if err != nil {
		return nil, err
	}
	st, err := Open(Options{Path: dir, Retention: DefaultOptions().Retention})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()
	flushes := int(qfDay / benchFlushInterval)
	for i := range flushes {
		if _, err := agg.ConsumeProto(reqs[i%len(reqs)]); err != nil {
			return nil, err
		}
		st.ConsumeSnapshot(agg.Snapshot(clock.Add(benchFlushInterval)))
		if err := st.Err(); err != nil {
			return nil, err
		}
	}
	if n, want := agg.ActiveSeries(), qfServices*qfOps*11/10; n != want {
		return nil, fmt.Errorf("fixture has %d span-metric series, want %d", n, want)
	}
	// Compaction runs in the background while the data is written; finish
	// it so that every run queries the same blocks.
	if err := st.DB().Compact(context.Background()); err != nil {
		return nil, fmt.Errorf("compacting: %w", err)
	}
	return st, nil
}

// Queries: the five the Jaeger Monitor tab sends for a service (normalize
// on, ratePer 1m), and the SPM recipe dashboard's six with $service = svc-3,
// jaeger_spm_calls_total → traces_span_metrics_calls_total,
// jaeger_spm_latency_bucket → traces_span_metrics_duration_milliseconds_bucket
// and operation → span_name.
var benchQueries = []struct{ name, expr string }{
	{"jaeger-latency-p95", `histogram_quantile(0.95, sum(rate(traces_span_metrics_duration_milliseconds_bucket{service_name =~ "svc-3", span_kind =~ "SPAN_KIND_SERVER"}[1m])) by (service_name,le))`},
	{"jaeger-latency-p95-by-op", `histogram_quantile(0.95, sum(rate(traces_span_metrics_duration_milliseconds_bucket{service_name =~ "svc-3", span_kind =~ "SPAN_KIND_SERVER"}[1m])) by (service_name,span_name,le))`},
	{"jaeger-calls", `sum(rate(traces_span_metrics_calls_total{service_name =~ "svc-3", span_kind =~ "SPAN_KIND_SERVER"}[1m])) by (service_name)`},
	{"jaeger-calls-by-op", `sum(rate(traces_span_metrics_calls_total{service_name =~ "svc-3", span_kind =~ "SPAN_KIND_SERVER"}[1m])) by (service_name,span_name)`},
	{"jaeger-errors", `sum(rate(traces_span_metrics_calls_total{service_name =~ "svc-3", status_code = "STATUS_CODE_ERROR", span_kind =~ "SPAN_KIND_SERVER"}[1m])) by (service_name) / sum(rate(traces_span_metrics_calls_total{service_name =~ "svc-3", span_kind =~ "SPAN_KIND_SERVER"}[1m])) by (service_name)`},
	{"dash-rate", `sum(rate(traces_span_metrics_calls_total{service_name="svc-3"}[5m])) by (span_name)`},
	{"dash-error-rate", `sum(rate(traces_span_metrics_calls_total{service_name="svc-3", status_code="STATUS_CODE_ERROR"}[5m])) by (span_name) / sum(rate(traces_span_metrics_calls_total{service_name="svc-3"}[5m])) by (span_name)`},
	{"dash-latency-p50", `histogram_quantile(0.50, sum(rate(traces_span_metrics_duration_milliseconds_bucket{service_name="svc-3"}[5m])) by (le, span_name))`},
	{"dash-latency-p95", `histogram_quantile(0.95, sum(rate(traces_span_metrics_duration_milliseconds_bucket{service_name="svc-3"}[5m])) by (le, span_name))`},
	{"dash-latency-p99", `histogram_quantile(0.99, sum(rate(traces_span_metrics_duration_milliseconds_bucket{service_name="svc-3"}[5m])) by (le, span_name))`},
	{"dash-heatmap", `sum(increase(traces_span_metrics_duration_milliseconds_bucket{service_name="svc-3"}[1m])) by (le)`},
}

// minQueryRuns is the fewest runs the query percentiles rest on.
const minQueryRuns = 20

func BenchmarkQueryLatency(b *testing.B) {
	// Built on first use, so that a -bench filter that selects no query
	// does not pay for it; closed when the last sub-benchmark is done.
	fixture := sync.OnceValues(func() (*Store, error) {
		st, err := buildQueryFixture(b.TempDir())
		if err == nil {
			b.Cleanup(func() {
				if err := st.Close(); err != nil {
					b.Error(err)
				}
			})
		}
		return st, err
	})
	eng, err := query.NewEngine(query.DefaultOptions())
	require.NoError(b, err)
	for _, r := range []struct {
		name        string
		length, stp time.Duration
	}{
		{"24h", qfDay, time.Minute},
		{"1h", time.Hour, 15 * time.Second},
	} {
		for _, q := range benchQueries {
			b.Run(fmt.Sprintf("range=%s/q=%s", r.name, q.name), func(b *testing.B) {
				st, err := fixture()
				require.NoError(b, err, "building the query fixture")
				benchRangeQuery(b, eng, st, q.expr, queryFixtureEnd.Add(-r.length), queryFixtureEnd, r.stp)
			})
		}
	}
}

func benchRangeQuery(b *testing.B, eng *query.Engine, st *Store, expr string, start, end time.Time, step time.Duration) {
	ctx := context.Background()
	run := func() (promql.Matrix, error) {
		q, err := eng.NewRangeQuery(ctx, st.Queryable(), eng.QueryOpts(), expr, start, end, step)
		if err != nil {
			return nil, err
		}
		defer q.Close()
		res := q.Exec(ctx)
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Matrix()
	}

	// Warm-up run, which also checks that the answer is not empty.
	m, err := run()
	require.NoError(b, err)
	var points, real int
	for _, s := range m {
		points += len(s.Floats) + len(s.Histograms)
		for _, p := range s.Floats {
			if !math.IsNaN(p.F) {
				real++
			}
		}
	}
	require.Positive(b, real, "the query returns numbers")

	durs := make([]time.Duration, 0, minQueryRuns)
	once := func() {
		t0 := time.Now()
		_, err := run()
		durs = append(durs, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		once()
	}
	for len(durs) < minQueryRuns { // untimed, for the percentiles
		once()
	}
	slices.Sort(durs)
	pct := func(p float64) float64 {
		i := max(int(math.Ceil(p*float64(len(durs))))-1, 0)
		return float64(durs[i].Nanoseconds()) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(m)), "series")
	b.ReportMetric(float64(points), "points")
}

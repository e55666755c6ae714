package export

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// rwReceiver is a remote-write endpoint that decodes and keeps every
// request it accepts. status decides the answer to the n-th request
// (0-based); nil means 204.
type rwReceiver struct {
	srv    *httptest.Server
	status func(n int) int

	mu       sync.Mutex
	n        int
	accepted []prompb.WriteRequest
	headers  []http.Header
}

func newRWReceiver(t *testing.T, status func(n int) int) *rwReceiver {
	t.Helper()
	r := &rwReceiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var wr prompb.WriteRequest
		if err := wr.Unmarshal(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		n := r.n
		r.n++
		r.headers = append(r.headers, req.Header.Clone())
		code := http.StatusNoContent
		if r.status != nil {
			code = r.status(n)
		}
		if code/100 == 2 {
			r.accepted = append(r.accepted, wr)
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rwReceiver) url() string { return r.srv.URL + "/api/v1/write" }

func (r *rwReceiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// rwPoint is one received sample: a float, or a native histogram's count.
type rwPoint struct {
	T     int64
	V     float64
	Hist  bool
	Count uint64
}

// series returns the received samples by label set ({a="b", …}, sorted,
// __name__ included), in arrival order, and checks that no series is split
// over two time series of one request.
func (r *rwReceiver) series(t *testing.T) map[string][]rwPoint {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]rwPoint{}
	for _, wr := range r.accepted {
		seen := map[string]bool{}
		for _, ts := range wr.Timeseries {
			require.True(t, slices.IsSortedFunc(ts.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }), "labels sorted")
			k := rwKey(ts.Labels)
			require.False(t, seen[k], "series %s twice in one request", k)
			seen[k] = true
			for _, s := range ts.Samples {
				out[k] = append(out[k], rwPoint{T: s.Timestamp, V: s.Value})
			}
			for _, h := range ts.Histograms {
				out[k] = append(out[k], rwPoint{T: h.Timestamp, V: h.Sum, Hist: true, Count: h.GetCountInt()})
			}
		}
	}
	return out
}

func rwKey(ls []prompb.Label) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Name + "=" + l.Value
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// rwClock is a settable clock for the aggregator.
type rwClock struct{ ns atomic.Int64 }

func (c *rwClock) now() time.Time                { return time.Unix(0, c.ns.Load()) }
func (c *rwClock) set(t time.Time)               { c.ns.Store(t.UnixNano()) }
func (c *rwClock) add(d time.Duration) time.Time { c.ns.Add(int64(d)); return c.now() }

func rwAggregator(t *testing.T, clk *rwClock, mutate func(*spanmetrics.Config)) *spanmetrics.Aggregator {
	t.Helper()
	cfg := spanmetrics.DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := spanmetrics.New(cfg, spanmetrics.Options{Now: clk.now})
	require.NoError(t, err)
	return a
}

// rwSpans feeds one span per duration of service svc, span name op.
func rwSpans(t *testing.T, a *spanmetrics.Aggregator, svc, op string, durs ...time.Duration) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	rs.Resource().Attributes().PutStr("service.instance.id", "i-1")
	rs.Resource().Attributes().PutStr("host.name", "h1")
	ss := rs.ScopeSpans().AppendEmpty()
	start := time.Now()
	for _, d := range durs {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(op)
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(d)))
	}
	_, err := a.ConsumeTraces(td)
	require.NoError(t, err)
}

func newTestRW(t *testing.T, cfg RemoteWriteConfig, reg prometheus.Registerer) *RemoteWriter {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Millisecond
		cfg.MaxBackoff = 5 * time.Millisecond
	}
	w, err := NewRemoteWriter(cfg, nil, reg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
	return w
}

func shutdown(t *testing.T, w *RemoteWriter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, w.Shutdown(ctx))
}

const (
	rwCalls = "__name__=traces_span_metrics_calls_total"
	rwDur   = "__name__=traces_span_metrics_duration_milliseconds"
	rwSer   = "instance=i-1,job=svc,replica=r1,service_name=svc,span_kind=SPAN_KIND_SERVER,span_name=op,status_code=STATUS_CODE_UNSET"
)

func TestRemoteWriteSamples(t *testing.T) {
	for _, maxSamples := range []int{0, 7} {
		t.Run("max_samples_per_send="+map[int]string{0: "default", 7: "7"}[maxSamples], func(t *testing.T) {
			recv := newRWReceiver(t, nil)
			reg := prometheus.NewRegistry()
			w := newTestRW(t, RemoteWriteConfig{
				URL:               recv.url(),
				MaxSamplesPerSend: maxSamples,
				// service_name is the series' own label: it wins.
				ExternalLabels: map[string]string{"replica": "r1", "service_name": "ext"},
			}, reg)
			w.Start()

			clk := &rwClock{}
			t0 := time.Now().Truncate(time.Millisecond)
			clk.set(t0)
			a := rwAggregator(t, clk, nil)
			rwSpans(t, a, "svc", "op", time.Millisecond, 3*time.Millisecond)
			t1 := clk.add(15 * time.Second)
			s1 := a.Snapshot(t1)
			w.ConsumeSnapshot(s1)
			rwSpans(t, a, "svc", "op", 20*time.Millisecond)
			t2 := clk.add(15 * time.Second)
			w.ConsumeSnapshot(a.Snapshot(t2))
			shutdown(t, w)

			got := recv.series(t)
			ms := func(tm time.Time) int64 { return tm.UnixMilli() }
			f := func(tm time.Time, v float64) rwPoint { return rwPoint{T: ms(tm), V: v} }
			require.Equal(t, []rwPoint{f(t0, 0), f(t1, 2), f(t2, 3)}, got["{"+rwCalls+","+rwSer+"}"])
			bucket := func(le string) []rwPoint {
				return got["{"+rwDur+"_bucket,"+rwSer[:len("instance=i-1,job=svc")]+",le="+le+rwSer[len("instance=i-1,job=svc"):]+"}"]
			}
			require.Equal(t, []rwPoint{f(t0, 0), f(t1, 1), f(t2, 1)}, bucket("2"))
			require.Equal(t, []rwPoint{f(t0, 0), f(t1, 2), f(t2, 2)}, bucket("4"))
			require.Equal(t, []rwPoint{f(t0, 0), f(t1, 2), f(t2, 3)}, bucket("50"))
			require.Equal(t, []rwPoint{f(t0, 0), f(t1, 2), f(t2, 3)}, bucket("+Inf"))
			require.Equal(t, []rwPoint{f(t0, 0), f(t1, 4), f(t2, 24)}, got["{"+rwDur+"_sum,"+rwSer+"}"])
			require.Equal(t, []rwPoint{f(t0, 0), f(t1, 2), f(t2, 3)}, got["{"+rwDur+"_count,"+rwSer+"}"])
			require.Equal(t, []rwPoint{
				{T: ms(t0), Hist: true},
				{T: ms(t1), V: 4, Hist: true, Count: 2},
				{T: ms(t2), V: 24, Hist: true, Count: 3},
			}, got["{"+rwDur+","+rwSer+"}"])
			// target_info has no service_name: the external label applies.
			require.Equal(t, []rwPoint{f(t1, 1), f(t2, 1)}, got["{__name__=target_info,host_name=h1,instance=i-1,job=svc,replica=r1,service_name=ext}"])
			// calls, 17 buckets, sum, count, native; target_info.
			require.Len(t, got, 22)

			n := 0
			for _, pts := range got {
				n += len(pts)
			}
			require.Equal(t, 21*3+1*2, n)
			require.Equal(t, float64(n), promtestutil.ToFloat64(w.m.sent))
			require.Zero(t, promtestutil.ToFloat64(w.m.failed))

			recv.mu.Lock()
			nreq := len(recv.accepted)
			md := recv.accepted[0].Metadata
			h := recv.headers[0]
			recv.mu.Unlock()
			if maxSamples == 0 {
				require.Equal(t, 2, nreq, "one request per snapshot")
			} else {
				// A series (42 samples with its zero-first samples) is never split.
				require.Equal(t, 4, nreq, "target_info; the new series; target_info; the series")
			}
			require.Equal(t, "snappy", h.Get("Content-Encoding"))
			require.Equal(t, "application/x-protobuf", h.Get("Content-Type"))
			require.Equal(t, "0.1.0", h.Get("X-Prometheus-Remote-Write-Version"))
			require.Equal(t, []string{"traces_span_metrics_calls_total", "traces_span_metrics_duration_milliseconds", "target_info"},
				[]string{md[0].MetricFamilyName, md[1].MetricFamilyName, md[2].MetricFamilyName})
			require.Equal(t, prompb.MetricMetadata_HISTOGRAM, md[1].Type)

			mfs, err := reg.Gather()
			require.NoError(t, err)
			var names []string
			for _, mf := range mfs {
				names = append(names, mf.GetName())
				for _, m := range mf.GetMetric() {
					require.Contains(t, labels(m), "remote_name")
					require.Equal(t, recv.srv.Listener.Addr().String(), labels(m)["remote_name"])
				}
			}
			require.ElementsMatch(t, []string{
				"spanwatch_remote_write_samples_sent_total", "spanwatch_remote_write_samples_retried_total",
				"spanwatch_remote_write_samples_dropped_total", "spanwatch_remote_write_requests_failed_total",
				"spanwatch_remote_write_queue_length", "spanwatch_remote_write_last_send_timestamp_seconds",
			}, names)
		})
	}
}

func TestRemoteWriteStaleMarkers(t *testing.T) {
	recv := newRWReceiver(t, nil)
	w := newTestRW(t, RemoteWriteConfig{URL: recv.url(), ExternalLabels: map[string]string{"replica": "r1"}}, nil)
	w.Start()
	clk := &rwClock{}
	t0 := time.Now().Truncate(time.Millisecond)
	clk.set(t0)
	a := rwAggregator(t, clk, func(c *spanmetrics.Config) { c.SeriesExpiration = time.Minute })
	rwSpans(t, a, "svc", "op", time.Millisecond)
	t1 := clk.add(15 * time.Second)
	w.ConsumeSnapshot(a.Snapshot(t1))
	t2 := clk.add(2 * time.Minute)
	s2 := a.Snapshot(t2)
	require.Empty(t, s2.Series)
	require.Len(t, s2.Gone, 1)
	w.ConsumeSnapshot(s2)
	shutdown(t, w)

	got := recv.series(t)
	require.Len(t, got, 22)
	stale := func(p rwPoint) bool { return value.IsStaleNaN(p.V) && p.T == t2.UnixMilli() }
	for k, pts := range got {
		last := pts[len(pts)-1]
		require.True(t, stale(last), "%s: last sample %+v is not a staleness marker at t2", k, last)
		require.Equal(t, strings.HasPrefix(k, "{"+rwDur+","), last.Hist, k)
	}
	// The zero-first samples, the values, the markers; target_info has no
	// zero-first sample.
	require.Len(t, got["{"+rwCalls+","+rwSer+"}"], 3)
	require.Len(t, got["{__name__=target_info,host_name=h1,instance=i-1,job=svc,replica=r1}"], 2)
}

// rwNativeSnapshots returns two snapshots with native histograms enabled:
// the first holds two new series (op and op2) and target_info, the second op
// again and op2 gone.
func rwNativeSnapshots(t *testing.T) (s1, s2 *spanmetrics.Snapshot) {
	t.Helper()
	clk := &rwClock{}
	clk.set(time.Now().Truncate(time.Millisecond))
	a := rwAggregator(t, clk, func(c *spanmetrics.Config) { c.SeriesExpiration = time.Minute })
	rwSpans(t, a, "svc", "op", time.Millisecond, 3*time.Millisecond)
	rwSpans(t, a, "svc", "op2", 5*time.Millisecond)
	s1 = a.Snapshot(clk.add(15 * time.Second))
	require.Len(t, s1.Series, 2)
	clk.add(2 * time.Minute)
	rwSpans(t, a, "svc", "op", 20*time.Millisecond)
	s2 = a.Snapshot(clk.add(time.Second))
	require.Len(t, s2.Series, 1)
	require.Len(t, s2.Gone, 1)
	require.True(t, s2.Gone[0].Native)
	return s1, s2
}

func TestRemoteWriteSendNativeHistograms(t *testing.T) {
	s1, s2 := rwNativeSnapshots(t)
	// 20 classic samples per series (calls, 17 buckets, _sum, _count) and
	// one native histogram; new series twice; target_info once.
	require.Equal(t, 2*2*21+1, countSamples(s1, true))
	require.Equal(t, 2*2*20+1, countSamples(s1, false))
	require.Equal(t, 21+21+1, countSamples(s2, true))
	require.Equal(t, 20+20+1, countSamples(s2, false))

	received := map[string]map[string][]rwPoint{}
	for _, tc := range []struct {
		name   string
		send   *bool
		native bool // whether native histograms arrive
	}{
		{"default", nil, true},
		{"true", new(true), true},
		{"false", new(false), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := newRWReceiver(t, nil)
			// Small requests: the counts must hold across request boundaries.
			w := newTestRW(t, RemoteWriteConfig{URL: recv.url(), MaxSamplesPerSend: 20, SendNativeHistograms: tc.send}, nil)
			w.Start()
			w.ConsumeSnapshot(s1)
			w.ConsumeSnapshot(s2)
			shutdown(t, w)

			got := recv.series(t)
			received[tc.name] = got
			n, hists, native := 0, 0, 0
			for k, pts := range got {
				n += len(pts)
				for _, p := range pts {
					if p.Hist {
						hists++
					}
				}
				if strings.HasPrefix(k, "{"+rwDur+",") {
					native++
				}
			}
			want := countSamples(s1, tc.native) + countSamples(s2, tc.native)
			require.Equal(t, want, n)
			require.Equal(t, float64(n), promtestutil.ToFloat64(w.m.sent), "samples sent = samples received")
			for _, c := range w.m.dropped {
				require.Zero(t, promtestutil.ToFloat64(c))
			}
			if !tc.native {
				require.Zero(t, hists, "no native histogram samples or staleness markers")
				require.Zero(t, native, "no native histogram series")
				require.Len(t, got, 2*20+1)
			} else {
				// op: zero, value, value; op2: zero, value, marker.
				require.Equal(t, 6, hists)
				require.Equal(t, 2, native)
				require.Len(t, got, 2*21+1)
			}
			// op2's classic series end with a staleness marker.
			gone := 0
			for k, pts := range got {
				if strings.Contains(k, "span_name=op2,") {
					gone++
					last := pts[len(pts)-1]
					require.True(t, value.IsStaleNaN(last.V), k)
					require.Equal(t, s2.Time.UnixMilli(), last.T, k)
				}
			}
			require.Equal(t, map[bool]int{true: 21, false: 20}[tc.native], gone)
		})
	}

	// Without native histograms the classic series are the same, sample
	// for sample (staleness markers compared as strings: NaN != NaN).
	classic := maps.Clone(received["true"])
	maps.DeleteFunc(classic, func(k string, _ []rwPoint) bool { return strings.HasPrefix(k, "{"+rwDur+",") })
	require.Equal(t, fmt.Sprint(classic), fmt.Sprint(received["false"]))
	require.Equal(t, fmt.Sprint(received["true"]), fmt.Sprint(received["default"]))

	// The shared snapshots are not modified.
	for i := range s1.Series {
		require.NotNil(t, s1.Series[i].Native)
	}
	require.NotNil(t, s2.Series[0].Native)
	require.True(t, s2.Gone[0].Native)
}

// TestRemoteWriteWithoutNativeCountsDrops checks that what a writer with
// send_native_histograms: false counts as dropped is what it would have
// sent: whole snapshots dropped from a full queue or at shutdown, and the
// rest of a snapshot after the requests that went through.
func TestRemoteWriteWithoutNativeCountsDrops(t *testing.T) {
	s1, s2 := rwNativeSnapshots(t)

	t.Run("queue_full_and_shutdown", func(t *testing.T) {
		recv := newRWReceiver(t, nil)
		w := newTestRW(t, RemoteWriteConfig{URL: recv.url(), QueueSnapshots: 1, SendNativeHistograms: new(false)}, nil)
		w.ConsumeSnapshot(s1)
		w.ConsumeSnapshot(s2) // drops s1
		require.Equal(t, 81.0, promtestutil.ToFloat64(w.m.dropped[DropQueueFull]))
		require.NoError(t, w.Shutdown(context.Background())) // not started: drops s2
		require.Equal(t, 41.0, promtestutil.ToFloat64(w.m.dropped[DropShutdown]))
		w.ConsumeSnapshot(s1) // after shutdown
		require.Equal(t, 41.0+81, promtestutil.ToFloat64(w.m.dropped[DropShutdown]))
		require.Zero(t, recv.requests())
	})

	t.Run("partly_sent", func(t *testing.T) {
		// The first two requests go through; then the endpoint fails until
		// shutdown gives up.
		recv := newRWReceiver(t, func(n int) int {
			if n < 2 {
				return http.StatusNoContent
			}
			return http.StatusServiceUnavailable
		})
		// One request per series: target_info (1), op (40), op2 (40).
		w := newTestRW(t, RemoteWriteConfig{URL: recv.url(), MaxSamplesPerSend: 40, SendNativeHistograms: new(false)}, nil)
		w.Start()
		w.ConsumeSnapshot(s1)
		require.Eventually(t, func() bool { return recv.requests() >= 4 }, 5*time.Second, time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, w.Shutdown(ctx), context.DeadlineExceeded)

		sent := promtestutil.ToFloat64(w.m.sent)
		require.Equal(t, 41.0, sent)
		require.Equal(t, float64(countSamples(s1, false))-sent, promtestutil.ToFloat64(w.m.dropped[DropShutdown]))
		retried := promtestutil.ToFloat64(w.m.retried)
		require.Positive(t, retried)
		require.Zero(t, math.Mod(retried, 40), "retried counts op2's 40 samples per retry")
		for _, pts := range recv.series(t) {
			for _, p := range pts {
				require.False(t, p.Hist)
			}
		}
	})
}

// TestRWEncoderWithoutNative checks the encoder on its own: what it hands
// to send adds up to countSamples, requests hold no histograms, it does not
// allocate per series once warm, and snapshots without native histograms
// go out unchanged.
func TestRWEncoderWithoutNative(t *testing.T) {
	s1, s2 := rwNativeSnapshots(t)
	e := newRWEncoder(nil, 20, false)
	for _, v := range []*spanmetrics.Snapshot{s1, s2} {
		require.True(t, hasNative(v))
		require.Equal(t, countSamples(v, false), countSamples(e.withoutNative(v), true))
		e.releaseClassic()

		total := 0
		require.NoError(t, e.encode(v, func(data []byte, n int) error {
			raw, err := snappy.Decode(nil, data)
			require.NoError(t, err)
			var wr prompb.WriteRequest
			require.NoError(t, wr.Unmarshal(raw))
			k := 0
			for _, ts := range wr.Timeseries {
				require.Empty(t, ts.Histograms)
				k += len(ts.Samples)
			}
			require.Equal(t, n, k, "the count handed to send is what the request holds")
			total += n
			return nil
		}))
		require.Equal(t, countSamples(v, false), total)
		require.Equal(t, len(v.Series), e.seriesDone)
		require.Equal(t, len(v.Gone), e.goneDone)
		require.Nil(t, e.classic.Series, "no reference to the snapshot kept")
	}

	// Once warm, leaving native histograms out allocates no more than
	// encoding the same snapshot made without them.
	send := func([]byte, int) error { return nil }
	for _, v := range []*spanmetrics.Snapshot{s1, s2} {
		plain := *e.withoutNative(v)
		plain.Series, plain.Gone = slices.Clone(plain.Series), slices.Clone(plain.Gone)
		e.releaseClassic()
		require.False(t, hasNative(&plain))
		ep := newRWEncoder(nil, 20, true)
		classic := testing.AllocsPerRun(20, func() { require.NoError(t, ep.encode(&plain, send)) })
		without := testing.AllocsPerRun(20, func() { require.NoError(t, e.encode(v, send)) })
		require.LessOrEqual(t, without, classic)
	}
}

func TestRemoteWriteAuthAndHeaders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   RemoteWriteConfig
		check func(t *testing.T, h http.Header)
	}{
		{"basic_auth", RemoteWriteConfig{BasicAuth: &RemoteWriteBasicAuth{Username: "user", Password: "pa:ss"}}, func(t *testing.T, h http.Header) {
			r := &http.Request{Header: h}
			u, p, ok := r.BasicAuth()
			require.True(t, ok)
			require.Equal(t, "user", u)
			require.Equal(t, "pa:ss", p)
		}},
		{"bearer_token", RemoteWriteConfig{BearerToken: "s3cret"}, func(t *testing.T, h http.Header) {
			require.Equal(t, "Bearer s3cret", h.Get("Authorization"))
		}},
		{"no_auth", RemoteWriteConfig{}, func(t *testing.T, h http.Header) {
			require.Empty(t, h.Get("Authorization"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := newRWReceiver(t, nil)
			cfg := tc.cfg
			cfg.URL = recv.url()
			cfg.Headers = map[string]string{"X-Scope-OrgID": "tenant-1", "X-Extra": "yes"}
			w := newTestRW(t, cfg, nil)
			w.Start()
			clk := &rwClock{}
			clk.set(time.Now())
			a := rwAggregator(t, clk, nil)
			rwSpans(t, a, "svc", "op", time.Millisecond)
			w.ConsumeSnapshot(a.Snapshot(clk.add(time.Second)))
			shutdown(t, w)
			recv.mu.Lock()
			defer recv.mu.Unlock()
			require.Len(t, recv.headers, 1)
			h := recv.headers[0]
			require.Equal(t, "tenant-1", h.Get("X-Scope-OrgID"))
			require.Equal(t, "yes", h.Get("X-Extra"))
			tc.check(t, h)
		})
	}
}

func TestRemoteWriteRetriesRecoverable(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			recv := newRWReceiver(t, func(n int) int {
				if n < 2 {
					return code
				}
				return http.StatusOK
			})
			w := newTestRW(t, RemoteWriteConfig{URL: recv.url()}, nil)
			w.Start()
			clk := &rwClock{}
			clk.set(time.Now())
			a := rwAggregator(t, clk, nil)
			rwSpans(t, a, "svc", "op", time.Millisecond)
			s := a.Snapshot(clk.add(time.Second))
			n := float64(countSamples(s, true))
			w.ConsumeSnapshot(s)
			shutdown(t, w)
			require.Equal(t, 3, recv.requests())
			require.Equal(t, n, promtestutil.ToFloat64(w.m.sent))
			require.Equal(t, 2*n, promtestutil.ToFloat64(w.m.retried))
			require.Equal(t, 2.0, promtestutil.ToFloat64(w.m.failed))
			for _, c := range w.m.dropped {
				require.Zero(t, promtestutil.ToFloat64(c))
			}
			require.Positive(t, promtestutil.ToFloat64(w.m.lastSend))
		})
	}
}

// TestRemoteWriteIgnoresRetryAfter: a 429 or 503 with Retry-After is
// retried after the configured backoff, not after the header's hour
// (Prometheus's client keeps the header's value to itself).
func TestRemoteWriteIgnoresRetryAfter(t *testing.T) {
	for _, code := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var mu sync.Mutex
			var attempts []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				_, _ = io.Copy(io.Discard, req.Body)
				mu.Lock()
				attempts = append(attempts, req.Header.Get("Retry-Attempt"))
				n := len(attempts)
				mu.Unlock()
				if n == 1 {
					w.Header().Set("Retry-After", "3600")
					w.WriteHeader(code)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(srv.Close)
			w := newTestRW(t, RemoteWriteConfig{URL: srv.URL + "/api/v1/write"}, nil)
			w.Start()
			clk := &rwClock{}
			clk.set(time.Now())
			a := rwAggregator(t, clk, nil)
			rwSpans(t, a, "svc", "op", time.Millisecond)
			s := a.Snapshot(clk.add(time.Second))
			n := float64(countSamples(s, true))
			w.ConsumeSnapshot(s)
			// Honouring the header would take an hour; the backoff is 1 ms.
			shutdown(t, w)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []string{"", "1"}, attempts)
			require.Equal(t, n, promtestutil.ToFloat64(w.m.sent))
			require.Equal(t, n, promtestutil.ToFloat64(w.m.retried))
		})
	}
}

func TestRemoteWriteDropsNonRecoverable(t *testing.T) {
	recv := newRWReceiver(t, func(n int) int {
		if n == 0 {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	w := newTestRW(t, RemoteWriteConfig{URL: recv.url()}, nil)
	w.Start()
	clk := &rwClock{}
	clk.set(time.Now())
	a := rwAggregator(t, clk, nil)
	rwSpans(t, a, "svc", "op", time.Millisecond)
	s1 := a.Snapshot(clk.add(time.Second))
	w.ConsumeSnapshot(s1)
	w.ConsumeSnapshot(a.Snapshot(clk.add(time.Second)))
	shutdown(t, w)
	require.Equal(t, 2, recv.requests(), "the rejected request is not retried")
	n1 := float64(countSamples(s1, true))
	require.Equal(t, n1, promtestutil.ToFloat64(w.m.dropped[DropNonRecoverable]))
	require.Equal(t, 1.0, promtestutil.ToFloat64(w.m.failed))
	require.Zero(t, promtestutil.ToFloat64(w.m.retried))
	require.Equal(t, 22.0, promtestutil.ToFloat64(w.m.sent))
}

func TestRemoteWriteQueueFullDropsOldest(t *testing.T) {
	recv := newRWReceiver(t, nil)
	w := newTestRW(t, RemoteWriteConfig{URL: recv.url(), QueueSnapshots: 2}, nil)
	clk := &rwClock{}
	t0 := time.Now().Truncate(time.Millisecond)
	clk.set(t0)
	a := rwAggregator(t, clk, nil)
	rwSpans(t, a, "svc", "op", time.Millisecond)
	s1 := a.Snapshot(clk.add(time.Second))
	rwSpans(t, a, "svc", "op", time.Millisecond)
	t2 := clk.add(time.Second)
	s2 := a.Snapshot(t2)
	t3 := clk.add(time.Second)
	s3 := a.Snapshot(t3)
	// Not started: the queue fills.
	w.ConsumeSnapshot(s1)
	w.ConsumeSnapshot(s2)
	w.ConsumeSnapshot(s3)
	require.Equal(t, float64(countSamples(s1, true)), promtestutil.ToFloat64(w.m.dropped[DropQueueFull]))
	require.Equal(t, 2.0, promtestutil.ToFloat64(w.m.queueLength))
	w.Start()
	shutdown(t, w)
	require.Equal(t, 2, recv.requests())
	// s1 introduced the series; its zero-first sample comes with s2.
	got := recv.series(t)
	calls := "{" + rwCalls + "," + strings.ReplaceAll(rwSer, "replica=r1,", "") + "}"
	require.Equal(t, []rwPoint{{T: t0.UnixMilli()}, {T: t2.UnixMilli(), V: 2}, {T: t3.UnixMilli(), V: 2}}, got[calls])
	require.Zero(t, promtestutil.ToFloat64(w.m.queueLength))
}

func TestRemoteWriteAbandonsFailingSnapshotWhenQueueFull(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	recv := newRWReceiver(t, func(int) int {
		if failing.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	w := newTestRW(t, RemoteWriteConfig{URL: recv.url(), QueueSnapshots: 1}, nil)
	w.Start()
	clk := &rwClock{}
	t0 := time.Now().Truncate(time.Millisecond)
	clk.set(t0)
	a := rwAggregator(t, clk, func(c *spanmetrics.Config) { c.SeriesExpiration = time.Minute })
	rwSpans(t, a, "svc", "op", time.Millisecond)
	rwSpans(t, a, "svc", "gone", time.Millisecond)
	s1 := a.Snapshot(clk.add(time.Second))
	w.ConsumeSnapshot(s1)
	require.Eventually(t, func() bool { return recv.requests() >= 2 }, 5*time.Second, time.Millisecond)

	// "gone" expires; "op" gets a span.
	clk.add(2 * time.Minute)
	rwSpans(t, a, "svc", "op", time.Millisecond)
	t2 := clk.add(time.Second)
	s2 := a.Snapshot(t2)
	require.Len(t, s2.Gone, 1)
	w.ConsumeSnapshot(s2) // abandons s1
	require.Eventually(t, func() bool { return promtestutil.ToFloat64(w.m.dropped[DropQueueFull]) > 0 }, 5*time.Second, time.Millisecond)
	failing.Store(false)
	shutdown(t, w)

	require.Equal(t, float64(countSamples(s1, true)), promtestutil.ToFloat64(w.m.dropped[DropQueueFull]))
	got := recv.series(t)
	calls := "{" + rwCalls + "," + strings.ReplaceAll(rwSer, "replica=r1,", "") + "}"
	require.Equal(t, []rwPoint{{T: t0.UnixMilli()}, {T: t2.UnixMilli(), V: 2}}, got[calls], "zero-first sample handed on from the abandoned snapshot")
	// "gone" was never sent: no staleness markers for it.
	for k := range got {
		require.NotContains(t, k, "span_name=gone")
	}
}

func TestRemoteWriteShutdown(t *testing.T) {
	clk := &rwClock{}
	clk.set(time.Now())
	a := rwAggregator(t, clk, nil)
	rwSpans(t, a, "svc", "op", time.Millisecond)
	s := a.Snapshot(clk.add(time.Second))
	n := float64(countSamples(s, true))

	t.Run("without_start", func(t *testing.T) {
		recv := newRWReceiver(t, nil)
		w := newTestRW(t, RemoteWriteConfig{URL: recv.url()}, nil)
		w.ConsumeSnapshot(s)
		require.NoError(t, w.Shutdown(context.Background()))
		require.NoError(t, w.Shutdown(context.Background()))
		w.Start() // after Shutdown: nothing
		w.ConsumeSnapshot(s)
		require.Equal(t, 2*n, promtestutil.ToFloat64(w.m.dropped[DropShutdown]))
		require.Zero(t, recv.requests())
	})
	t.Run("deadline_while_failing", func(t *testing.T) {
		recv := newRWReceiver(t, func(int) int { return http.StatusBadGateway })
		w := newTestRW(t, RemoteWriteConfig{URL: recv.url()}, nil)
		w.Start()
		w.ConsumeSnapshot(s)
		w.ConsumeSnapshot(s)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := w.Shutdown(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, err, w.Shutdown(context.Background()), "idempotent")
		require.Equal(t, 2*n, promtestutil.ToFloat64(w.m.dropped[DropShutdown]))
		require.Positive(t, promtestutil.ToFloat64(w.m.retried))
	})
}

func TestRemoteWriteDuplicateName(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := NewRemoteWriter(RemoteWriteConfig{URL: "http://a:9090/api/v1/write"}, nil, reg)
	require.NoError(t, err)
	_, err = NewRemoteWriter(RemoteWriteConfig{URL: "http://a:9090/other"}, nil, reg)
	require.ErrorContains(t, err, `"a:9090"`)
	_, err = NewRemoteWriter(RemoteWriteConfig{URL: "http://a:9090/other", Name: "other"}, nil, reg)
	require.NoError(t, err)
}

func TestRemoteWriteConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RemoteWriteConfig
		err  string
	}{
		{"minimal", RemoteWriteConfig{URL: "http://p:9090/api/v1/write"}, ""},
		{"defaults", func() RemoteWriteConfig {
			c := DefaultRemoteWriteConfig()
			c.URL = "https://mimir/api/v1/push"
			return c
		}(), ""},
		{"no url", RemoteWriteConfig{}, "url is required"},
		{"bad scheme", RemoteWriteConfig{URL: "ftp://p/x"}, "want http:// or https://"},
		{"no host", RemoteWriteConfig{URL: "http:///x"}, "want http:// or https://"},
		{"negative timeout", RemoteWriteConfig{URL: "http://p", Timeout: -time.Second}, "timeout -1s is negative"},
		{"backoff order", RemoteWriteConfig{URL: "http://p", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "min_backoff 1s is larger than max_backoff 1ms"},
		{"negative queue", RemoteWriteConfig{URL: "http://p", QueueSnapshots: -1}, "queue_snapshots -1 is negative"},
		{"negative batch", RemoteWriteConfig{URL: "http://p", MaxSamplesPerSend: -1}, "max_samples_per_send -1 is negative"},
		{"two auths", RemoteWriteConfig{URL: "http://p", BearerToken: "t", BasicAuth: &RemoteWriteBasicAuth{Username: "u"}}, "at most one of basic_auth and bearer_token"},
		{"reserved header", RemoteWriteConfig{URL: "http://p", Headers: map[string]string{"Content-Type": "x"}}, `header "Content-Type" is set by the remote-write protocol`},
		{"authorization header with auth", RemoteWriteConfig{URL: "http://p", BearerToken: "t", Headers: map[string]string{"authorization": "x"}}, "conflicts with basic_auth/bearer_token"},
		{"authorization header alone", RemoteWriteConfig{URL: "http://p", Headers: map[string]string{"Authorization": "Token x"}}, ""},
		{"bad label", RemoteWriteConfig{URL: "http://p", ExternalLabels: map[string]string{"a-b": "x"}}, `external label name "a-b"`},
		{"reserved label", RemoteWriteConfig{URL: "http://p", ExternalLabels: map[string]string{"__replica__": "x"}}, "reserved"},
		{"empty label value", RemoteWriteConfig{URL: "http://p", ExternalLabels: map[string]string{"replica": ""}}, "empty value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidRemoteWrite)
			require.ErrorContains(t, err, tc.err)
		})
	}
	d := DefaultRemoteWriteConfig()
	require.Equal(t, 30*time.Second, d.Timeout)
	require.Equal(t, 4, d.QueueSnapshots)
	require.Equal(t, 2000, d.MaxSamplesPerSend)
	require.Equal(t, 30*time.Millisecond, d.MinBackoff)
	require.Equal(t, 5*time.Second, d.MaxBackoff)
	c := RemoteWriteConfig{URL: "http://prometheus:9090/api/v1/write"}
	require.Equal(t, "prometheus:9090", c.RemoteName())
}

func TestRemoteWriteJitter(t *testing.T) {
	for range 100 {
		j := jitter(100 * time.Millisecond)
		require.GreaterOrEqual(t, j, 50*time.Millisecond)
		require.LessOrEqual(t, j, 100*time.Millisecond)
	}
}

// BenchmarkRemoteWriteEncode measures turning a snapshot into compressed
// requests (the sender's CPU per flush, without the network), with native
// histograms off, on (the default), and on but not sent
// (send_native_histograms: false). Each series has one span (its native
// histogram holds one bucket) or 200 spans spread log-normally (σ 0.6
// around a median of 2…200 ms, some 36 buckets, what a busy series holds).
//
//	bytes/sample  compressed request bytes per sample sent (a native
//	              histogram is one sample)
//	bytes/series  compressed request bytes per span-metric series: what one
//	              series costs on the wire per flush
//	samples/op    samples per snapshot
func BenchmarkRemoteWriteEncode(b *testing.B) {
	for _, nseries := range []int{1000, 10000} {
		for _, spans := range []int{1, 200} {
			for _, c := range []struct{ native, send bool }{{false, true}, {true, true}, {true, false}} {
				name := fmt.Sprintf("series=%d/spans=%d/native=%t", nseries, spans, c.native)
				if !c.send {
					name += "/send_native=false"
				}
				b.Run(name, func(b *testing.B) {
					benchRemoteWriteEncode(b, nseries, spans, c.native, c.send)
				})
			}
		}
	}
}

func benchRemoteWriteEncode(b *testing.B, nseries, spans int, native, send bool) {
	cfg := spanmetrics.DefaultConfig()
	cfg.Histogram.Exponential.Enabled = native
	a, err := spanmetrics.New(cfg, spanmetrics.Options{})
	require.NoError(b, err)
	r := rand.New(rand.NewPCG(1, uint64(nseries)))
	start := time.Now()
	for range spans {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		ss := rs.ScopeSpans().AppendEmpty()
		for i := range nseries {
			d := time.Duration(i%100+1) * time.Millisecond
			if spans > 1 {
				d = time.Duration(float64(2*(i%100+1)) * float64(time.Millisecond) * math.Exp(0.6*r.NormFloat64()))
			}
			sp := ss.Spans().AppendEmpty()
			sp.SetName(fmt.Sprintf("GET /items/%d", i))
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(d)))
		}
		_, err = a.ConsumeTraces(td)
		require.NoError(b, err)
	}
	a.Snapshot(time.Now()) // past the zero-first snapshot
	snap := a.Snapshot(time.Now())
	enc := newRWEncoder(map[string]string{"replica": "r1"}, DefaultRemoteWriteMaxSamplesPerSend, send)
	var bytes, samples int
	sendFn := func(data []byte, n int) error { bytes += len(data); samples += n; return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		require.NoError(b, enc.encode(snap, sendFn))
	}
	b.ReportMetric(float64(samples)/float64(b.N), "samples/op")
	b.ReportMetric(float64(bytes)/float64(samples), "bytes/sample")
	b.ReportMetric(float64(bytes)/float64(b.N)/float64(len(snap.Series)), "bytes/series")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(samples), "ns/sample")
}

// TestRemoteWriteLabelsMatchSampleLabels checks the encoder's per-series
// label rendering against Snapshot.SampleLabels, the authority, for every
// sample index: const labels, an upper-case dimension (sorts before
// __name__), the overflow series, native histograms, external labels that
// collide with series labels.
func TestRemoteWriteLabelsMatchSampleLabels(t *testing.T) {
	cfg := spanmetrics.DefaultConfig()
	cfg.Dimensions = []spanmetrics.Dimension{{Name: "Zone"}, {Name: "http.method"}}
	cfg.AggregationCardinalityLimit = 2
	a, err := spanmetrics.New(cfg, spanmetrics.Options{Naming: spanmetrics.NamingConfig{ConstLabels: map[string]string{"cluster": "c1"}}})
	require.NoError(t, err)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range 4 {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(fmt.Sprintf("op%d", i))
		sp.Attributes().PutStr("Zone", "z1")
		sp.Attributes().PutStr("http.method", "GET")
		sp.SetEndTimestamp(pcommon.Timestamp(i * 1e6))
	}
	_, err = a.ConsumeTraces(td)
	require.NoError(t, err)
	v := a.Snapshot(time.Now())
	require.Len(t, v.Series, 3, "two series and the overflow series")

	e := newRWEncoder(map[string]string{"AAA": "x", "cluster": "ext", "replica": "r", "zzz": "y"}, 100, true)
	zones := 0
	for i := range v.Series {
		ss := &v.Series[i]
		e.base = v.Names.Labels(e.base[:0], ss)
		if e.base[0].Name == "Zone" {
			zones++
		}
		for idx := range v.NumSamples(ss) {
			want := e.labels(v.SampleLabels(&e.b, ss, idx))
			require.Equal(t, want, e.sampleLabels(v, ss, idx), "series %d index %d", i, idx)
		}
	}
	require.Equal(t, 2, zones, "the upper-case dimension sorts first")
	ls := e.labels(v.SampleLabels(&e.b, &v.Series[0], 0))
	require.Equal(t, "AAA", ls[0].Name)
	require.Contains(t, ls, prompb.Label{Name: "cluster", Value: "c1"})
	require.NotContains(t, ls, prompb.Label{Name: "cluster", Value: "ext"})
}

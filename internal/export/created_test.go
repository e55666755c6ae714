package export

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
	"github.com/spanwatch/spanwatch/internal/testutil"
)

const (
	acceptOpenMetrics = "application/openmetrics-text;version=1.0.0"
	acceptProtobuf    = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
	acceptText        = "text/plain;version=0.0.4"
)

// feed sends n spans of one operation of service svc to a.
func feed(t *testing.T, a *spanmetrics.Aggregator, svc string, n int) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Now()
	for range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("op")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(3 * time.Millisecond)))
	}
	_, err := a.ConsumeTraces(td)
	require.NoError(t, err)
}

// newAggregator returns an aggregator with classic buckets only: the tests
// here read the histogram's _count, which a scraper that takes native
// histograms does not store beside one.
func newAggregator(t *testing.T) *spanmetrics.Aggregator {
	t.Helper()
	cfg := spanmetrics.DefaultConfig()
	cfg.Histogram.Exponential.Enabled = false
	a, err := spanmetrics.New(cfg, spanmetrics.Options{})
	require.NoError(t, err)
	return a
}

// scrapeAs fetches h's exposition with the given Accept header and returns
// the calls counter of the only series and the body.
func scrapeAs(t *testing.T, h http.Handler, accept string) (*dto.Counter, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := rec.Body.String()
	format := expfmt.ResponseFormat(rec.Result().Header)
	if format.FormatType() == expfmt.TypeOpenMetrics {
		// The decoders read text and protobuf; OpenMetrics is checked on
		// its text.
		return nil, body
	}
	dec := expfmt.NewDecoder(strings.NewReader(body), format)
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		if mf.GetName() == "traces_span_metrics_calls_total" {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetCounter(), body
		}
	}
	t.Fatalf("no calls counter in\n%s", body)
	return nil, ""
}

// TestCreatedTimestampsByFormat: a new series is served at zero first,
// unless created timestamps are on and the negotiated format carries them
// (protobuf, OpenMetrics with _created lines); the text format is zero
// first either way.
func TestCreatedTimestampsByFormat(t *testing.T) {
	a := newAggregator(t)
	feed(t, a, "svc", 2)
	s := a.Snapshot(time.Now())
	require.True(t, s.Series[0].New)
	plain, created := NewExposition(ExpositionOptions{}), NewExposition(ExpositionOptions{CreatedTimestamps: true, Registerer: prometheus.NewRegistry()})
	plain.ConsumeSnapshot(s)
	created.ConsumeSnapshot(s)

	for _, e := range []*Exposition{plain, created} {
		c, _ := scrapeAs(t, e.Handler(), acceptText)
		require.Zero(t, c.GetValue(), "text: zero first")
		require.Nil(t, c.GetCreatedTimestamp(), "the text format has no created timestamps")
	}
	c, _ := scrapeAs(t, plain.Handler(), acceptProtobuf)
	require.Zero(t, c.GetValue(), "protobuf without the option: zero first")
	require.NotNil(t, c.GetCreatedTimestamp(), "protobuf carries the created timestamp anyway")
	c, _ = scrapeAs(t, created.Handler(), acceptProtobuf)
	require.Equal(t, 2.0, c.GetValue(), "protobuf with created timestamps: the counts at once")
	require.Equal(t, s.Series[0].Created.UnixNano(), c.GetCreatedTimestamp().AsTime().UnixNano())

	_, body := scrapeAs(t, plain.Handler(), acceptOpenMetrics)
	require.Contains(t, body, `traces_span_metrics_calls_total{`)
	require.NotContains(t, body, "_created", "no _created lines unless asked for: a scraper that ignores them stores them as series")
	require.Regexp(t, `(?m)^traces_span_metrics_calls_total\{[^}]*\} 0\.0$`, body)
	_, body = scrapeAs(t, created.Handler(), acceptOpenMetrics)
	require.Regexp(t, `(?m)^traces_span_metrics_calls_total\{[^}]*\} 2\.0$`, body)
	require.Regexp(t, `(?m)^traces_span_metrics_calls_created\{[^}]*\} \d+\.\d+e\+09$`, body)
	require.Regexp(t, `(?m)^traces_span_metrics_duration_milliseconds_created\{[^}]*\} \d+\.\d+e\+09$`, body)

	// From the second snapshot on, every format serves the counts.
	s = a.Snapshot(time.Now())
	plain.ConsumeSnapshot(s)
	created.ConsumeSnapshot(s)
	for _, e := range []*Exposition{plain, created} {
		for _, accept := range []string{acceptText, acceptProtobuf} {
			c, _ := scrapeAs(t, e.Handler(), accept)
			require.Equal(t, 2.0, c.GetValue(), accept)
		}
	}
}

// store is what a scraper stored, queried with PromQL.
type store interface {
	query(t *testing.T, expr string) []testutil.Sample
}

type remoteStore struct{ url string }

func (r remoteStore) query(t *testing.T, expr string) []testutil.Sample {
	t.Helper()
	out, err := testutil.Query(context.Background(), r.url, expr)
	require.NoError(t, err)
	return out
}

// valueOf returns the value of expr's only sample in st, and whether there
// was exactly one.
func valueOf(t *testing.T, st store, expr string) (float64, bool) {
	t.Helper()
	r := st.query(t, expr)
	if len(r) != 1 {
		return 0, false
	}
	return r[0].Value, true
}

// waitFor polls expr until its only sample is want.
func waitFor(t *testing.T, st store, expr string, want float64) {
	t.Helper()
	require.Eventually(t, func() bool {
		v, ok := valueOf(t, st, expr)
		return ok && v == want
	}, 30*time.Second, 50*time.Millisecond, "%s never was %g: %+v", expr, want, st.query(t, expr))
}

// newSeriesCounted runs one new series through exposition targets (job
// name → Exposition) scraped into st: the first snapshot of 3 spans, a
// second with no new span, a third after 2 more. atOnce names the jobs
// that get a new series' counts at once. It waits until st holds every
// state, then returns, per job, how much the calls counter and the
// histogram's count rose over the stored samples (max − min: what rate()
// and increase() can count) and how many _created series st holds.
func newSeriesCounted(t *testing.T, st store, targets map[string]*Exposition, atOnce map[string]bool) (calls, counts map[string]float64, createdSeries float64) {
	t.Helper()
	a := newAggregator(t)
	flush := func(wantNew, wantOld float64) {
		s := a.Snapshot(time.Now())
		for job, e := range targets {
			e.ConsumeSnapshot(s)
			want := wantOld
			if atOnce[job] && s.Series[0].New {
				want = wantNew
			}
			waitFor(t, st, fmt.Sprintf(`traces_span_metrics_calls_total{job=%q}`, job), want)
		}
	}
	feed(t, a, "svc", 3)
	flush(3, 0)
	flush(3, 3)
	feed(t, a, "svc", 2)
	flush(5, 5)
	calls, counts = map[string]float64{}, map[string]float64{}
	for job := range targets {
		for name, m := range map[string]map[string]float64{"traces_span_metrics_calls_total": calls, "traces_span_metrics_duration_milliseconds_count": counts} {
			sel := fmt.Sprintf(`%s{job=%q}[10m]`, name, job)
			v, ok := valueOf(t, st, fmt.Sprintf(`max_over_time(%s) - min_over_time(%s)`, sel, sel))
			require.True(t, ok, "%s of %s", name, job)
			m[job] = v
		}
	}
	createdSeries, _ = valueOf(t, st, `count({__name__=~".+_created"}) or vector(0)`)
	return calls, counts, createdSeries
}

// serve starts an HTTP server for each exposition and returns their
// addresses by job.
func serve(t *testing.T, targets map[string]*Exposition) map[string]string {
	t.Helper()
	addrs := map[string]string{}
	for job, e := range targets {
		srv := httptest.NewServer(e.Handler())
		t.Cleanup(srv.Close)
		addrs[job] = srv.Listener.Addr().String()
	}
	return addrs
}

// TestPrometheus242CountsFirstSpans scrapes the exposition with the real
// Prometheus 2.42 over OpenMetrics (its default) and protobuf (with native
// histograms on): served at zero first, a new series' first spans are
// counted. Prometheus 2.42 ignores created timestamps, so serving the
// counts at once would lose them, and it stores OpenMetrics' _created lines
// as series of their own: hence created timestamps only on request.
func TestPrometheus242CountsFirstSpans(t *testing.T) {
	testutil.Binary(t, "prometheus")
	for format, flags := range map[string][]string{"openmetrics": nil, "protobuf": {"--enable-feature=native-histograms"}} {
		t.Run(format, func(t *testing.T) {
			targets := map[string]*Exposition{"zero-first": NewExposition(ExpositionOptions{}), "created": NewExposition(ExpositionOptions{CreatedTimestamps: true})}
			var jobs strings.Builder
			for job, addr := range serve(t, targets) {
				fmt.Fprintf(&jobs, "  - job_name: %s\n    static_configs:\n      - targets: [%q]\n", job, addr)
			}
			p := testutil.StartPrometheus(t, "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n"+jobs.String(), flags...)
			st := remoteStore{p.URL}
			waitFor(t, st, `count(up == 1)`, 2)
			calls, counts, created := newSeriesCounted(t, st, targets, map[string]bool{"created": true})
			require.Equal(t, 5.0, calls["zero-first"], "zero first: every span counted")
			require.Equal(t, 5.0, counts["zero-first"])
			require.Equal(t, 2.0, calls["created"], "counts at once, created timestamps ignored: the first 3 spans lost")
			require.Equal(t, 2.0, counts["created"])
			if format == "openmetrics" {
				require.Positive(t, created, "_created lines stored as series")
			} else {
				require.Zero(t, created)
			}
		})
	}
}

// localStore is a TSDB that an in-process Prometheus scrape manager
// appends to.
type localStore struct {
	db     *tsdb.DB
	engine *promql.Engine
}

func (l localStore) query(t *testing.T, expr string) []testutil.Sample {
	t.Helper()
	q, err := l.engine.NewInstantQuery(context.Background(), l.db, nil, expr, time.Now())
	require.NoError(t, err)
	defer q.Close()
	res := q.Exec(context.Background())
	require.NoError(t, res.Err, expr)
	vec, err := res.Vector()
	require.NoError(t, err, expr)
	out := make([]testutil.Sample, len(vec))
	for i, s := range vec {
		out[i] = testutil.Sample{Metric: s.Metric.Map(), Value: s.F}
	}
	return out
}

// TestCreatedTimestampZeroIngestion scrapes the exposition with created
// timestamps on with Prometheus's own scrape code (the module spanwatch
// builds on) and created-timestamp-zero-ingestion, over protobuf and
// OpenMetrics: the counts are served at once and still every span is
// counted, from the zero Prometheus adds at the created time, and no
// _created series is stored. The text format stays zero first.
func TestCreatedTimestampZeroIngestion(t *testing.T) {
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	st := localStore{db: db, engine: promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: 10 * time.Second, LookbackDelta: 5 * time.Minute})}

	protocols := map[string]promconfig.ScrapeProtocol{
		"protobuf": promconfig.PrometheusProto, "openmetrics": promconfig.OpenMetricsText1_0_0, "text": promconfig.PrometheusText0_0_4,
	}
	targets := map[string]*Exposition{}
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\nscrape_configs:\n")
	for job, proto := range protocols {
		targets[job] = NewExposition(ExpositionOptions{CreatedTimestamps: true})
		fmt.Fprintf(&cfg, "  - job_name: %s\n    scrape_protocols: [%s]\n", job, proto)
	}
	pc, err := promconfig.Load(cfg.String(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	m, err := scrape.NewManager(&scrape.Options{EnableStartTimestampZeroIngestion: true}, nil, nil, db, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, m.ApplyConfig(pc))
	groups := make(chan map[string][]*targetgroup.Group, 1)
	tg := map[string][]*targetgroup.Group{}
	for job, addr := range serve(t, targets) {
		tg[job] = []*targetgroup.Group{{Source: job, Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(addr)}}}}
	}
	groups <- tg
	done := make(chan error, 1)
	go func() { done <- m.Run(groups) }()
	t.Cleanup(func() {
		m.Stop()
		require.NoError(t, <-done)
	})

	waitFor(t, st, `count(up == 1)`, 3)
	calls, counts, created := newSeriesCounted(t, st, targets, map[string]bool{"protobuf": true, "openmetrics": true})
	for job := range protocols {
		require.Equal(t, 5.0, calls[job], "%s: every span counted", job)
		require.Equal(t, 5.0, counts[job], "%s: every span counted", job)
	}
	require.Zero(t, created, "_created lines read as created timestamps, not stored")
}

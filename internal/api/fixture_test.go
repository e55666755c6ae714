package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb" //nolint:depguard // Tests need a real TSDB; the package itself reads storage.Queryable only.
	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/query"
)

// The fixture: 41 samples, every 15 s from t0 to t0+10m (= now).
var (
	t0     = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) // 1704067200
	fixNow = t0.Add(10 * time.Minute)                    // 1704067800
)

const (
	fixSteps    = 40
	fixStep     = 15 * time.Second
	frozenAfter = 20 // the classic histogram stops growing after step 20 (t0+5m)
)

// Classic buckets of the default span-metrics histogram (ms).
var classicBounds = []string{"2", "4", "6", "8", "10", "50", "100", "200", "400", "800", "1000", "1400", "2000", "5000", "10000", "15000", "+Inf"}

// classicCumulative is the cumulative count of bucket le after k steps of
// 10 observations each: 6 of 5 ms, 3 of 50 ms, 1 of 500 ms.
func classicCumulative(le string, k int) float64 {
	switch le {
	case "2", "4", "6", "8":
		return 0
	case "10", "50":
		return float64(6 * k)
	case "100", "200", "400":
		return float64(9 * k)
	default:
		return float64(10 * k)
	}
}

func fixtureMetadata() []Metadata {
	return []Metadata{
		{Metric: "traces_span_metrics_calls_total", Type: "counter", Help: "Spans counted."},
		{Metric: "traces_span_metrics_duration_milliseconds", Type: "histogram", Help: "Span duration.", Unit: "milliseconds"},
		{Metric: "traces_span_metrics_calls_total", Type: "counter", Help: "Spans counted."}, // duplicate collapses
		{Metric: "traces_span_metrics_duration_milliseconds", Type: "histogram", Help: "Other help.", Unit: "milliseconds"},
	}
}

// openFixtureDB opens a TSDB in a temporary directory and writes the
// fixture: calls counters for three series, a classic duration histogram
// and a native duration histogram.
func openFixtureDB(t *testing.T) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })

	server := func(service, kind string, extra ...string) labels.Labels {
		b := labels.NewScratchBuilder(8)
		b.Add("service_name", service)
		b.Add("span_kind", kind)
		b.Add("span_name", "GET /cart")
		b.Add("status_code", "STATUS_CODE_UNSET")
		for i := 0; i+1 < len(extra); i += 2 {
			b.Add(extra[i], extra[i+1])
		}
		b.Sort()
		return b.Labels()
	}
	named := func(name string, ls labels.Labels) labels.Labels {
		b := labels.NewBuilder(ls)
		b.Set(model.MetricNameLabel, name)
		return b.Labels()
	}

	app := db.AppenderV2(context.Background())
	add := func(ls labels.Labels, ts int64, v float64, h *histogram.Histogram) {
		_, err := app.Append(0, ls, 0, ts, v, h, nil, storage.AOptions{})
		require.NoError(t, err)
	}
	for i := 0; i <= fixSteps; i++ {
		ts := t0.Add(time.Duration(i) * fixStep).UnixMilli()
		add(named("traces_span_metrics_calls_total", server("checkout", "SPAN_KIND_SERVER")), ts, float64(10*i), nil)
		add(named("traces_span_metrics_calls_total", server("frontend", "SPAN_KIND_SERVER")), ts, float64(5*i), nil)
		add(named("traces_span_metrics_calls_total", server("checkout", "SPAN_KIND_CLIENT")), ts, float64(2*i), nil)

		k := min(i, frozenAfter)
		for _, le := range classicBounds {
			add(named("traces_span_metrics_duration_milliseconds_bucket", server("checkout", "SPAN_KIND_SERVER", "le", le)), ts, classicCumulative(le, k), nil)
		}
		add(named("traces_span_metrics_duration_milliseconds_count", server("checkout", "SPAN_KIND_SERVER")), ts, float64(10*k), nil)
		add(named("traces_span_metrics_duration_milliseconds_sum", server("checkout", "SPAN_KIND_SERVER")), ts, float64(680*k), nil)

		// Native: i observations in (0.5,1] and i in (1,2], summing to 3i.
		add(named("traces_span_metrics_duration_milliseconds", server("checkout", "SPAN_KIND_SERVER")), ts, 0, &histogram.Histogram{
			Schema:          0,
			Count:           uint64(2 * i),
			Sum:             3 * float64(i),
			PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}},
			PositiveBuckets: []int64{int64(i), 0},
		})
	}
	require.NoError(t, app.Commit())
	return db
}

// newTestHandler returns the API over the fixture, mounted on a mux.
// mutate may change the engine options before the engine is built.
func newTestHandler(t *testing.T, db storage.Queryable, mutate func(*query.Options)) http.Handler {
	t.Helper()
	eopts := query.DefaultOptions()
	if mutate != nil {
		mutate(&eopts)
	}
	engine, err := query.NewEngine(eopts)
	require.NoError(t, err)
	a, err := New(Options{
		Engine:    engine,
		Queryable: db,
		Metadata:  fixtureMetadata,
		BuildInfo: BuildInfo{Version: "1.2.3", Revision: "abc", Branch: "main", BuildUser: "ci", BuildDate: "20240101", GoVersion: "go1.26.8"},
		Now:       func() time.Time { return fixNow },
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

// envelope is the decoded response envelope.
type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
	Infos     []string        `json:"infos"`
}

// do sends params as a GET query string or a form POST body.
func do(t *testing.T, h http.Handler, method, path string, params url.Values) (*httptest.ResponseRecorder, envelope) {
	t.Helper()
	return doCtx(t, context.Background(), h, method, path, params)
}

func doCtx(t *testing.T, ctx context.Context, h http.Handler, method, path string, params url.Values) (*httptest.ResponseRecorder, envelope) {
	t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req = httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		target := path
		if len(params) > 0 {
			target += "?" + params.Encode()
		}
		req = httptest.NewRequestWithContext(ctx, method, target, nil)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var env envelope
	if rec.Body.Len() > 0 {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env), "body: %s", rec.Body.String())
	}
	return rec, env
}

var bothMethods = []string{http.MethodGet, http.MethodPost}

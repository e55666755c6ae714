package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/spanwatch/spanwatch/internal/query"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

func traces(service, name string, durs ...time.Duration) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Now()
	for _, d := range durs {
		sp := ss.Spans().AppendEmpty()
		sp.SetName(name)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(d)))
	}
	return td
}

type env struct {
	t     *testing.T
	store *Store
	agg   *spanmetrics.Aggregator
	eng   *query.Engine
	now   time.Time
}

func newEnv(t *testing.T, cfg spanmetrics.Config) *env {
	e := &env{t: t, now: time.Now().Truncate(time.Second)}
	s, err := Open(Options{Path: t.TempDir(), Retention: 24 * time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	e.store = s
	e.agg, err = spanmetrics.New(cfg, spanmetrics.Options{Now: func() time.Time { return e.now }})
	require.NoError(t, err)
	e.eng, err = query.NewEngine(query.DefaultOptions())
	require.NoError(t, err)
	return e
}

func (e *env) flush(advance time.Duration) {
	e.now = e.now.Add(advance)
	e.store.ConsumeSnapshot(e.agg.Snapshot(e.now))
}

func (e *env) query(expr string) promql.Vector {
	q, err := e.eng.NewInstantQuery(context.Background(), e.store.Queryable(), e.eng.QueryOpts(), expr, e.now)
	require.NoError(e.t, err)
	defer q.Close()
	r := q.Exec(context.Background())
	require.NoError(e.t, r.Err)
	v, err := r.Vector()
	require.NoError(e.t, err)
	return v
}

func (e *env) scalar(expr string) float64 {
	v := e.query(expr)
	require.Len(e.t, v, 1, expr)
	return v[0].F
}

func TestSnapshotsAreStoredWithZeroFirst(t *testing.T) {
	e := newEnv(t, spanmetrics.DefaultConfig())
	_, err := e.agg.ConsumeTraces(traces("svc", "op", time.Millisecond, 3*time.Millisecond, 30*time.Millisecond))
	require.NoError(t, err)
	e.flush(15 * time.Second)
	require.Equal(t, 3.0, e.scalar(`sum(traces_span_metrics_calls_total)`))
	require.Equal(t, 3.0, e.scalar(`increase(traces_span_metrics_calls_total[1m])`), "the zero-first sample makes increase() count the first spans")
	require.Equal(t, 2.0, e.scalar(`traces_span_metrics_duration_milliseconds_bucket{le="4"}`))
	require.Equal(t, 3.0, e.scalar(`traces_span_metrics_duration_milliseconds_bucket{le="+Inf"}`))
	require.Equal(t, 34.0, e.scalar(`traces_span_metrics_duration_milliseconds_sum`))
	require.Equal(t, 3.0, e.scalar(`histogram_count(traces_span_metrics_duration_milliseconds)`))
	require.Equal(t, 34.0, e.scalar(`histogram_sum(traces_span_metrics_duration_milliseconds)`))

	_, err = e.agg.ConsumeTraces(traces("svc", "op", time.Millisecond))
	require.NoError(t, err)
	e.flush(15 * time.Second)
	require.Equal(t, 4.0, e.scalar(`sum(traces_span_metrics_calls_total)`))
	require.InDelta(t, 4.0, e.scalar(`increase(traces_span_metrics_calls_total[1m])`), 0.5)
}

func TestExpiredSeriesGoStale(t *testing.T) {
	cfg := spanmetrics.DefaultConfig()
	cfg.SeriesExpiration = time.Minute
	e := newEnv(t, cfg)
	_, err := e.agg.ConsumeTraces(traces("svc", "op", time.Millisecond))
	require.NoError(t, err)
	e.flush(15 * time.Second)
	require.Len(t, e.query(`traces_span_metrics_calls_total`), 1)
	e.flush(61 * time.Second) // expires: staleness markers
	require.Empty(t, e.query(`traces_span_metrics_calls_total`), "a stale series leaves instant queries at once")
	require.Empty(t, e.query(`traces_span_metrics_duration_milliseconds_bucket`))
	require.Empty(t, e.store.refs)
}

type failingAppendable struct{ err error }

func (f failingAppendable) AppenderV2(context.Context) storage.AppenderV2 { return failingAppender(f) }

type failingAppender struct{ err error }

func (f failingAppender) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AOptions) (storage.SeriesRef, error) {
	return 1, nil
}
func (f failingAppender) Commit() error   { return f.err }
func (f failingAppender) Rollback() error { return nil }

func TestWriteErrorsAreReportedNotFatal(t *testing.T) {
	e := newEnv(t, spanmetrics.DefaultConfig())
	var health []error
	e.store.onHlth = func(err error) { health = append(health, err) }
	diskFull := errors.New("write /data/wal/00000001: no space left on device")
	e.store.app = failingAppendable{err: diskFull}
	_, err := e.agg.ConsumeTraces(traces("svc", "op", time.Millisecond))
	require.NoError(t, err)
	e.flush(time.Second)
	require.ErrorIs(t, e.store.Err(), diskFull)
	e.flush(time.Second)
	e.store.app = e.store.db
	e.flush(time.Second)
	require.NoError(t, e.store.Err())
	require.Len(t, health, 2)
	require.ErrorIs(t, health[0], diskFull)
	require.NoError(t, health[1])
}

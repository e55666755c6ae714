package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// QueryFunc evaluates an instant query, locally or on a remote store: the
// shape of the rules manager's query function.
type QueryFunc func(ctx context.Context, q string, t time.Time) (promql.Vector, error)

// Reader runs the queries of a look through a query function.
type Reader struct {
	Query QueryFunc
	// Calls is the calls counter (traces_span_metrics_calls_total).
	Calls string
	// FlushInterval is the span-metrics flush interval: the resolution of
	// first-seen times.
	FlushInterval time.Duration
}

// FirstSeenExpr is the PromQL of when each version first served within
// rng, by service_version (extra grouping labels in by): the earliest
// sample timestamp, looked at every step. A step no longer than the flush
// interval gives the exact sample time.
func FirstSeenExpr(calls, selector string, rng, step time.Duration, by ...string) string {
	grouping := strings.Join(append(by, VersionLabel), ", ")
	return fmt.Sprintf("min by (%s) (min_over_time(timestamp(%s%s)[%s:%s]))",
		grouping, calls, selector, model.Duration(rng), model.Duration(step))
}

// Selector renders matchers of the group (and the version, if not empty).
func Selector(g Group, version string) string {
	ms := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, ServiceLabel, g.Service),
		labels.MustNewMatcher(labels.MatchEqual, JobLabel, g.Job),
		labels.MustNewMatcher(labels.MatchEqual, EnvironmentLabel, g.Environment),
	}
	if version != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, VersionLabel, version))
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Matchers renders the group's matchers without braces, for gate arms.
func Matchers(g Group, version string) string {
	s := Selector(g, version)
	return s[1 : len(s)-1]
}

// Activity reads every version's requests in the window ending at now.
func (r *Reader) Activity(ctx context.Context, now time.Time, window time.Duration) ([]Activity, error) {
	q := fmt.Sprintf("sum by (%s, %s, %s, %s) (increase(%s[%s]))",
		ServiceLabel, JobLabel, EnvironmentLabel, VersionLabel, r.Calls, model.Duration(window))
	v, err := r.Query(ctx, q, now)
	if err != nil {
		return nil, fmt.Errorf("reading version activity: %w", err)
	}
	out := make([]Activity, 0, len(v))
	for _, s := range v {
		out = append(out, Activity{
			Group:    GroupOf(s.Metric.Get(ServiceLabel), s.Metric.Get(JobLabel), s.Metric.Get(EnvironmentLabel)),
			Version:  s.Metric.Get(VersionLabel),
			Requests: s.F,
		})
	}
	return out, nil
}

// FirstSeen reads first-seen times for what Tracker.Unknown asked: finely
// over the last hour (or the lookback, if shorter), then coarsely over the
// lookback for versions older than that.
func (r *Reader) FirstSeen(ctx context.Context, keys []VersionKey, now time.Time, lookback time.Duration) (map[VersionKey]time.Time, error) {
	out := map[VersionKey]time.Time{}
	fine := min(lookback, time.Hour)
	for _, k := range keys {
		need := true
		for _, rs := range []struct{ rng, step time.Duration }{
			{fine, max(r.FlushInterval, fine/2000)},
			{lookback, max(r.FlushInterval, lookback/240)},
		} {
			if !need {
				break
			}
			v, err := r.Query(ctx, FirstSeenExpr(r.Calls, Selector(k.Group, k.Version), rs.rng, rs.step), now)
			if err != nil {
				return nil, fmt.Errorf("reading first-seen times: %w", err)
			}
			found := 0
			for _, s := range v {
				vk := VersionKey{Group: k.Group, Version: s.Metric.Get(VersionLabel)}
				if vk.Version == "" {
					continue
				}
				if _, ok := out[vk]; ok {
					continue
				}
				// The oldest sample of the fine range is where it starts:
				// the version may be older.
				at := time.UnixMilli(int64(s.F * 1000))
				if rs.rng == fine && fine < lookback && at.Before(now.Add(-fine).Add(2*rs.step)) {
					continue
				}
				out[vk] = at
				found++
			}
			need = k.Version == "" || found == 0
			if rs.rng >= lookback {
				break
			}
		}
	}
	return out, nil
}

// Requests reads the version's requests in [end − rng, end]; none and
// no series are 0.
func (r *Reader) Requests(ctx context.Context, g Group, version string, end time.Time, rng time.Duration) (float64, error) {
	if rng <= 0 {
		return 0, nil
	}
	q := fmt.Sprintf("sum(increase(%s%s[%s]))", r.Calls, Selector(g, version), model.Duration(rng))
	v, err := r.Query(ctx, q, end)
	if err != nil {
		return 0, fmt.Errorf("reading requests of %s %s: %w", g.Service, version, err)
	}
	if len(v) == 0 {
		return 0, nil
	}
	return v[0].F, nil
}

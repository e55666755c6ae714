package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/spanwatch/spanwatch/internal/regress"
	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// ErrBackend marks failures of the query backend (unreachable, 5xx, bad
// answers): exit code 4.
var ErrBackend = errors.New("query backend failed")

// Series names the span-metric series the gate reads.
type Series struct {
	Calls     string // counter, e.g. traces_span_metrics_calls_total
	Duration  string // histogram base name; classic buckets are Duration+"_bucket"
	Operation string // span name label: span_name or operation
	// Unit of the duration histogram: spanmetrics.UnitMilliseconds (also
	// when empty) or spanmetrics.UnitSeconds. Latencies reach the
	// statistics and the report in milliseconds either way.
	Unit string
}

// msPerUnit is the factor from the histogram's unit to milliseconds.
func (s Series) msPerUnit() float64 {
	if s.Unit == spanmetrics.UnitSeconds {
		return 1000
	}
	return 1
}

// SeriesFor returns the series names for a naming ("otel" or "legacy"), an
// exposition namespace and a histogram unit ("ms", the default, or "s"),
// with spanwatch's default spanmetrics settings otherwise.
func SeriesFor(naming, namespace, unit string) Series {
	cfg := spanmetrics.DefaultConfig()
	if unit != "" {
		cfg.Histogram.Unit = unit
	}
	n := spanmetrics.NewNames(cfg, spanmetrics.NamingConfig{Naming: naming, Namespace: namespace})
	return Series{Calls: n.Calls, Duration: n.Duration, Operation: n.SpanNameLabel, Unit: cfg.Histogram.Unit}
}

// ResolveSeries returns the series to read: detected from the data when
// naming is "auto" (or empty), else those of naming, namespace and unit.
// When auto-detection finds nothing yet (a deploy may just have started)
// it falls back to the default names, and the note says so; the note also
// says which series were found.
func (s *Source) ResolveSeries(ctx context.Context, naming, namespace, unit string, now time.Time) (Series, string, error) {
	if naming != "" && naming != "auto" {
		return SeriesFor(naming, namespace, unit), "", nil
	}
	found, err := s.DetectSeries(ctx, now)
	if errors.Is(err, ErrNoData) {
		return SeriesFor(spanmetrics.NamingOTel, namespace, unit), fmt.Sprintf("%v; waiting for data under the default names", err), nil
	}
	if err != nil {
		return Series{}, "", err
	}
	return found, fmt.Sprintf("reading %s and %s", found.Calls, found.Duration), nil
}

// Arm selects one population: extra label matchers on the same window, or
// the window shifted back, or an explicit range.
type Arm struct {
	// Matchers are added to every selector (e.g. service_version="v2").
	Matchers []*labels.Matcher
	// Offset shifts the window back.
	Offset time.Duration
	// Start and End, when set, are an explicit range (the window is ignored).
	// Start alone is an open range: from Start to each look's time.
	Start, End time.Time
}

// Open reports whether the arm runs from Start to each look's time.
func (a Arm) Open() bool { return !a.Start.IsZero() && a.End.IsZero() }

// Describe renders the arm for reports.
func (a Arm) Describe(window time.Duration) string {
	var parts []string
	for _, m := range a.Matchers {
		parts = append(parts, m.String())
	}
	switch {
	case !a.End.IsZero():
		parts = append(parts, a.Start.UTC().Format(time.RFC3339)+" … "+a.End.UTC().Format(time.RFC3339))
	case a.Open():
		parts = append(parts, "since "+a.Start.UTC().Format(time.RFC3339))
	case a.Offset > 0:
		parts = append(parts, "last "+model.Duration(window).String()+" offset "+model.Duration(a.Offset).String())
	default:
		parts = append(parts, "last "+model.Duration(window).String())
	}
	return strings.Join(parts, ", ")
}

// ParseMatchers parses label matchers such as `service_version="v1"` (with
// or without braces). They are re-rendered, never pasted, into queries.
func ParseMatchers(p parser.Parser, s string) ([]*labels.Matcher, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if !strings.HasPrefix(s, "{") {
		s = "{" + s + "}"
	}
	ms, err := p.ParseMetricSelector(s)
	if err != nil {
		return nil, fmt.Errorf("matchers %s: %w", s, err)
	}
	return ms, nil
}

// Source reads arms from a Prometheus-compatible API.
type Source struct {
	API        v1.API
	Series     Series
	Service    string
	SpanKind   string   // e.g. SPAN_KIND_SERVER; empty: any kind
	Operations []string // empty: every operation
}

// Data is what one arm holds, per operation and for the whole service.
type Data struct {
	Service    regress.Arm
	Operations map[string]regress.Arm
	// Native is true when latencies came from native histograms.
	Native bool
}

// selector renders the label matchers of a query for arm.
func (s *Source) selector(arm Arm, extra ...*labels.Matcher) string {
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "service_name", s.Service)}
	if s.SpanKind != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, "span_kind", s.SpanKind))
	}
	if len(s.Operations) > 0 {
		var alts []string
		for _, o := range s.Operations {
			alts = append(alts, regexp.QuoteMeta(o))
		}
		ms = append(ms, labels.MustNewMatcher(labels.MatchRegexp, s.Series.Operation, strings.Join(alts, "|")))
	}
	ms = append(ms, arm.Matchers...)
	ms = append(ms, extra...)
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.String())
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// rangeAndTime returns the range selector suffix and the evaluation time.
func rangeAndTime(arm Arm, now time.Time, window time.Duration) (string, time.Time) {
	if !arm.End.IsZero() {
		return "[" + model.Duration(arm.End.Sub(arm.Start)).String() + "]", arm.End
	}
	if arm.Open() {
		// Before Start the arm is empty; a millisecond range holds nothing.
		return "[" + model.Duration(max(now.Sub(arm.Start), time.Millisecond)).String() + "]", now
	}
	r := "[" + model.Duration(window).String() + "]"
	if arm.Offset > 0 {
		r += " offset " + model.Duration(arm.Offset).String()
	}
	return r, now
}

// Fetch reads the arm as of now: requests, errors and latency histograms,
// per operation and for the service.
func (s *Source) Fetch(ctx context.Context, arm Arm, now time.Time, window time.Duration) (*Data, error) {
	rng, at := rangeAndTime(arm, now, window)
	op := s.Series.Operation
	errSel := labels.MustNewMatcher(labels.MatchEqual, "status_code", "STATUS_CODE_ERROR")
	calls := fmt.Sprintf("increase(%s%s%s)", s.Series.Calls, s.selector(arm), rng)
	errs := fmt.Sprintf("increase(%s%s%s)", s.Series.Calls, s.selector(arm, errSel), rng)
	buckets := fmt.Sprintf("increase(%s_bucket%s%s)", s.Series.Duration, s.selector(arm), rng)
	native := fmt.Sprintf("increase(%s%s%s)", s.Series.Duration, s.selector(arm), rng)

	d := &Data{Operations: map[string]regress.Arm{}}
	type query struct {
		expr  string
		apply func(model.Vector) error
	}
	perOp := func(set func(a *regress.Arm, smp *model.Sample)) func(model.Vector) error {
		return func(v model.Vector) error {
			for _, smp := range v {
				name := string(smp.Metric[model.LabelName(op)])
				a := d.Operations[name]
				set(&a, smp)
				d.Operations[name] = a
			}
			return nil
		}
	}
	service := func(set func(a *regress.Arm, smp *model.Sample)) func(model.Vector) error {
		return func(v model.Vector) error {
			for _, smp := range v {
				set(&d.Service, smp)
			}
			return nil
		}
	}
	classic := map[string]map[float64]float64{} // op → le → cumulative
	classicSvc := map[float64]float64{}
	queries := []query{
		{fmt.Sprintf("sum by (%s) (%s)", op, calls), perOp(func(a *regress.Arm, s *model.Sample) { a.Requests = float64(s.Value) })},
		{fmt.Sprintf("sum(%s)", calls), service(func(a *regress.Arm, s *model.Sample) { a.Requests = float64(s.Value) })},
		{fmt.Sprintf("sum by (%s) (%s)", op, errs), perOp(func(a *regress.Arm, s *model.Sample) { a.Errors = float64(s.Value) })},
		{fmt.Sprintf("sum(%s)", errs), service(func(a *regress.Arm, s *model.Sample) { a.Errors = float64(s.Value) })},
		{fmt.Sprintf("sum by (%s, le) (%s)", op, buckets), func(v model.Vector) error {
			for _, smp := range v {
				name := string(smp.Metric[model.LabelName(op)])
				if classic[name] == nil {
					classic[name] = map[float64]float64{}
				}
				if err := addLE(classic[name], smp); err != nil {
					return err
				}
			}
			return nil
		}},
		{fmt.Sprintf("sum by (le) (%s)", buckets), func(v model.Vector) error {
			for _, smp := range v {
				if err := addLE(classicSvc, smp); err != nil {
					return err
				}
			}
			return nil
		}},
		{fmt.Sprintf("sum by (%s) (%s)", op, native), perOp(func(a *regress.Arm, s *model.Sample) {
			if s.Histogram != nil {
				a.Latency = fromNative(s.Histogram)
			}
		})},
		{fmt.Sprintf("sum(%s)", native), service(func(a *regress.Arm, s *model.Sample) {
			if s.Histogram != nil {
				a.Latency = fromNative(s.Histogram)
				d.Native = true
			}
		})},
	}
	for _, q := range queries {
		v, err := s.query(ctx, q.expr, at)
		if err != nil {
			return nil, err
		}
		if err := q.apply(v); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBackend, q.expr, err)
		}
	}
	// Classic buckets where there is no native histogram.
	for name, cum := range classic {
		a := d.Operations[name]
		if len(a.Latency.Bounds) == 0 {
			a.Latency = fromCumulative(cum)
			d.Operations[name] = a
		}
	}
	if len(d.Service.Latency.Bounds) == 0 && len(classicSvc) > 0 {
		d.Service.Latency = fromCumulative(classicSvc)
	}
	if f := s.Series.msPerUnit(); f != 1 {
		scaleBounds(&d.Service.Latency, f)
		for name, a := range d.Operations {
			scaleBounds(&a.Latency, f)
			d.Operations[name] = a
		}
	}
	for name, a := range d.Operations {
		if a.Requests == 0 && len(a.Latency.Bounds) == 0 {
			delete(d.Operations, name)
		}
	}
	return d, nil
}

func (s *Source) query(ctx context.Context, expr string, at time.Time) (model.Vector, error) {
	val, _, _, err := s.API.Query(ctx, expr, at)
	if err != nil {
		// Every query is built here, so even a bad_data answer is the
		// backend's failing (it does not speak this PromQL), not the user's.
		return nil, fmt.Errorf("%w: query %s: %w", ErrBackend, expr, err)
	}
	v, ok := val.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%w: query %s returned %s, want a vector", ErrBackend, expr, val.Type())
	}
	return v, nil
}

// addLE adds a classic bucket sample to a map from upper bound to
// cumulative count. le="10" and le="10.0" are the same bucket.
func addLE(m map[float64]float64, smp *model.Sample) error {
	le, err := strconv.ParseFloat(string(smp.Metric[model.BucketLabel]), 64)
	if err != nil {
		return fmt.Errorf("bucket with le=%q: %w", smp.Metric[model.BucketLabel], err)
	}
	m[le] += float64(smp.Value)
	return nil
}

// fromCumulative turns cumulative classic buckets into a binned histogram.
func fromCumulative(cum map[float64]float64) regress.Histogram {
	bounds := make([]float64, 0, len(cum))
	for le := range cum {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	h := regress.Histogram{Bounds: bounds, Counts: make([]float64, len(bounds))}
	prev := 0.0
	for i, le := range bounds {
		c := cum[le]
		// Counters can be slightly inconsistent (increase() extrapolates each
		// bucket on its own); counts never go negative.
		h.Counts[i] = math.Max(0, c-prev)
		prev = math.Max(prev, c)
	}
	return h
}

// scaleBounds converts a histogram's bounds to milliseconds in place.
func scaleBounds(h *regress.Histogram, f float64) {
	for i := range h.Bounds {
		h.Bounds[i] *= f
	}
}

// fromNative turns a native histogram's buckets into a binned histogram
// (the upper edge of each bucket; the zero bucket as its threshold).
func fromNative(sh *model.SampleHistogram) regress.Histogram {
	bs := slices.Clone(sh.Buckets)
	slices.SortFunc(bs, func(a, b *model.HistogramBucket) int {
		switch {
		case a.Upper < b.Upper:
			return -1
		case a.Upper > b.Upper:
			return 1
		}
		return 0
	})
	var h regress.Histogram
	for _, b := range bs {
		if b.Upper <= 0 {
			continue // negative buckets do not occur for durations
		}
		h.Bounds = append(h.Bounds, float64(b.Upper))
		h.Counts = append(h.Counts, math.Max(0, float64(b.Count)))
	}
	return h
}

// ErrNoData means the backend holds no span metrics for the service: the
// verdict is inconclusive, never a pass.
var ErrNoData = errors.New("no span metrics found")

// DetectSeries finds which naming the backend holds for the service: the
// otel names (…traces_span_metrics_calls_total) or the legacy ones
// (…calls_total), with their exposition namespace.
func (s *Source) DetectSeries(ctx context.Context, now time.Time) (Series, error) {
	sel := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".*calls_total|.*traces_span_metrics_duration_(milliseconds|seconds)(_count)?"),
		labels.MustNewMatcher(labels.MatchEqual, "service_name", s.Service),
	}
	var parts []string
	for _, m := range sel {
		parts = append(parts, m.String())
	}
	v, err := s.query(ctx, "count by (__name__) (last_over_time({"+strings.Join(parts, ", ")+"}[1d]))", now)
	if err != nil {
		return Series{}, err
	}
	var names []string
	for _, smp := range v {
		names = append(names, string(smp.Metric[model.MetricNameLabel]))
	}
	slices.Sort(names)
	const otel = "traces_span_metrics_calls_total"
	for _, n := range names {
		if strings.HasSuffix(n, otel) {
			ns := strings.TrimSuffix(strings.TrimSuffix(n, otel), "_")
			// Milliseconds unless only a seconds histogram is there.
			unit := spanmetrics.UnitMilliseconds
			sec := SeriesFor(spanmetrics.NamingOTel, ns, spanmetrics.UnitSeconds).Duration
			ms := SeriesFor(spanmetrics.NamingOTel, ns, spanmetrics.UnitMilliseconds).Duration
			if (slices.Contains(names, sec) || slices.Contains(names, sec+"_count")) &&
				!slices.Contains(names, ms) && !slices.Contains(names, ms+"_count") {
				unit = spanmetrics.UnitSeconds
			}
			return SeriesFor(spanmetrics.NamingOTel, ns, unit), nil
		}
	}
	for _, n := range names {
		if n == "calls_total" || strings.HasSuffix(n, "_calls_total") {
			// Legacy names are Jaeger's, in milliseconds.
			return SeriesFor(spanmetrics.NamingLegacy, strings.TrimSuffix(strings.TrimSuffix(n, "calls_total"), "_"), ""), nil
		}
	}
	return Series{}, fmt.Errorf("%w for service %q in the last day (looked for *calls_total{service_name=%q})", ErrNoData, s.Service, s.Service)
}

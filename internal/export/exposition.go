package export

import (
	"cmp"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// Exposition serves the latest snapshot in the Prometheus exposition
// formats. The families are built once per snapshot, so a scrape only
// encodes.
//
// A series seen for the first time is served at zero in its first
// snapshot and with its counts from the next one on, so that a scraper's
// rate() and increase() count its first spans: a scraper that does not use
// created timestamps counts only what a counter gains after its first
// sample. With ExpositionOptions.CreatedTimestamps, the formats that carry
// created timestamps (protobuf, and OpenMetrics with _created lines) serve
// the counts at once instead, for scrapers that ingest a zero at the
// created time; the text format, which cannot carry them, stays zero first.
type Exposition struct {
	zeroFirst, atOnce atomic.Pointer[[]*dto.MetricFamily]
	created           bool
	handler           http.Handler
}

// ExpositionOptions configure an Exposition.
type ExpositionOptions struct {
	// CreatedTimestamps serves a new series' counts at once, with created
	// timestamps, to scrapers that negotiate protobuf or OpenMetrics (whose
	// _created lines it then writes). Only for scrapers that ingest them
	// (Prometheus with --enable-feature=created-timestamp-zero-ingestion):
	// any other counts only what a counter gains after its first sample,
	// and stores OpenMetrics' _created lines as series of their own.
	CreatedTimestamps bool
	// Registerer, if not nil, receives the handler's own metrics
	// (spanwatch_exposition_*).
	Registerer prometheus.Registerer
}

// acceptedFormats are the formats the exposition negotiates, in order of
// preference.
var acceptedFormats = expfmt.DefaultOpenMetricsAcceptedFormats()

// NewExposition returns an Exposition that serves nothing until the first
// snapshot arrives.
func NewExposition(o ExpositionOptions) *Exposition {
	e := &Exposition{created: o.CreatedTimestamps}
	empty := []*dto.MetricFamily{}
	e.zeroFirst.Store(&empty)
	e.atOnce.Store(&empty)
	serve := func(fams *atomic.Pointer[[]*dto.MetricFamily], createdLines bool) http.Handler {
		g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return *fams.Load(), nil })
		return promhttp.HandlerFor(g, promhttp.HandlerOpts{
			AcceptedFormats:                     acceptedFormats,
			EnableOpenMetricsTextCreatedSamples: createdLines,
			ErrorHandling:                       promhttp.ContinueOnError,
		})
	}
	h := serve(&e.zeroFirst, false)
	if e.created {
		zeroFirst, atOnce := h, serve(&e.atOnce, true)
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if carriesCreated(expfmt.NegotiateAccept(r.Header, acceptedFormats...)) {
				atOnce.ServeHTTP(w, r)
				return
			}
			zeroFirst.ServeHTTP(w, r)
		})
	}
	if o.Registerer != nil {
		h = promhttp.InstrumentMetricHandler(prometheus.WrapRegistererWithPrefix("spanwatch_exposition_", o.Registerer), h)
	}
	e.handler = h
	return e
}

// carriesCreated reports whether a format carries created timestamps.
func carriesCreated(f expfmt.Format) bool {
	switch f.FormatType() {
	case expfmt.TypeProtoDelim, expfmt.TypeProtoText, expfmt.TypeProtoCompact, expfmt.TypeOpenMetrics:
		return true
	}
	return false
}

// Handler serves /metrics.
func (e *Exposition) Handler() http.Handler { return e.handler }

// ConsumeSnapshot replaces what /metrics serves.
func (e *Exposition) ConsumeSnapshot(s *spanmetrics.Snapshot) {
	zeroFirst, withCounts := families(s, e.created)
	e.zeroFirst.Store(&zeroFirst)
	if e.created {
		e.atOnce.Store(&withCounts)
	}
}

// Families renders a snapshot as metric families, sorted by name, every
// counter and histogram with its created timestamp. A series seen for the
// first time is rendered at zero, so that a scraper's rate() and increase()
// count its first spans once the next snapshot shows them.
func Families(s *spanmetrics.Snapshot) []*dto.MetricFamily {
	zeroFirst, _ := families(s, false)
	return zeroFirst
}

// families renders a snapshot zero first and, with atOnce, also with the
// new series' counts; both share every other series.
func families(s *spanmetrics.Snapshot, atOnce bool) (zeroFirst, withCounts []*dto.MetricFamily) {
	n := s.Names
	z := newFamilySet(s)
	var c *familySet
	if atOnce {
		c = newFamilySet(s)
	}
	var labels []spanmetrics.Label
	for i := range s.Series {
		ss := &s.Series[i]
		labels = n.Labels(labels[:0], ss)
		lp := labelPairs(labels)
		calls, dur := render(s, ss, lp, ss.New)
		z.add(calls, dur)
		if c != nil {
			if ss.New {
				calls, dur = render(s, ss, lp, false)
			}
			c.add(calls, dur)
		}
	}
	var targets *dto.MetricFamily
	if len(s.Targets) > 0 {
		targets = &dto.MetricFamily{
			Name: proto.String(n.TargetInfo),
			Help: proto.String("Target metadata: the resource attributes of each service instance."),
			Type: dto.MetricType_GAUGE.Enum(),
		}
		for i := range s.Targets {
			labels = n.TargetLabels(labels[:0], &s.Targets[i])
			targets.Metric = append(targets.Metric, &dto.Metric{Label: labelPairs(labels), Gauge: &dto.Gauge{Value: proto.Float64(1)}})
		}
	}
	zeroFirst = z.sorted(targets)
	if c != nil {
		withCounts = c.sorted(targets)
	}
	return zeroFirst, withCounts
}

// familySet holds the calls counter and the duration histogram (nil when
// disabled) of one rendering.
type familySet struct{ calls, dur *dto.MetricFamily }

func newFamilySet(s *spanmetrics.Snapshot) *familySet {
	n := s.Names
	f := &familySet{calls: &dto.MetricFamily{
		Name: proto.String(n.Calls),
		Help: proto.String("Number of spans, per service, span name, kind, status and dimensions."),
		Type: dto.MetricType_COUNTER.Enum(),
	}}
	if !s.HistogramDisabled {
		f.dur = &dto.MetricFamily{
			Name: proto.String(n.Duration),
			Help: proto.String("Span duration in " + unitWord(n.Unit) + "."),
			Type: dto.MetricType_HISTOGRAM.Enum(),
		}
	}
	return f
}

func (f *familySet) add(calls, dur *dto.Metric) {
	f.calls.Metric = append(f.calls.Metric, calls)
	if f.dur != nil {
		f.dur.Metric = append(f.dur.Metric, dur)
	}
}

// sorted returns the families, with targets when not nil, sorted by name.
func (f *familySet) sorted(targets *dto.MetricFamily) []*dto.MetricFamily {
	fams := []*dto.MetricFamily{f.calls}
	if f.dur != nil {
		fams = append(fams, f.dur)
	}
	if targets != nil {
		fams = append(fams, targets)
	}
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return fams
}

// render builds a series' counter and histogram (nil when the snapshot has
// none), at zero when zero is set.
func render(s *spanmetrics.Snapshot, ss *spanmetrics.SeriesSnapshot, lp []*dto.LabelPair, zero bool) (calls, dur *dto.Metric) {
	ct := timestamppb.New(ss.Created)
	count, sum, buckets, native := ss.Count, ss.Sum, ss.Buckets, ss.Native
	if zero {
		count, sum, buckets = 0, 0, nil
		if native != nil {
			native = &spanmetrics.NativeHistogram{Schema: native.Schema, ZeroThreshold: native.ZeroThreshold}
		}
	}
	calls = &dto.Metric{Label: lp, Counter: &dto.Counter{Value: proto.Float64(float64(count)), CreatedTimestamp: ct}}
	if s.HistogramDisabled {
		return calls, nil
	}
	h := &dto.Histogram{
		SampleCount:      proto.Uint64(count),
		SampleSum:        proto.Float64(sum),
		CreatedTimestamp: ct,
		Bucket:           make([]*dto.Bucket, len(s.Bounds)),
	}
	var cum uint64
	for b, ub := range s.Bounds {
		if buckets != nil {
			cum += buckets[b]
		}
		h.Bucket[b] = &dto.Bucket{CumulativeCount: proto.Uint64(cum), UpperBound: proto.Float64(ub)}
	}
	if native != nil {
		setNative(h, native)
	}
	return calls, &dto.Metric{Label: lp, Histogram: h}
}

func setNative(h *dto.Histogram, nh *spanmetrics.NativeHistogram) {
	h.Schema = proto.Int32(nh.Schema)
	h.ZeroThreshold = proto.Float64(nh.ZeroThreshold)
	h.ZeroCount = proto.Uint64(nh.ZeroCount)
	offsets, lengths, deltas := nh.Spans()
	for i := range offsets {
		h.PositiveSpan = append(h.PositiveSpan, &dto.BucketSpan{Offset: proto.Int32(offsets[i]), Length: proto.Uint32(lengths[i])})
	}
	h.PositiveDelta = deltas
	if len(h.PositiveSpan) == 0 && nh.ZeroCount == 0 {
		// A native histogram without observations still needs a span to be
		// recognised as native by scrapers.
		h.PositiveSpan = []*dto.BucketSpan{{Offset: proto.Int32(0), Length: proto.Uint32(0)}}
	}
}

func labelPairs(ls []spanmetrics.Label) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(ls))
	for i, l := range ls {
		out[i] = &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)}
	}
	return out
}

func unitWord(u string) string {
	if u == spanmetrics.UnitSeconds {
		return "seconds"
	}
	return "milliseconds"
}

package export

import (
	"cmp"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// Exposition serves the latest snapshot in the Prometheus exposition
// formats. The families are built once per snapshot, so a scrape only
// encodes.
type Exposition struct {
	families atomic.Pointer[[]*dto.MetricFamily]
	handler  http.Handler
}

// NewExposition returns an Exposition that serves nothing until the first
// snapshot arrives. reg, if not nil, receives the handler's own metrics
// (spanwatch_exposition_*).
func NewExposition(reg prometheus.Registerer) *Exposition {
	e := &Exposition{}
	empty := []*dto.MetricFamily{}
	e.families.Store(&empty)
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return *e.families.Load(), nil })
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
	})
	if reg != nil {
		h = promhttp.InstrumentMetricHandler(prometheus.WrapRegistererWithPrefix("spanwatch_exposition_", reg), h)
	}
	e.handler = h
	return e
}

// Handler serves /metrics.
func (e *Exposition) Handler() http.Handler { return e.handler }

// ConsumeSnapshot replaces what /metrics serves.
func (e *Exposition) ConsumeSnapshot(s *spanmetrics.Snapshot) {
	fams := Families(s)
	e.families.Store(&fams)
}

// Families renders a snapshot as metric families, sorted by name. A series
// seen for the first time is rendered at zero, so that a scraper's rate()
// and increase() count its first spans once the next snapshot shows them.
func Families(s *spanmetrics.Snapshot) []*dto.MetricFamily {
	n := s.Names
	calls := &dto.MetricFamily{
		Name: proto.String(n.Calls),
		Help: proto.String("Number of spans, per service, span name, kind, status and dimensions."),
		Type: dto.MetricType_COUNTER.Enum(),
	}
	var dur *dto.MetricFamily
	if !s.HistogramDisabled {
		dur = &dto.MetricFamily{
			Name: proto.String(n.Duration),
			Help: proto.String("Span duration in " + unitWord(n.Unit) + "."),
			Type: dto.MetricType_HISTOGRAM.Enum(),
		}
	}
	var labels []spanmetrics.Label
	for i := range s.Series {
		ss := &s.Series[i]
		labels = n.Labels(labels[:0], ss)
		lp := labelPairs(labels)
		ct := timestamppb.New(ss.Created)
		count, sum, buckets, native := ss.Count, ss.Sum, ss.Buckets, ss.Native
		if ss.New {
			count, sum, buckets = 0, 0, nil
			if native != nil {
				native = &spanmetrics.NativeHistogram{Schema: native.Schema, ZeroThreshold: native.ZeroThreshold}
			}
		}
		calls.Metric = append(calls.Metric, &dto.Metric{
			Label:   lp,
			Counter: &dto.Counter{Value: proto.Float64(float64(count)), CreatedTimestamp: ct},
		})
		if dur == nil {
			continue
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
		dur.Metric = append(dur.Metric, &dto.Metric{Label: lp, Histogram: h})
	}
	fams := []*dto.MetricFamily{calls}
	if dur != nil {
		fams = append(fams, dur)
	}
	if len(s.Targets) > 0 {
		ti := &dto.MetricFamily{
			Name: proto.String(n.TargetInfo),
			Help: proto.String("Target metadata: the resource attributes of each service instance."),
			Type: dto.MetricType_GAUGE.Enum(),
		}
		for i := range s.Targets {
			labels = n.TargetLabels(labels[:0], &s.Targets[i])
			ti.Metric = append(ti.Metric, &dto.Metric{Label: labelPairs(labels), Gauge: &dto.Gauge{Value: proto.Float64(1)}})
		}
		fams = append(fams, ti)
	}
	slices.SortFunc(fams, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return fams
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

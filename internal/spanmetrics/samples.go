package spanmetrics

import (
	"math"
	"strconv"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// The Prometheus series of one span-metrics series, by index:
//
//	0            the calls counter
//	1 … nb+1     the classic buckets, le = Bounds[i-1], the last one le="+Inf"
//	nb+2, nb+3   _sum, _count
//	nb+4         the native histogram (when enabled), on the base name
//
// where nb = len(Snapshot.Bounds). With the histogram disabled only index 0
// exists. Storage and remote write enumerate samples through ForEachSample
// so that they agree with each other and with the exposition.

// NumSamples is the number of Prometheus series of ss.
func (s *Snapshot) NumSamples(ss *SeriesSnapshot) int {
	if s.HistogramDisabled {
		return 1
	}
	n := len(s.Bounds) + 4
	if ss.Native != nil {
		n++
	}
	return n
}

// SampleLabels returns the labels (metric name included) of the idx-th
// Prometheus series of ss.
func (s *Snapshot) SampleLabels(b *labels.ScratchBuilder, ss *SeriesSnapshot, idx int) labels.Labels {
	n := s.Names
	nb := len(s.Bounds)
	b.Reset()
	var name string
	switch {
	case idx == 0:
		name = n.Calls
	case idx <= nb+1:
		name = n.Duration + "_bucket"
		le := "+Inf"
		if idx <= nb {
			le = FormatBound(s.Bounds[idx-1])
		}
		b.Add(labels.BucketLabel, le)
	case idx == nb+2:
		name = n.Duration + "_sum"
	case idx == nb+3:
		name = n.Duration + "_count"
	default:
		name = n.Duration
	}
	b.Add(model.MetricNameLabel, name)
	for _, l := range n.Labels(nil, ss) {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

// TargetLabels returns the labels of the target_info series of t.
func (s *Snapshot) TargetLabels(b *labels.ScratchBuilder, t *TargetSnapshot) labels.Labels {
	b.Reset()
	b.Add(model.MetricNameLabel, s.Names.TargetInfo)
	for _, l := range s.Names.TargetLabels(nil, t) {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

// SampleFunc receives one sample: the series and index it belongs to, its
// timestamp in milliseconds, and either a float value or, for the native
// histogram, h.
type SampleFunc func(ss *SeriesSnapshot, idx int, t int64, v float64, h *histogram.Histogram) error

// ForEachSample calls f for every sample of the snapshot at the snapshot
// time. A series seen for the first time gets zero samples first, at its
// creation time (at least one millisecond earlier), so that rate() and
// increase() over stored data count its first spans. It stops at the first
// error f returns.
func (s *Snapshot) ForEachSample(f SampleFunc) error {
	t := s.Time.UnixMilli()
	for i := range s.Series {
		ss := &s.Series[i]
		n := s.NumSamples(ss)
		if ss.New {
			t0 := min(ss.Created.UnixMilli(), t-1)
			for idx := range n {
				var h *histogram.Histogram
				if idx == len(s.Bounds)+4 {
					h = &histogram.Histogram{Schema: ss.Native.Schema, ZeroThreshold: ss.Native.ZeroThreshold}
				}
				if err := f(ss, idx, t0, 0, h); err != nil {
					return err
				}
			}
		}
		var cum uint64
		for idx := range n {
			v, h := s.sampleValue(ss, idx, &cum)
			if err := f(ss, idx, t, v, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// ForEachStale calls f with the index of every Prometheus series of the
// series that went away since the previous snapshot (see Gone), for a
// staleness marker.
func (s *Snapshot) ForEachStale(f func(key string, idx int) error) error {
	for _, g := range s.Gone {
		n := 1
		if !s.HistogramDisabled {
			n = len(s.Bounds) + 4
			if g.Native {
				n++
			}
		}
		for idx := range n {
			if err := f(g.Key, idx); err != nil {
				return err
			}
		}
	}
	return nil
}

// sampleValue returns the value of the idx-th series; cum carries the
// cumulative bucket count between consecutive calls.
func (s *Snapshot) sampleValue(ss *SeriesSnapshot, idx int, cum *uint64) (float64, *histogram.Histogram) {
	nb := len(s.Bounds)
	switch {
	case idx == 0:
		return float64(ss.Count), nil
	case idx <= nb+1:
		*cum += ss.Buckets[idx-1]
		return float64(*cum), nil
	case idx == nb+2:
		return ss.Sum, nil
	case idx == nb+3:
		return float64(ss.Count), nil
	}
	return 0, ss.Native.Histogram(ss.Count, ss.Sum)
}

// Histogram converts the snapshot to a Prometheus native histogram with the
// given total count and sum.
func (h *NativeHistogram) Histogram(count uint64, sum float64) *histogram.Histogram {
	offs, lens, deltas := h.Spans()
	out := &histogram.Histogram{
		Schema:          h.Schema,
		ZeroThreshold:   h.ZeroThreshold,
		ZeroCount:       h.ZeroCount,
		Count:           count,
		Sum:             sum,
		PositiveBuckets: deltas,
	}
	for i := range offs {
		out.PositiveSpans = append(out.PositiveSpans, histogram.Span{Offset: offs[i], Length: lens[i]})
	}
	return out
}

// FormatBound renders a bucket bound for an le label the way the Prometheus
// text exposition does, so stored and scraped series have equal labels.
func FormatBound(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

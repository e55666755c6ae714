package export

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/spanwatch/spanwatch/internal/spanmetrics"
)

// sendFunc sends one snappy-compressed prompb.WriteRequest holding samples
// samples. A non-nil error aborts the snapshot (shutdown or abandonment);
// failures the sender gave up on are its business and return nil.
type sendFunc func(data []byte, samples int) error

// rwEncoder turns snapshots into remote-write 1.0 requests of at most max
// samples each, handing each to send as soon as it is full. Every
// Prometheus series of a span-metrics series (with its zero-first sample)
// goes into the same request, so a request never splits a series' samples
// and samples of one series always arrive in timestamp order.
//
// Without native histograms (native false) it sends each snapshot as if
// native histograms were off: no native histogram samples and no native
// staleness markers.
//
// It is used by one goroutine at a time and keeps its buffers between
// snapshots.
type rwEncoder struct {
	ext    []prompb.Label // external labels, sorted by name
	max    int
	native bool // send native histograms

	// classic is the current snapshot without native histograms, when
	// native is false; its slices are reused.
	classic       spanmetrics.Snapshot
	classicSeries []spanmetrics.SeriesSnapshot
	classicGone   []spanmetrics.GoneSeries

	// targets are the target_info label sets sent with the previous
	// snapshot, by their String(), for staleness markers when they vanish.
	targets map[string]promlabels.Labels

	b         promlabels.ScratchBuilder
	base      []spanmetrics.Label // the current series' labels
	names     []rwSampleName      // by sample index, for the current snapshot
	req       prompb.WriteRequest
	nsamples  int // samples in req
	lbuf      []prompb.Label
	sbuf      []prompb.Sample
	raw, comp []byte

	// Progress through the current snapshot, so that an abandoned snapshot
	// can hand what it did not send on to the next one.
	finalized  int // samples in requests send returned nil for
	seriesDone int // series (in order) whose samples are in those requests
	goneDone   int // gone series (in order) whose markers are in them
	seriesIn   int // series whose samples are in req or earlier requests
	goneIn     int // gone series whose markers are in req or earlier
}

func newRWEncoder(ext map[string]string, maxSamples int, native bool) *rwEncoder {
	e := &rwEncoder{max: maxSamples, native: native, targets: map[string]promlabels.Labels{}}
	for n, v := range ext {
		e.ext = append(e.ext, prompb.Label{Name: n, Value: v})
	}
	slices.SortFunc(e.ext, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return e
}

var staleNaN = math.Float64frombits(value.StaleNaN)

// encode sends every sample of v: target_info series (and staleness
// markers for those that vanished), the series' samples with zero-first
// samples for new series, and staleness markers for v.Gone. It returns the
// first error send returns; the progress fields then say how far it got
// (series and gone series are counted in v's order, with or without native
// histograms).
func (e *rwEncoder) encode(v *spanmetrics.Snapshot, send sendFunc) error {
	if !e.native && hasNative(v) {
		v = e.withoutNative(v)
		defer e.releaseClassic()
	}
	e.reset()
	clear(e.names)
	e.finalized, e.seriesDone, e.goneDone, e.seriesIn, e.goneIn = 0, 0, 0, 0, 0
	t := v.Time.UnixMilli()
	e.req.Metadata = rwMetadata(v)

	cur := make(map[string]promlabels.Labels, len(v.Targets))
	for i := range v.Targets {
		ls := v.TargetLabels(&e.b, &v.Targets[i])
		if err := e.reserve(1, send); err != nil {
			return err
		}
		e.appendFloat(ls, t, 1)
		cur[ls.String()] = ls
	}
	for k, ls := range e.targets {
		if _, ok := cur[k]; ok {
			continue
		}
		if err := e.reserve(1, send); err != nil {
			return err
		}
		e.appendFloat(ls, t, staleNaN)
	}
	e.targets = cur

	var (
		last *spanmetrics.SeriesSnapshot
		base int
	)
	err := v.ForEachSample(func(ss *spanmetrics.SeriesSnapshot, idx int, ts int64, val float64, h *histogram.Histogram) error {
		if ss != last {
			last = ss
			n := v.NumSamples(ss)
			per := 1
			if ss.New {
				per = 2
			}
			if err := e.reserve(n*per, send); err != nil {
				return err
			}
			e.seriesIn++
			base = len(e.req.Timeseries)
			e.base = v.Names.Labels(e.base[:0], ss)
			for i := range n {
				pts := prompb.TimeSeries{Labels: e.sampleLabels(v, ss, i)}
				if !isNativeIdx(v, ss.Native != nil, i) {
					pts.Samples = e.samples(per)
				}
				e.req.Timeseries = append(e.req.Timeseries, pts)
			}
		}
		pts := &e.req.Timeseries[base+idx]
		if h != nil {
			pts.Histograms = append(pts.Histograms, prompb.FromIntHistogram(ts, h))
		} else {
			pts.Samples = append(pts.Samples, prompb.Sample{Value: val, Timestamp: ts})
		}
		return nil
	})
	if err != nil {
		return err
	}

	for _, g := range v.Gone {
		ss := goneSeries(g)
		n := v.NumSamples(ss)
		if err := e.reserve(n, send); err != nil {
			return err
		}
		e.goneIn++
		for i := range n {
			ls := v.SampleLabels(&e.b, ss, i)
			if isNativeIdx(v, g.Native, i) {
				e.appendStaleHistogram(ls, t)
				continue
			}
			e.appendFloat(ls, t, staleNaN)
		}
	}
	return e.flush(send)
}

// goneSeries is a stand-in SeriesSnapshot of a gone series: enough for
// NumSamples and SampleLabels, which render labels from the key.
func goneSeries(g spanmetrics.GoneSeries) *spanmetrics.SeriesSnapshot {
	ss := &spanmetrics.SeriesSnapshot{Key: g.Key}
	if g.Native {
		ss.Native = &spanmetrics.NativeHistogram{}
	}
	return ss
}

// hasNative reports whether v holds native histogram samples or staleness
// markers.
func hasNative(v *spanmetrics.Snapshot) bool {
	if v.HistogramDisabled {
		return false
	}
	for i := range v.Series {
		if v.Series[i].Native != nil {
			return true
		}
	}
	for _, g := range v.Gone {
		if g.Native {
			return true
		}
	}
	return false
}

// withoutNative returns v as it would be without native histograms, in e's
// reused buffers, valid until releaseClassic: the same series, in the same
// order, without their native histogram. v is not modified (sinks share
// it). Copying the series is cheaper than skipping the native samples in
// the loop: ForEachSample does not build a histogram it need not send.
func (e *rwEncoder) withoutNative(v *spanmetrics.Snapshot) *spanmetrics.Snapshot {
	e.classic = *v
	e.classicSeries = append(e.classicSeries[:0], v.Series...)
	for i := range e.classicSeries {
		e.classicSeries[i].Native = nil
	}
	e.classicGone = append(e.classicGone[:0], v.Gone...)
	for i := range e.classicGone {
		e.classicGone[i].Native = false
	}
	e.classic.Series, e.classic.Gone = e.classicSeries, e.classicGone
	return &e.classic
}

// releaseClassic drops withoutNative's references to the snapshot, keeping
// the buffers.
func (e *rwEncoder) releaseClassic() {
	clear(e.classicSeries)
	clear(e.classicGone)
	e.classic = spanmetrics.Snapshot{}
}

// isNativeIdx reports whether the idx-th Prometheus series of a series is
// its native histogram (see spanmetrics.Snapshot.NumSamples for the
// layout).
func isNativeIdx(v *spanmetrics.Snapshot, native bool, idx int) bool {
	return native && !v.HistogramDisabled && idx == len(v.Bounds)+4
}

// countSamples is the number of samples encode sends for v, with or
// without native histograms, not counting staleness markers of vanished
// target_info series.
func countSamples(v *spanmetrics.Snapshot, native bool) int {
	n := len(v.Targets)
	for i := range v.Series {
		k := numSamples(v, &v.Series[i], native)
		if v.Series[i].New {
			k *= 2
		}
		n += k
	}
	for _, g := range v.Gone {
		n += numSamples(v, goneSeries(g), native)
	}
	return n
}

// numSamples is v.NumSamples(ss) without the native histogram when native
// histograms are not sent.
func numSamples(v *spanmetrics.Snapshot, ss *spanmetrics.SeriesSnapshot, native bool) int {
	n := v.NumSamples(ss)
	if !native && isNativeIdx(v, ss.Native != nil, n-1) {
		n--
	}
	return n
}

// reserve makes room for n samples in the current request, sending it
// first if they would not fit.
func (e *rwEncoder) reserve(n int, send sendFunc) error {
	if e.nsamples > 0 && e.nsamples+n > e.max {
		if err := e.flush(send); err != nil {
			return err
		}
	}
	e.nsamples += n
	return nil
}

// flush sends the current request, if it holds anything.
func (e *rwEncoder) flush(send sendFunc) error {
	if e.nsamples == 0 {
		return nil
	}
	data, err := e.compress()
	if err != nil {
		return err
	}
	if err := send(data, e.nsamples); err != nil {
		return err
	}
	e.finalized += e.nsamples
	e.seriesDone, e.goneDone = e.seriesIn, e.goneIn
	e.reset()
	return nil
}

func (e *rwEncoder) reset() {
	clear(e.req.Timeseries) // drop references to the previous labels and histograms
	e.req.Timeseries = e.req.Timeseries[:0]
	e.req.Metadata = nil
	e.nsamples = 0
	e.lbuf = e.lbuf[:0]
	e.sbuf = e.sbuf[:0]
}

// compress marshals the request and snappy-compresses it (block format, as
// the remote-write protocol requires) into reused buffers.
func (e *rwEncoder) compress() ([]byte, error) {
	size := e.req.Size()
	if cap(e.raw) < size {
		e.raw = make([]byte, size)
	}
	e.raw = e.raw[:size]
	n, err := e.req.MarshalToSizedBuffer(e.raw)
	if err != nil {
		return nil, fmt.Errorf("marshalling write request: %w", err)
	}
	if n != size {
		return nil, errors.New("marshalling write request: size mismatch")
	}
	e.comp = snappy.Encode(e.comp[:cap(e.comp)], e.raw)
	return e.comp, nil
}

func (e *rwEncoder) appendFloat(ls promlabels.Labels, t int64, v float64) {
	s := e.samples(1)
	s = append(s, prompb.Sample{Value: v, Timestamp: t})
	e.req.Timeseries = append(e.req.Timeseries, prompb.TimeSeries{Labels: e.labels(ls), Samples: s})
}

// appendStaleHistogram marks a native-histogram series stale the way
// Prometheus's own remote write does: a histogram whose sum is the
// staleness NaN.
func (e *rwEncoder) appendStaleHistogram(ls promlabels.Labels, t int64) {
	h := prompb.FromIntHistogram(t, &histogram.Histogram{Sum: staleNaN})
	e.req.Timeseries = append(e.req.Timeseries, prompb.TimeSeries{Labels: e.labels(ls), Histograms: []prompb.Histogram{h}})
}

// rwSampleName is what sets the idx-th Prometheus series of a span-metrics
// series apart from the others: the metric name and, for buckets, le.
type rwSampleName struct {
	name, le string
	ok       bool
}

// sampleLabels returns the labels of the idx-th Prometheus series of ss,
// whose labels without metric name are in e.base. It equals
// v.SampleLabels with the external labels merged in (a test checks), but
// renders the series' labels once per series instead of once per sample:
// the name and le of each index are taken from SampleLabels once per
// snapshot.
func (e *rwEncoder) sampleLabels(v *spanmetrics.Snapshot, ss *spanmetrics.SeriesSnapshot, idx int) []prompb.Label {
	if idx >= len(e.names) {
		e.names = append(e.names, make([]rwSampleName, idx+1-len(e.names))...)
	}
	sn := &e.names[idx]
	if !sn.ok {
		ls := v.SampleLabels(&e.b, ss, idx)
		*sn = rwSampleName{name: ls.Get(model.MetricNameLabel), le: ls.Get(model.BucketLabel), ok: true}
	}
	// "__name__" < "le": extra is sorted.
	extra := [2]prompb.Label{{Name: model.MetricNameLabel, Value: sn.name}, {Name: model.BucketLabel, Value: sn.le}}
	k := 1
	if sn.le != "" {
		k = 2
	}
	start := e.grow(len(e.base) + k + len(e.ext))
	ext := e.ext
	i, j := 0, 0
	for i < len(e.base) || j < k {
		var l prompb.Label
		if j == k || (i < len(e.base) && e.base[i].Name < extra[j].Name) {
			l = prompb.Label{Name: e.base[i].Name, Value: e.base[i].Value}
			i++
		} else {
			l = extra[j]
			j++
		}
		ext = e.appendLabel(ext, l)
	}
	e.lbuf = append(e.lbuf, ext...)
	return e.lbuf[start:len(e.lbuf):len(e.lbuf)]
}

// appendLabel appends l to the label arena after the external labels that
// sort before it, drops an external label of the same name (the series'
// own label wins) and returns the external labels left.
func (e *rwEncoder) appendLabel(ext []prompb.Label, l prompb.Label) []prompb.Label {
	for len(ext) > 0 && ext[0].Name < l.Name {
		e.lbuf = append(e.lbuf, ext[0])
		ext = ext[1:]
	}
	if len(ext) > 0 && ext[0].Name == l.Name {
		ext = ext[1:]
	}
	e.lbuf = append(e.lbuf, l)
	return ext
}

// grow makes room for n more labels in the arena and returns where they
// start. Slices handed out earlier keep the old array; nothing is copied.
func (e *rwEncoder) grow(n int) int {
	if len(e.lbuf)+n > cap(e.lbuf) {
		e.lbuf = make([]prompb.Label, 0, max(2*cap(e.lbuf), 4096, n))
	}
	return len(e.lbuf)
}

// labels converts ls to prompb labels with the external labels merged in
// (a series' own label wins), sorted by name, in the request's label arena.
func (e *rwEncoder) labels(ls promlabels.Labels) []prompb.Label {
	start := e.grow(ls.Len() + len(e.ext))
	ext := e.ext
	ls.Range(func(l promlabels.Label) {
		ext = e.appendLabel(ext, prompb.Label{Name: l.Name, Value: l.Value})
	})
	e.lbuf = append(e.lbuf, ext...)
	return e.lbuf[start:len(e.lbuf):len(e.lbuf)]
}

// samples returns an empty slice with room for n samples from the
// request's sample arena.
func (e *rwEncoder) samples(n int) []prompb.Sample {
	if len(e.sbuf)+n > cap(e.sbuf) {
		e.sbuf = make([]prompb.Sample, 0, max(2*cap(e.sbuf), 4096, n))
	}
	off := len(e.sbuf)
	e.sbuf = e.sbuf[:off+n]
	return e.sbuf[off : off : off+n]
}

// rwMetadata describes the metric families of v, sent with the first
// request of each snapshot (receivers such as Mimir keep it for the
// metadata API; Prometheus ignores it).
func rwMetadata(v *spanmetrics.Snapshot) []prompb.MetricMetadata {
	n := v.Names
	md := []prompb.MetricMetadata{{
		Type:             prompb.MetricMetadata_COUNTER,
		MetricFamilyName: n.Calls,
		Help:             "Number of spans, per service, span name, kind, status and dimensions.",
	}}
	if !v.HistogramDisabled {
		md = append(md, prompb.MetricMetadata{
			Type:             prompb.MetricMetadata_HISTOGRAM,
			MetricFamilyName: n.Duration,
			Help:             "Span duration in " + unitWord(n.Unit) + ".",
			Unit:             unitWord(n.Unit),
		})
	}
	if len(v.Targets) > 0 {
		md = append(md, prompb.MetricMetadata{
			Type:             prompb.MetricMetadata_GAUGE,
			MetricFamilyName: n.TargetInfo,
			Help:             "Target metadata: the resource attributes of each service instance.",
		})
	}
	return md
}

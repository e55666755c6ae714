package spanmetrics

import (
	"time"
)

// Snapshot is a consistent copy of every series at one moment. The same
// snapshot is handed to every sink; sinks must not modify it.
type Snapshot struct {
	// Time is when the snapshot was taken.
	Time time.Time
	// Names renders metric and label names.
	Names *Names
	// Bounds are the classic bucket upper bounds in the histogram unit,
	// without +Inf.
	Bounds []float64
	// HistogramDisabled means only the calls counter is exposed.
	HistogramDisabled bool
	// Series are the live series, in no particular order.
	Series []SeriesSnapshot
	// Targets are the target_info series (resources with attributes other
	// than the job/instance ones).
	Targets []TargetSnapshot
	// Gone are the series removed by expiry in this snapshot; sinks that
	// store samples mark them stale.
	Gone []GoneSeries
}

// GoneSeries identifies a series removed since the previous snapshot.
type GoneSeries struct {
	Key    string
	Native bool
}

// SeriesSnapshot is one series' cumulative state.
type SeriesSnapshot struct {
	// Key is the series identity; Names.Labels renders it.
	Key string
	// Overflow marks the otel_metric_overflow series.
	Overflow bool
	// New is true in the first snapshot that holds this series. Sinks
	// expose a new series at zero first, so that rate() and increase() see
	// its first increment.
	New bool
	// Created is when the series was created.
	Created time.Time
	// Count is the number of spans (the calls counter).
	Count uint64
	// Buckets are per-bucket (not cumulative) counts, one per bound plus
	// the +Inf bucket.
	Buckets []uint64
	// Sum is the sum of durations in the histogram unit.
	Sum float64
	// Native is set when native histograms are enabled.
	Native *NativeHistogram
}

// TargetSnapshot is one target_info series.
type TargetSnapshot struct {
	// Attributes are the labels, job and instance included.
	Attributes []Label
}

// Snapshot copies every live series and removes those idle for longer than
// the series expiration. Ingestion goes on meanwhile: each series is locked
// only while it is copied.
func (a *Aggregator) Snapshot(now time.Time) *Snapshot {
	start := time.Now()
	defer func() { a.m.snapshotDur.Observe(time.Since(start).Seconds()) }()
	nb := len(a.bounds) + 1
	n := int(a.nseries.Load()) + 1
	snap := &Snapshot{
		Time:              now,
		Names:             a.names,
		Bounds:            a.fbounds,
		HistogramDisabled: a.cfg.Histogram.Disable,
		Series:            make([]SeriesSnapshot, 0, n+n/8),
	}
	slab := make([]uint64, 0, (n+n/8)*nb)
	// Native histograms and their counts come from slabs too, sized from
	// the previous snapshot: one allocation per snapshot instead of two
	// per series.
	var natives []NativeHistogram
	var nslab []uint64
	if a.native != nil {
		natives = make([]NativeHistogram, 0, n+n/8)
		nslab = make([]uint64, 0, a.nativeBuckets.Load()*9/8+64)
	}
	var nbuckets int64
	var cutoff int64
	if a.expiry > 0 {
		cutoff = now.UnixNano() - a.expiry
	}
	var expired []*series
	copySeries := func(s *series, overflow bool) {
		s.mu.Lock()
		// A series expires only once every span it counted has been in a
		// snapshot: an acknowledged span is never lost to an expiration
		// shorter than the flush interval.
		if cutoff != 0 && s.lastSeen < cutoff && !overflow && !s.dirty {
			s.mu.Unlock()
			expired = append(expired, s)
			return
		}
		if len(slab)+nb > cap(slab) {
			slab = make([]uint64, 0, 64*nb)
		}
		off := len(slab)
		slab = append(slab, s.counts...)
		ss := SeriesSnapshot{
			Key:      s.key,
			Overflow: overflow,
			New:      !s.reported,
			Created:  time.Unix(0, s.created),
			Buckets:  slab[off:len(slab):len(slab)],
			Sum:      float64(s.sumNs) / a.unitNs,
		}
		if h := s.native; h != nil {
			if len(natives) == cap(natives) {
				natives = make([]NativeHistogram, 0, 64)
			}
			m := len(h.counts)
			if len(nslab)+m > cap(nslab) {
				nslab = make([]uint64, 0, max(64*m, 1024))
			}
			off := len(nslab)
			nslab = h.appendCounts(nslab)
			nbuckets += int64(m)
			natives = append(natives, NativeHistogram{
				Schema:        h.schema,
				ZeroThreshold: NativeZeroThreshold,
				ZeroCount:     h.zero,
				Offset:        h.offset,
				Counts:        nslab[off:len(nslab):len(nslab)],
			})
			ss.Native = &natives[len(natives)-1]
		}
		s.reported, s.dirty = true, false
		s.mu.Unlock()
		for _, c := range ss.Buckets {
			ss.Count += c
		}
		snap.Series = append(snap.Series, ss)
	}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.RLock()
		for _, head := range sh.m {
			for s := head; s != nil; s = s.next {
				copySeries(s, false)
			}
		}
		sh.mu.RUnlock()
		if len(expired) > 0 {
			snap.Gone = a.expire(sh, expired, cutoff, snap.Gone)
			expired = expired[:0]
		}
	}
	if o := a.overflow.Load(); o != nil {
		copySeries(o, true)
	}
	if a.native != nil {
		a.nativeBuckets.Store(nbuckets)
	}
	a.tmu.Lock()
	for _, t := range a.targets {
		if t.attrs != nil {
			snap.Targets = append(snap.Targets, TargetSnapshot{Attributes: t.attrs})
		}
	}
	a.tmu.Unlock()
	return snap
}

// expire removes the given series from sh unless a span arrived after the
// snapshot looked at them.
func (a *Aggregator) expire(sh *shard, cands []*series, cutoff int64, gone []GoneSeries) []GoneSeries {
	sh.mu.Lock()
	var targets []string
	for _, s := range cands {
		s.mu.Lock()
		if s.lastSeen >= cutoff || s.dead || s.dirty {
			s.mu.Unlock()
			continue
		}
		s.dead = true
		s.mu.Unlock()
		h := xxhashString(s.key)
		var prev *series
	chain:
		for c := sh.m[h]; c != nil; prev, c = c, c.next {
			if c != s {
				continue
			}
			switch {
			case prev != nil:
				prev.next = c.next
			case c.next != nil:
				sh.m[h] = c.next
			default:
				delete(sh.m, h)
			}
			break chain
		}
		a.nseries.Add(-1)
		targets = append(targets, s.key[:targetPrefixLen(s.key)])
		// A series never reported was never stored: nothing to mark stale.
		if s.reported {
			gone = append(gone, GoneSeries{Key: s.key, Native: s.native != nil})
		}
	}
	sh.mu.Unlock()
	for _, t := range targets {
		a.m.expired.Inc()
		a.dropTargetRef(t)
	}
	return gone
}

package bench

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// FilledSpans is the number of spans per series of the filled memory
// fixture: enough for a native histogram to hold the buckets of a busy
// series.
const FilledSpans = 200

// Custom benchmark units, reported with b.ReportMetric.
const (
	UnitNsPerSpan       = "ns/span"
	UnitAllocsPerSpan   = "allocs/span"
	UnitBytesPerSpan    = "B/span"
	UnitNsPerSeries     = "ns/series"
	UnitAllocsPerSeries = "allocs/series"
	UnitBytesPerSeries  = "B/series"
	UnitHeapPerSeries   = "heapB/series"
)

// Ingest returns a benchmark of decode + aggregate in steady state: every
// series of w already exists (one pass over all requests before timing), and
// the requests are replayed round-robin. With procs == 1 it runs on one
// goroutine under GOMAXPROCS=1 (the per-core cost); otherwise it sets
// GOMAXPROCS=procs and feeds from procs goroutines (b.RunParallel), so
// ns/span is wall-clock time per span over all cores.
//
// It reports ns/span, allocs/span and B/span (bytes allocated per span);
// MB/s is wire throughput.
func Ingest(impl Impl, w *Workload, procs int) func(b *testing.B) {
	return func(b *testing.B) {
		prev := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(prev)
		inst, err := impl.New()
		if err != nil {
			b.Fatal(err)
		}
		defer closeInstance(b, inst)
		for _, r := range w.Requests {
			if _, err := inst.Consume(r); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(w.WireBytes / len(w.Requests)))
		b.ReportAllocs()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var failed atomic.Pointer[error]
		consume := func(i uint64) {
			n, err := inst.Consume(w.Requests[i%uint64(len(w.Requests))])
			if err == nil && n != w.SpansPerRequest {
				err = fmt.Errorf("%s accepted %d of %d spans", impl.Name, n, w.SpansPerRequest)
			}
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		}
		if procs == 1 {
			var i uint64
			for b.Loop() {
				consume(i)
				i++
			}
		} else {
			var next atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					consume(next.Add(1))
				}
			})
			b.StopTimer()
		}
		runtime.ReadMemStats(&after)
		if err := failed.Load(); err != nil {
			b.Fatal(*err)
		}
		spans := float64(b.N) * float64(w.SpansPerRequest)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, UnitNsPerSpan)
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/spans, UnitAllocsPerSpan)
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/spans, UnitBytesPerSpan)
	}
}

// Snapshot returns a benchmark of one export of n series: spanwatch's
// Snapshot, the connector's flush (see connectorInstance). The series are
// created and exported once before timing, so the timed exports are the
// steady state of a long-running process. It reports ns/series,
// allocs/series and B/series (bytes allocated per series per export).
func Snapshot(impl Impl, n int) func(b *testing.B) {
	return func(b *testing.B) {
		inst, err := impl.New()
		if err != nil {
			b.Fatal(err)
		}
		defer closeInstance(b, inst)
		if err := feedSeries(inst, NewSeriesFixture(n)); err != nil {
			b.Fatal(err)
		}
		if got, err := inst.Export(); err != nil || got != n {
			b.Fatalf("%s exported %d series, want %d (err %v)", impl.Name, got, n, err)
		}
		b.ReportAllocs()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for b.Loop() {
			if got, err := inst.Export(); err != nil || got != n {
				b.Fatalf("%s exported %d series, want %d (err %v)", impl.Name, got, n, err)
			}
		}
		runtime.ReadMemStats(&after)
		total := float64(b.N) * float64(n)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, UnitNsPerSeries)
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, UnitAllocsPerSeries)
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, UnitBytesPerSeries)
	}
}

// SeriesMemory returns a benchmark that runs MeasureFixtureMemory on n
// series with spansPerSeries spans each once per iteration and reports heap
// bytes per series (heapB/series) and the feeding time (from Consume alone)
// per series (ns/series) with one span per series, per span (ns/span)
// otherwise. Its ns/op, B/op and allocs/op include building the requests
// and two forced GCs per iteration: ignore them.
func SeriesMemory(impl Impl, n, spansPerSeries int) func(b *testing.B) {
	return func(b *testing.B) {
		f := NewFilledSeriesFixture(n, spansPerSeries)
		var heap, feed float64
		for b.Loop() {
			r, err := MeasureFixtureMemory(impl, f)
			if err != nil {
				b.Fatal(err)
			}
			heap += r.BytesPerSeries
			feed += float64(r.Feed.Nanoseconds())
		}
		b.ReportMetric(heap/float64(b.N), UnitHeapPerSeries)
		if f.SpansPerSeries == 1 {
			b.ReportMetric(feed/float64(b.N)/float64(n), UnitNsPerSeries)
		} else {
			b.ReportMetric(feed/float64(b.N)/float64(f.Spans()), UnitNsPerSpan)
		}
	}
}

// MemoryResult is the outcome of MeasureSeriesMemory.
type MemoryResult struct {
	// Series is the number of active series the instance reported.
	Series int
	// HeapBytes is the growth of HeapAlloc.
	HeapBytes int64
	// BytesPerSeries is HeapBytes / n.
	BytesPerSeries float64
	// Feed is the time spent in Consume (series creation included).
	Feed time.Duration
}

// MeasureSeriesMemory measures the live heap an instance needs for n active
// series with one span each (NewSeriesFixture); see MeasureFixtureMemory.
func MeasureSeriesMemory(impl Impl, n int) (MemoryResult, error) {
	return MeasureFixtureMemory(impl, NewSeriesFixture(n))
}

// MeasureFixtureMemory measures the live heap an instance needs for the
// f.N active series of f. It forces two GCs (the second empties sync.Pool
// victim caches) and reads HeapAlloc before the instance is created, feeds
// the requests of f, forces two GCs again and reads HeapAlloc while the
// instance is still reachable. The growth, divided by n, includes the
// instance's fixed overhead (noticeable at 1k series, not at 100k) and
// anything the instance retains from the decoded requests; it excludes the
// serialized requests themselves, which are built one at a time and dropped
// before the second reading. Afterwards one export checks that the instance
// holds exactly f.N series.
func MeasureFixtureMemory(impl Impl, f *SeriesFixture) (MemoryResult, error) {
	n := f.N
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)

	inst, err := impl.New()
	if err != nil {
		return MemoryResult{}, err
	}
	var feed time.Duration
	for i := range f.Requests() {
		body, err := f.Request(i)
		if err != nil {
			return MemoryResult{}, err
		}
		start := time.Now()
		_, err = inst.Consume(body)
		feed += time.Since(start)
		if err != nil {
			return MemoryResult{}, err
		}
	}

	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(inst)

	series, err := inst.Export()
	if cerr := inst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return MemoryResult{}, err
	}
	if series != n {
		return MemoryResult{}, fmt.Errorf("%s holds %d series, want %d", impl.Name, series, n)
	}
	grow := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	return MemoryResult{
		Series:         series,
		HeapBytes:      grow,
		BytesPerSeries: float64(grow) / float64(n),
		Feed:           feed,
	}, nil
}

func feedSeries(inst Instance, f *SeriesFixture) error {
	for i := range f.Requests() {
		body, err := f.Request(i)
		if err != nil {
			return err
		}
		if _, err := inst.Consume(body); err != nil {
			return err
		}
	}
	return nil
}

func closeInstance(b *testing.B, inst Instance) {
	if err := inst.Close(); err != nil {
		b.Error(err)
	}
}

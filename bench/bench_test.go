package bench

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	workloadOnce sync.Once
	workload     *Workload
	workloadErr  error
)

// sharedWorkload builds the default workload once per test binary.
func sharedWorkload(tb testing.TB) *Workload {
	tb.Helper()
	workloadOnce.Do(func() { workload, workloadErr = NewWorkload(DefaultWorkloadConfig()) })
	if workloadErr != nil {
		tb.Fatal(workloadErr)
	}
	return workload
}

// procsList is 1 (per core) and the machine's CPU count.
func procsList() []int {
	if n := runtime.NumCPU(); n > 1 {
		return []int{1, n}
	}
	return []int{1}
}

// BenchmarkIngest: decode + aggregate of 1000-span requests, series already
// present. Compare ns/span and allocs/span between impl= values.
func BenchmarkIngest(b *testing.B) {
	w := sharedWorkload(b)
	for _, impl := range Impls {
		for _, procs := range procsList() {
			b.Run(fmt.Sprintf("impl=%s/procs=%d", impl.Name, procs), Ingest(impl, w, procs))
		}
	}
}

// BenchmarkSeriesMemory: heap bytes per active series (heapB/series), with
// one span per series and, at 10k series, FilledSpans spans per series.
// ns/op, B/op and allocs/op include request building and forced GCs.
func BenchmarkSeriesMemory(b *testing.B) {
	for _, c := range []struct{ n, spans int }{{1_000, 1}, {10_000, 1}, {100_000, 1}, {10_000, FilledSpans}} {
		for _, impl := range Impls {
			b.Run(fmt.Sprintf("impl=%s/series=%d/spans=%d", impl.Name, c.n, c.spans), SeriesMemory(impl, c.n, c.spans))
		}
	}
}

// BenchmarkSnapshot: one export (spanwatch Snapshot, connector flush) of
// 10k and 100k series; ns/series and allocs/series.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, impl := range Impls {
			b.Run(fmt.Sprintf("impl=%s/series=%d", impl.Name, n), Snapshot(impl, n))
		}
	}
}

// TestSameSeries checks that both implementations see the same spans and
// create the same number of series from the workload, so the comparison is
// like for like.
func TestSameSeries(t *testing.T) {
	w := sharedWorkload(t)
	counts := map[string]int{}
	for _, impl := range Impls {
		inst, err := impl.New()
		if err != nil {
			t.Fatal(err)
		}
		spans := 0
		for _, r := range w.Requests {
			n, err := inst.Consume(r)
			if err != nil {
				t.Fatal(err)
			}
			spans += n
		}
		if spans != w.Spans() {
			t.Errorf("%s accepted %d spans, want %d", impl.Name, spans, w.Spans())
		}
		series, err := inst.Export()
		if err != nil {
			t.Fatal(err)
		}
		counts[impl.Name] = series
		if err := inst.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("workload: %d requests, %.0f wire bytes/span, series %v", len(w.Requests), w.BytesPerSpan(), counts)
	for _, impl := range Impls {
		if counts[impl.Name] != counts[Connector.Name] {
			t.Errorf("series differ: %v", counts)
		}
	}
	if bps := w.BytesPerSpan(); bps < 300 || bps > 500 {
		t.Errorf("%.0f wire bytes per span, want about 400", bps)
	}
}

// TestSeriesFixture checks that the memory fixture creates exactly N series
// on every side, with one span per series and with several.
func TestSeriesFixture(t *testing.T) {
	for _, impl := range Impls {
		for _, c := range []struct{ n, spans int }{{1, 1}, {999, 1}, {2_500, 1}, {999, 3}} {
			t.Run(fmt.Sprintf("impl=%s/series=%d/spans=%d", impl.Name, c.n, c.spans), func(t *testing.T) {
				f := NewFilledSeriesFixture(c.n, c.spans)
				if f.Spans() != c.n*c.spans {
					t.Fatalf("%d spans, want %d", f.Spans(), c.n*c.spans)
				}
				r, err := MeasureFixtureMemory(impl, f)
				if err != nil {
					t.Fatal(err)
				}
				if r.Series != c.n {
					t.Errorf("got %d series, want %d", r.Series, c.n)
				}
			})
		}
	}
}

// Command compare runs the spanwatch-vs-connector benchmarks of package bench
// once, side by side, and prints one table with the ratios and PASS/MISS per
// target. It only reports: it exits non-zero when a benchmark cannot run,
// never because a target is missed.
//
//	cd bench && go run ./cmd/compare [-benchtime 1s] [-count 3]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/spanwatch/spanwatch/bench"
)

// Targets.
const (
	targetSpeedup       = 5.0   // spanwatch spans/s ÷ connector spans/s, at least
	targetBytesSeries   = 600.0 // spanwatch heap bytes per series (classic + native), at most
	targetBytesClassic  = 400.0 // the same with classic buckets only, at most
	targetSnapshotRatio = 0.1   // spanwatch ÷ connector export ns/series, at most
)

var (
	snapshotSeries = []int{10_000, 100_000}
	// memoryRuns are the memory fixtures: one span per series at three
	// sizes, then bench.FilledSpans spans per series.
	memoryRuns = []struct{ series, spans int }{{1_000, 1}, {10_000, 1}, {100_000, 1}, {10_000, bench.FilledSpans}}
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, args []string) error {
	testing.Init()
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	benchtime := fs.Duration("benchtime", time.Second, "run time of each throughput and snapshot benchmark")
	count := fs.Int("count", 3, "run each measurement this many times and report the median")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *count < 1 {
		return fmt.Errorf("-count must be at least 1")
	}
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		return err
	}
	start := time.Now()
	cpu0 := sampleCPU()

	w, err := bench.NewWorkload(bench.DefaultWorkloadConfig())
	if err != nil {
		return err
	}
	wcfg := bench.DefaultWorkloadConfig()
	series, err := workloadSeries(w)
	if err != nil {
		return err
	}

	sw, classic, conn := bench.Spanwatch, bench.SpanwatchClassic, bench.Connector
	t := &table{}

	// Ingest.
	procs := []int{1}
	if n := runtime.NumCPU(); n > 1 {
		procs = append(procs, n)
	}
	t.section("Ingest: decode + aggregate, 1000-span requests, series already exist")
	for _, p := range procs {
		progress("ingest procs=%d", p)
		var res [3]map[string]float64
		for i, impl := range []bench.Impl{sw, classic, conn} {
			r, err := benchmark(*count, bench.Ingest(impl, w, p))
			if err != nil {
				return fmt.Errorf("ingest %s procs=%d: %w", impl.Name, p, err)
			}
			res[i] = r
		}
		a, c, b := res[0], res[1], res[2]
		label := fmt.Sprintf("procs=%d (parallel)", p)
		if p == 1 {
			label = "procs=1 (per core)"
		}
		nsA, nsC, nsB := a[bench.UnitNsPerSpan], c[bench.UnitNsPerSpan], b[bench.UnitNsPerSpan]
		t.row(label+"  ns/span", f1(nsA), f1(nsC), f1(nsB), ratio(nsA, nsB), "", "")
		spsA, spsC, spsB := 1e9/nsA, 1e9/nsC, 1e9/nsB
		t.row(label+"  spans/s", si(spsA), si(spsC), si(spsB), ratio(spsA, spsB), fmt.Sprintf("≥ %.0f×", targetSpeedup), passMiss(spsA/spsB >= targetSpeedup))
		t.row(label+"  allocs/span", f2(a[bench.UnitAllocsPerSpan]), f2(c[bench.UnitAllocsPerSpan]), f2(b[bench.UnitAllocsPerSpan]), ratio(a[bench.UnitAllocsPerSpan], b[bench.UnitAllocsPerSpan]), "", "")
		t.row(label+"  B/span allocated", f1(a[bench.UnitBytesPerSpan]), f1(c[bench.UnitBytesPerSpan]), f1(b[bench.UnitBytesPerSpan]), ratio(a[bench.UnitBytesPerSpan], b[bench.UnitBytesPerSpan]), "", "")
	}

	// Memory.
	t.section("Memory: live heap bytes per active series (fresh instance, GC'd HeapAlloc growth ÷ N)")
	memTarget := fmt.Sprintf("≤ %.0f / %.0f B", targetBytesSeries, targetBytesClassic)
	var createA, createC, createB float64
	for _, c := range memoryRuns {
		f := bench.NewFilledSeriesFixture(c.series, c.spans)
		progress("memory series=%d spans=%d", c.series, c.spans)
		var res [3]bench.MemoryResult
		for i, impl := range []bench.Impl{sw, classic, conn} {
			r, err := memory(*count, impl, f)
			if err != nil {
				return err
			}
			res[i] = r
		}
		a, cl, b := res[0], res[1], res[2]
		name := fmt.Sprintf("%-12s B/series", "series="+short(c.series))
		if c.spans > 1 {
			name = fmt.Sprintf("%-12s B/series, %d spans each", "series="+short(c.series), c.spans)
		}
		t.row(name, f1(a.BytesPerSeries), f1(cl.BytesPerSeries), f1(b.BytesPerSeries), ratio(a.BytesPerSeries, b.BytesPerSeries),
			memTarget, passMiss(a.BytesPerSeries <= targetBytesSeries && cl.BytesPerSeries <= targetBytesClassic))
		if c.spans == 1 {
			createA = float64(a.Feed.Nanoseconds()) / float64(c.series)
			createC = float64(cl.Feed.Nanoseconds()) / float64(c.series)
			createB = float64(b.Feed.Nanoseconds()) / float64(c.series)
		}
	}
	t.row(fmt.Sprintf("%-12s ns/series to create", "series="+short(memoryRuns[2].series)), f1(createA), f1(createC), f1(createB), ratio(createA, createB), "", "")

	// Snapshot.
	for _, n := range snapshotSeries {
		t.section(fmt.Sprintf("Export: spanwatch Snapshot vs connector flush (build + hand-off), %s series", short(n)))
		progress("snapshot series=%d", n)
		var res [3]map[string]float64
		for i, impl := range []bench.Impl{sw, classic, conn} {
			r, err := benchmark(*count, bench.Snapshot(impl, n))
			if err != nil {
				return fmt.Errorf("snapshot %s series=%d: %w", impl.Name, n, err)
			}
			res[i] = r
		}
		a, c, b := res[0], res[1], res[2]
		nsA, nsC, nsB := a[bench.UnitNsPerSeries], c[bench.UnitNsPerSeries], b[bench.UnitNsPerSeries]
		t.row("ns/series", f1(nsA), f1(nsC), f1(nsB), ratio(nsA, nsB), fmt.Sprintf("≤ %.2f×", targetSnapshotRatio), passMiss(nsA/nsB <= targetSnapshotRatio))
		t.row("allocs/series", f2(a[bench.UnitAllocsPerSeries]), f2(c[bench.UnitAllocsPerSeries]), f2(b[bench.UnitAllocsPerSeries]), ratio(a[bench.UnitAllocsPerSeries], b[bench.UnitAllocsPerSeries]), "", "")
		t.row("B/series allocated", f1(a[bench.UnitBytesPerSeries]), f1(c[bench.UnitBytesPerSeries]), f1(b[bench.UnitBytesPerSeries]), ratio(a[bench.UnitBytesPerSeries], b[bench.UnitBytesPerSeries]), "", "")
		t.row("ms per export", f2(nsA*float64(n)/1e6), f2(nsC*float64(n)/1e6), f2(nsB*float64(n)/1e6), ratio(nsA, nsB), "", "")
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "spanwatch vs OpenTelemetry Collector contrib spanmetrics connector %s (pdata %s)\n",
		depVersion("github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"),
		depVersion("go.opentelemetry.io/collector/pdata"))
	fmt.Fprintf(&sb, "%s %s/%s, %d CPUs, %s; -benchtime %s -count %d\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), *benchtime, *count)
	fmt.Fprintf(&sb, "workload: %d requests × %d spans, %.0f wire bytes/span, %d services × %d operations, %d series on both sides\n",
		len(w.Requests), w.SpansPerRequest, w.BytesPerSpan(), wcfg.Services, wcfg.Operations, series)
	if others, ok := othersCPUs(cpu0, sampleCPU()); ok {
		fmt.Fprintf(&sb, "other processes kept %.2f of %d CPUs busy on average during the run", others, runtime.NumCPU())
		if others > 0.1 {
			sb.WriteString(": these numbers are skewed, the parallel ones most")
		}
		sb.WriteString("\n")
	}
	sb.WriteString("spanwatch = defaults (classic buckets + native histograms); classic only = histogram.exponential.enabled: false\n")
	sb.WriteString("ratio = spanwatch ÷ connector; memory target: spanwatch / classic only\n\n")
	t.render(&sb)
	fmt.Fprintf(&sb, "\n%d of %d targets met; total run time %s\n", t.pass, t.pass+t.miss, time.Since(start).Round(time.Second))
	_, err = io.WriteString(out, sb.String())
	return err
}

// workloadSeries feeds the workload to every implementation once and
// returns the series count, which must agree.
func workloadSeries(w *bench.Workload) (int, error) {
	var counts []int
	for _, impl := range bench.Impls {
		inst, err := impl.New()
		if err != nil {
			return 0, err
		}
		for _, r := range w.Requests {
			if _, err := inst.Consume(r); err != nil {
				return 0, fmt.Errorf("%s: %w", impl.Name, err)
			}
		}
		n, err := inst.Export()
		if cerr := inst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", impl.Name, err)
		}
		counts = append(counts, n)
	}
	for _, c := range counts {
		if c != counts[0] {
			return 0, fmt.Errorf("implementations disagree on the workload's series: %v", counts)
		}
	}
	return counts[0], nil
}

// benchmark runs f count times with testing.Benchmark and returns the
// median of each reported metric.
func benchmark(count int, f func(*testing.B)) (map[string]float64, error) {
	all := map[string][]float64{}
	for range count {
		r := testing.Benchmark(f)
		if r.N == 0 {
			return nil, fmt.Errorf("benchmark failed (run it with go test -bench for the message)")
		}
		for k, v := range r.Extra {
			all[k] = append(all[k], v)
		}
	}
	med := map[string]float64{}
	for k, vs := range all {
		med[k] = median(vs)
	}
	return med, nil
}

// memory runs MeasureFixtureMemory count times and keeps the median by
// bytes per series.
func memory(count int, impl bench.Impl, f *bench.SeriesFixture) (bench.MemoryResult, error) {
	var rs []bench.MemoryResult
	for range count {
		r, err := bench.MeasureFixtureMemory(impl, f)
		if err != nil {
			return r, fmt.Errorf("memory %s series=%d spans=%d: %w", impl.Name, f.N, f.SpansPerSeries, err)
		}
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b bench.MemoryResult) int {
		switch {
		case a.BytesPerSeries < b.BytesPerSeries:
			return -1
		case a.BytesPerSeries > b.BytesPerSeries:
			return 1
		}
		return 0
	})
	return rs[len(rs)/2], nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// table collects rows (a nil row is a section title in name) and counts
// verdicts.
type table struct {
	rows       [][]string
	pass, miss int
}

func (t *table) section(title string) {
	t.rows = append(t.rows, []string{title})
}

// row adds a row: spanwatch with its defaults (a), with classic buckets
// only (c) and the connector (b).
func (t *table) row(name, a, c, b, r, target, verdict string) {
	switch verdict {
	case "PASS":
		t.pass++
	case "MISS":
		t.miss++
	}
	t.rows = append(t.rows, []string{"  " + name, a, c, b, r, target, verdict})
}

// render writes the rows with the name column left-aligned and the numbers
// right-aligned.
func (t *table) render(sb *strings.Builder) {
	head := []string{"", "spanwatch", "classic only", "connector", "ratio", "target", ""}
	width := make([]int, len(head))
	for _, r := range append([][]string{head}, t.rows...) {
		if len(r) == 1 {
			continue
		}
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(r []string) {
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch i {
			case 0:
				sb.WriteString(c + pad)
			case len(r) - 1:
				sb.WriteString("  " + c)
			default:
				sb.WriteString("  " + pad + c)
			}
		}
		sb.WriteString("\n")
	}
	line(head)
	for i, r := range t.rows {
		if len(r) == 1 {
			if i > 0 {
				sb.WriteString("\n")
			}
			sb.WriteString(r[0] + "\n")
			continue
		}
		line(r)
	}
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	r := a / b
	switch {
	case r == 0:
		return "0"
	case r < 0.01:
		return fmt.Sprintf("1/%.0f", 1/r)
	case r < 1:
		return fmt.Sprintf("%.3f×", r)
	default:
		return fmt.Sprintf("%.1f×", r)
	}
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.3f", v) }

// si formats a rate with a k/M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func short(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", args...)
}

func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for l := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

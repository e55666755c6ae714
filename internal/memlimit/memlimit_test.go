package memlimit

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeHeap struct {
	live, objects uint64
	afterGC       uint64 // objects (and live) after a forced collection
	gcs           int
	now           time.Time
}

func (f *fakeHeap) read() (uint64, uint64) { return f.live, f.objects }
func (f *fakeHeap) gc() {
	f.gcs++
	f.live, f.objects = f.afterGC, f.afterGC
}

func newTest(t *testing.T, f *fakeHeap) (*Limiter, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	l, err := New(Options{Limit: 1000, Registerer: reg, ReadHeap: f.read, GC: f.gc, Now: func() time.Time { return f.now }})
	require.NoError(t, err)
	require.NotNil(t, l)
	return l, reg
}

func TestLimits(t *testing.T) {
	l, reg := newTest(t, &fakeHeap{})
	require.EqualValues(t, 800, l.SoftLimit())
	require.EqualValues(t, 900, l.HardLimit())
	require.EqualValues(t, 1000, l.Limit())
	require.InDelta(t, 1000, promtestutil.ToFloat64(mustGauge(t, reg, "spanwatch_memory_limit_bytes")), 0)

	none, err := New(Options{})
	require.NoError(t, err)
	require.Nil(t, none)
	require.NoError(t, none.Admit("otlp"), "no limit admits everything")
	none.Check()

	_, err = New(Options{Limit: 10, SoftRatio: 0.95})
	require.ErrorContains(t, err, "soft ratio")
}

func mustGauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "x"})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no %s", name)
	return nil
}

// TestAdmission walks through the states: under the soft limit work is
// admitted, above it refused with a retryable error, and admission resumes
// once the heap falls, without anyone restarting anything.
func TestAdmission(t *testing.T) {
	f := &fakeHeap{live: 100, objects: 300, now: time.Unix(0, 0)}
	l, reg := newTest(t, f)
	require.NoError(t, l.Admit("otlp"), "before the first check")
	l.Check()
	require.NoError(t, l.Admit("otlp"))

	f.live = 850 // live heap above the soft limit
	l.Check()
	err := l.Admit("otlp")
	require.ErrorIs(t, err, ErrOverLimit)
	var ol *OverLimitError
	require.True(t, errors.As(err, &ol))
	require.EqualValues(t, 850, ol.Heap)
	require.Contains(t, err.Error(), "retry later")
	require.ErrorIs(t, l.Admit("query"), ErrOverLimit)
	require.InDelta(t, 1, promtestutil.ToFloat64(l.refused.WithLabelValues("otlp")), 0)
	require.InDelta(t, 1, promtestutil.ToFloat64(l.refused.WithLabelValues("query")), 0)
	require.InDelta(t, 1, promtestutil.ToFloat64(mustGauge(t, reg, "spanwatch_memory_limit_exceeded")), 0)
	require.Zero(t, f.gcs, "below the hard limit nothing is forced")

	f.live = 700
	l.Check()
	require.NoError(t, l.Admit("otlp"), "resumes by itself")
	require.InDelta(t, 0, promtestutil.ToFloat64(mustGauge(t, reg, "spanwatch_memory_limit_exceeded")), 0)
}

// TestForcedGC: garbage above the hard limit is collected, and only what
// survives the collection counts.
func TestForcedGC(t *testing.T) {
	f := &fakeHeap{live: 100, objects: 950, afterGC: 200, now: time.Unix(0, 0)}
	l, _ := newTest(t, f)
	l.Check()
	require.Equal(t, 1, f.gcs)
	require.NoError(t, l.Admit("otlp"), "it was garbage")

	// Still above the hard limit after collecting: refused; the next
	// collection waits a second.
	f.afterGC = 920
	f.live, f.objects = 100, 950
	f.now = f.now.Add(time.Second)
	l.Check()
	require.Equal(t, 2, f.gcs)
	require.ErrorIs(t, l.Admit("otlp"), ErrOverLimit)
	l.Check()
	require.Equal(t, 2, f.gcs, "at most one forced collection a second")
	require.InDelta(t, 2, promtestutil.ToFloat64(l.forcedGC), 0)
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   uint64
		source string
	}{
		{"2GiB", 2 << 30, SourceFlag},
		{"512MiB", 512 << 20, SourceFlag},
		{"1GB", 1 << 30, SourceFlag},
		{"1048576", 1 << 20, SourceFlag},
		{"0", 0, SourceNone},
		{"none", 0, SourceNone},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, src, err := Resolve(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, n)
			require.Equal(t, tc.source, src)
		})
	}
	_, _, err := Resolve("lots")
	require.ErrorContains(t, err, `invalid memory limit "lots"`)
	// auto: whatever the machine says, no error.
	_, src, err := Resolve("auto")
	require.NoError(t, err)
	require.Contains(t, []string{SourceCgroup, SourceNone}, src)
}

func TestSetGoMemLimit(t *testing.T) {
	l, _ := newTest(t, &fakeHeap{})
	cur := int64(1 << 62)
	set := func(n int64) int64 {
		old := cur
		if n >= 0 {
			cur = n
		}
		return old
	}
	require.EqualValues(t, 900, l.SetGoMemLimit(func(string) string { return "" }, set))
	cur = 1 << 62
	require.EqualValues(t, int64(1<<62), l.SetGoMemLimit(func(string) string { return "3GiB" }, set), "GOMEMLIMIT wins")
}

// TestReadHeap reads the real runtime: the heap is never 0 in a running
// program.
func TestReadHeap(t *testing.T) {
	live, objects := readHeap()
	require.Positive(t, objects)
	_ = live
}

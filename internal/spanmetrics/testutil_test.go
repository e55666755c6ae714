package spanmetrics

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedClock() func() time.Time { return func() time.Time { return t0 } }

func strp(s string) *string { return &s }

// recipeConfig is the spanmetrics block of the recipe's collector.yaml.
func recipeConfig() Config {
	c := DefaultConfig()
	c.Histogram.Explicit.Buckets = []time.Duration{
		2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
		50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
	}
	c.Dimensions = []Dimension{
		{Name: "http.method", Default: strp("GET")},
		{Name: "http.status_code"},
		{Name: "k8s.deployment.name"},
		{Name: "k8s.namespace"},
	}
	return c
}

func newTestAgg(t testing.TB, cfg Config, nc NamingConfig) *Aggregator {
	t.Helper()
	a, err := New(cfg, Options{Naming: nc, Now: fixedClock()})
	require.NoError(t, err)
	return a
}

type spanSpec struct {
	service, name string
	kind          ptrace.SpanKind
	status        ptrace.StatusCode
	dur           time.Duration
	attrs         map[string]any
	resAttrs      map[string]any
}

func makeTraces(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range specs {
		rs := td.ResourceSpans().AppendEmpty()
		if s.service != "" {
			rs.Resource().Attributes().PutStr("service.name", s.service)
		}
		for k, v := range s.resAttrs {
			_ = rs.Resource().Attributes().PutEmpty(k).FromRaw(v)
		}
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(s.name)
		sp.SetKind(s.kind)
		sp.Status().SetCode(s.status)
		sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(s.dur)))
		for k, v := range s.attrs {
			_ = sp.Attributes().PutEmpty(k).FromRaw(v)
		}
	}
	return td
}

func marshal(t testing.TB, td ptrace.Traces) []byte {
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	return b
}

// rendered is a snapshot rendered to comparable text: one line per series.
func rendered(s *Snapshot) []string {
	var out []string
	for i := range s.Series {
		ss := &s.Series[i]
		var b strings.Builder
		for _, l := range s.Names.Labels(nil, ss) {
			fmt.Fprintf(&b, "%s=%q,", l.Name, l.Value)
		}
		fmt.Fprintf(&b, " count=%d buckets=%v sum=%g", ss.Count, ss.Buckets, ss.Sum)
		if ss.Native != nil {
			fmt.Fprintf(&b, " native=%d/%d/%d/%v", ss.Native.Schema, ss.Native.ZeroCount, ss.Native.Offset, ss.Native.Counts)
		}
		out = append(out, b.String())
	}
	for _, tg := range s.Targets {
		out = append(out, fmt.Sprintf("target %v", tg.Attributes))
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}

// series returns the series whose rendered labels contain all of want.
func findSeries(t testing.TB, s *Snapshot, want map[string]string) []*SeriesSnapshot {
	t.Helper()
	var out []*SeriesSnapshot
next:
	for i := range s.Series {
		got := map[string]string{}
		for _, l := range s.Names.Labels(nil, &s.Series[i]) {
			got[l.Name] = l.Value
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		out = append(out, &s.Series[i])
	}
	return out
}

func totalCalls(s *Snapshot) uint64 {
	var n uint64
	for i := range s.Series {
		n += s.Series[i].Count
	}
	return n
}

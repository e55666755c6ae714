package loadgen

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/spanwatch/spanwatch/internal/field"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestShopScenarioParses(t *testing.T) {
	sc := Shop()
	require.Equal(t, 20.0, sc.Rate)
	require.Len(t, sc.Services, 4)
	require.Equal(t, 60*time.Second, sc.Services[2].Versions[1].Start)
	require.Equal(t, 3.0, sc.Changes[0].LatencyFactor)
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key": {"rate: 5\nservices:\n  - name: a\n    bogus: 1\n", "line 4: field bogus not found"},
		"bad duration": {"services:\n  - name: a\n    operations:\n      - name: x\n        share: 1\n        latency: {median: fast}\n",
			"line 6"},
		"no entry": {"services:\n  - name: a\n    operations:\n      - name: x\n", "services: no entry operation"},
		"unknown callee": {"services:\n  - name: a\n    operations:\n      - name: x\n        share: 1\n        calls: [{service: b, operation: y}]\n",
			`services[0].operations[0].calls[0]: calls b "y"`},
		"cycle": {"services:\n  - name: a\n    operations:\n      - name: x\n        share: 1\n        calls: [{service: a, operation: x}]\n",
			"cycle"},
		"db without name": {"services:\n  - name: a\n    operations:\n      - name: x\n        share: 1\n        calls: [{db: redis}]\n",
			"services[0].operations[0].calls[0].name"},
		"bad kind": {"services:\n  - name: a\n    operations:\n      - name: x\n        kind: client\n        share: 1\n",
			"services[0].operations[0].kind"},
		"error rate": {"services:\n  - name: a\n    operations:\n      - {name: x, share: 1, error_rate: 2}\n",
			"services[0].operations[0].error_rate"},
		"empty change": {"services:\n  - name: a\n    operations:\n      - {name: x, share: 1}\nchanges:\n  - {at: 1s, service: a}\n",
			"changes[0]: changes nothing"},
		"change op": {"services:\n  - name: a\n    operations:\n      - {name: x, share: 1}\nchanges:\n  - {at: 1s, service: a, operation: y, latency_factor: 2}\n",
			"changes[0].operation"},
		"empty": {"", "empty scenario"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.yaml))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// TestRate drives Run with a fake clock and its own ticks: after every
// step the requests sent are exactly rate × elapsed time, and the run
// ends at the duration with rate × duration requests, whatever the wall
// clock does.
func TestRate(t *testing.T) {
	clk := &fakeClock{}
	clk.add(time.Hour) // any start
	ticks := make(chan time.Time)
	exp := tracetest.NewInMemoryExporter()
	g, err := New(Options{Scenario: Shop(), Exporter: exp, Rate: 200, Duration: time.Second, Seed: 1,
		Now: clk.now, Ticks: ticks})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()

	// tick wakes the loop once; false when Run has returned instead.
	tick := func() bool {
		select {
		case ticks <- clk.now():
			return true
		case err := <-done:
			require.NoError(t, err)
			return false
		}
	}
	roots := func() int {
		n := 0
		for _, s := range exp.GetSpans() {
			if !s.Parent.IsValid() {
				n++
			}
		}
		return n
	}
	// Run has read its start time once it takes a tick.
	require.True(t, tick())
	const step = 50 * time.Millisecond
	for k := 1; k < 20; k++ {
		clk.add(step)
		// The second tick is received only once the loop has handled the
		// first, which saw the clock at k steps: all that is due is sent.
		require.True(t, tick())
		require.True(t, tick())
		require.Equal(t, int64(10*k), g.Stats().Requests, "after %s", time.Duration(k)*step)
		require.Equal(t, 10*k, roots())
	}
	// Past the duration the loop sends the rest and returns by itself.
	clk.add(3 * step)
	for i := 0; tick(); i++ {
		require.Less(t, i, 2, "Run goes on past the duration")
	}
	st := g.Stats()
	require.Equal(t, int64(200), st.Requests, "rate × duration, no more")
	require.Equal(t, 200, roots())
	require.Equal(t, int64(len(exp.GetSpans())), st.Spans)
	require.Zero(t, st.ExportErrors)
}

func TestRunStopsWithContext(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	g, err := New(Options{Scenario: Shop(), Exporter: exp, BatchInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.NoError(t, g.Run(ctx))
	require.NotZero(t, g.Stats().Requests)
}

func resAttr(s sdktrace.ReadOnlySpan, key string) string {
	v, _ := s.Resource().Set().Value(attribute.Key(key))
	return v.AsString()
}

func TestTraceStructureVersionsAndChanges(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	g, err := New(Options{Scenario: Shop(), Exporter: exp, Seed: 7})
	require.NoError(t, err)

	check := func(spans []sdktrace.ReadOnlySpan) (map[string]int, map[string]time.Duration, map[string]int) {
		byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
		for _, s := range spans {
			byID[s.SpanContext().SpanID()] = s
		}
		versions := map[string]int{}
		dbDur := map[string]time.Duration{}
		dbN := map[string]int{}
		for _, s := range spans {
			if p := s.Parent(); p.IsValid() {
				parent, ok := byID[p.SpanID()]
				require.True(t, ok, "parent of %s is in the batch", s.Name())
				require.Equal(t, parent.SpanContext().TraceID(), s.SpanContext().TraceID())
				require.False(t, s.StartTime().Before(parent.StartTime()), "%s starts within its parent", s.Name())
				require.False(t, s.EndTime().After(parent.EndTime()), "%s ends within its parent", s.Name())
			}
			require.NotEmpty(t, resAttr(s, "service.instance.id"))
			svc, ver := resAttr(s, "service.name"), resAttr(s, "service.version")
			if svc == "checkout" && s.SpanKind() == trace.SpanKindServer {
				versions[ver]++
			}
			if s.Name() == "INSERT orders" {
				dbDur[ver] += s.EndTime().Sub(s.StartTime())
				dbN[ver]++
				var system string
				for _, a := range s.Attributes() {
					if a.Key == "db.system" {
						system = a.Value.AsString()
					}
				}
				require.Equal(t, "postgresql", system)
				require.Equal(t, trace.SpanKindClient, s.SpanKind())
			}
		}
		return versions, dbDur, dbN
	}
	// Before the canary: v1 only.
	versions, _, _ := check(g.Traces(2000, 10*time.Second))
	require.Equal(t, map[string]int{"v1": versions["v1"]}, versions)
	require.InDelta(t, 2000*0.4, versions["v1"], 2000*0.05, "POST /checkout has 40 % of requests")

	// After: 20 % v2, whose database call is about 3× slower.
	versions, dur, n := check(g.Traces(4000, 90*time.Second))
	share := float64(versions["v2"]) / float64(versions["v1"]+versions["v2"])
	require.InDelta(t, 0.2, share, 0.04)
	ratio := (float64(dur["v2"]) / float64(n["v2"])) / (float64(dur["v1"]) / float64(n["v1"]))
	require.InDelta(t, 3, ratio, 0.6)
}

func TestNewValidates(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no scenario", Options{Exporter: exp}, "loadgen: a scenario is required"},
		{"no exporter", Options{Scenario: Shop()}, "loadgen: an exporter is required"},
		{"negative rate", Options{Scenario: Shop(), Exporter: exp, Rate: -1}, "loadgen: rate must not be negative, got -1"},
		{"negative duration", Options{Scenario: Shop(), Exporter: exp, Duration: -time.Second},
			"loadgen: duration must not be negative, got -1s"},
		{"negative batch interval", Options{Scenario: Shop(), Exporter: exp, BatchInterval: -time.Millisecond},
			"loadgen: batch interval must not be negative, got -1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.o)
			require.EqualError(t, err, tc.want)
			require.Nil(t, g)
		})
	}
	t.Run("invalid scenario", func(t *testing.T) {
		sc := Shop()
		sc.Rate = 0
		_, err := New(Options{Scenario: sc, Exporter: exp})
		var ke *field.Error
		require.ErrorAs(t, err, &ke)
		require.Equal(t, "rate", ke.Path)
		require.EqualError(t, err, "rate: must be positive, got 0")
	})
}

func TestExampleScenarioLoads(t *testing.T) {
	sc, err := Load("../../examples/loadgen/scenario.yaml")
	require.NoError(t, err)
	require.Equal(t, 50.0, sc.Rate)
	require.Len(t, sc.Changes, 2)
	_, err = Load("testdata/missing.yaml")
	require.Error(t, err)
}

func TestVersionWeightRamps(t *testing.T) {
	old := Version{Name: "v1", Share: 1, Stop: 120 * time.Second, Ramp: 60 * time.Second}
	next := Version{Name: "v2", Share: 1, Start: 60 * time.Second, Ramp: 60 * time.Second}
	for _, tc := range []struct {
		at        time.Duration
		old, next float64
	}{{0, 1, 0}, {60 * time.Second, 1, 0}, {90 * time.Second, 0.5, 0.5}, {120 * time.Second, 0, 1}, {time.Hour, 0, 1}} {
		if got := old.weight(tc.at); got != tc.old {
			t.Errorf("v1 at %s: %g, want %g", tc.at, got, tc.old)
		}
		if got := next.weight(tc.at); got != tc.next {
			t.Errorf("v2 at %s: %g, want %g", tc.at, got, tc.next)
		}
	}
}

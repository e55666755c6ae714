package regress

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompareService(t *testing.T) {
	native := nativeBounds()
	arm := lognormalArm
	op := func(name string, n, baseMedian, candMedian float64) Operation {
		return Operation{Name: name, Base: arm(native, n, baseMedian, 0.6, 0), Cand: arm(native, n, candMedian, 0.6, 0)}
	}
	for _, tc := range []struct {
		name   string
		ops    []Operation
		share  float64
		th     func(*Thresholds)
		want   Verdict
		reason string
		// notReason must not be in the reason.
		notReason string
		opOrder   []string
		opWant    map[string]Verdict
		gates     []string // operations that fail the gate
		service   Verdict  // the service's own verdict, when Pass or Regression and not want
	}{
		{
			name: "unchanged; a small operation lacks data", want: Pass,
			ops:     []Operation{op("/health", 50, 2, 2), op("/checkout", 10000, 40, 40)},
			reason:  "pass: no change is both significant and large",
			opWant:  map[string]Verdict{"/checkout": Pass, "/health": Inconclusive},
			opOrder: []string{"/checkout", "/health"},
		},
		{
			// The busy operation dominates the service's P50; the small one
			// regressed 3x, which the service tail and its own findings show.
			name: "one operation regressed", want: Regression,
			ops:     []Operation{op("/list", 100000, 20, 20), op("/search", 2000, 100, 300), op("/cart", 3000, 30, 31)},
			reason:  "; operations: /search: P50 100 → 300 ms",
			opWant:  map[string]Verdict{"/search": Regression, "/list": Pass, "/cart": Pass},
			opOrder: []string{"/search", "/cart", "/list"},
			gates:   []string{"/search"},
		},
		{
			// 1 % of the traffic got 50 % slower: the service's quantiles do
			// not move beyond its thresholds, the operation's own checks
			// do, family-wise.
			name: "a small operation regressed, the service did not move", want: Regression, service: Pass,
			ops:    []Operation{op("/list", 200000, 40, 40), op("/export", 2000, 100, 150)},
			reason: "regression in operation /export: P50 100 → 150 ms",
			opWant: map[string]Verdict{"/export": Regression, "/list": Pass},
			gates:  []string{"/export"},
		},
		{
			// The operation is the service: it gates, and the reason says
			// it once.
			name: "the only operation regressed", want: Regression,
			ops:       []Operation{op("/charge", 2000, 40, 80)},
			reason:    "regression: P50 40.0 → 80.0 ms",
			notReason: "family-wise",
			opWant:    map[string]Verdict{"/charge": Regression},
			gates:     []string{"/charge"},
		},
		{
			// Errors ×3 on 1000 requests: significant at an FDR of 0.5, not
			// at α = 0.01 after Holm.
			name: "the only operation looks regressed at the FDR", want: Inconclusive, th: func(th *Thresholds) { th.FDR = 0.5 },
			ops:    []Operation{{Name: "/a", Base: arm(native, 1000, 40, 0.6, 5), Cand: arm(native, 1000, 40, 0.6, 15)}},
			reason: "; operation that looks regressed (FDR 0.5) but is not significant family-wise: /a",
			opWant: map[string]Verdict{"/a": Regression},
		},
		{
			name: "sample-ratio mismatch blocks a pass", want: Inconclusive, share: 0.1,
			ops:    []Operation{{Name: "/a", Base: arm(native, 98000, 40, 0.6, 0), Cand: arm(native, 2000, 40, 0.6, 0)}},
			reason: "inconclusive: candidate got 2.00 % of requests, expected 10.00 % (2000 vs 98000 requests), p < 0.001: sample-ratio mismatch",
		},
		{
			name: "expected split", want: Pass, share: 0.1,
			ops: []Operation{{Name: "/a", Base: arm(native, 9000, 40, 0.6, 0), Cand: arm(native, 1002, 40, 0.6, 0)}},
		},
		{
			name: "no candidate traffic", want: Inconclusive, share: 0.1,
			ops:    []Operation{{Name: "/a", Base: arm(native, 9000, 40, 0.6, 0)}},
			reason: "inconclusive: no candidate traffic; candidate got 0.00 % of requests",
		},
		{name: "no operations", want: Inconclusive, reason: "inconclusive: no operations"},
		{
			name: "invalid histogram", want: Inconclusive,
			ops:    []Operation{op("/a", 1000, 40, 40), {Name: "/b", Base: Arm{Latency: Histogram{Bounds: []float64{1}}}}},
			reason: `inconclusive: operation "/b" baseline latency: invalid histogram: 1 bounds but 0 counts`,
		},
		{
			name: "invalid thresholds", want: Inconclusive, th: func(th *Thresholds) { th.FDR = 2 },
			ops:    []Operation{op("/a", 1000, 40, 40)},
			reason: "invalid thresholds: fdr: must be in (0, 1), got 2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := DefaultThresholds()
			if tc.th != nil {
				tc.th(&th)
			}
			th.CandidateShare = tc.share
			r := CompareService(tc.ops, th, Look{})
			require.Equal(t, tc.want, r.Verdict, r.Reason)
			svc := tc.want
			if tc.service != 0 {
				svc = tc.service
			}
			require.Equal(t, svc, r.Service.Verdict, r.Service.Reason)
			require.Contains(t, r.Reason, tc.reason)
			if tc.notReason != "" {
				require.NotContains(t, r.Reason, tc.notReason)
			}
			var gates []string
			for _, o := range r.Operations {
				if o.Gates {
					gates = append(gates, o.Name)
				}
			}
			require.Equal(t, tc.gates, gates)
			got := map[string]Verdict{}
			var order []string
			for _, o := range r.Operations {
				got[o.Name] = o.Verdict
				order = append(order, o.Name)
			}
			for name, want := range tc.opWant {
				require.Equal(t, want, got[name], name)
			}
			if tc.opOrder != nil {
				require.Equal(t, tc.opOrder, order)
			}
			if tc.share > 0 && len(r.Service.Findings) > 0 {
				tf := r.Service.Findings[len(r.Service.Findings)-1]
				require.Equal(t, CheckTraffic, tf.Check)
				require.Equal(t, TestChiSquare, tf.Test)
			}
		})
	}
}

func TestCompareServiceAdjustsAcrossOperations(t *testing.T) {
	native := nativeBounds()
	ops := []Operation{
		{Name: "a", Base: lognormalArm(native, 5000, 40, 0.6, 5), Cand: lognormalArm(native, 5000, 44, 0.6, 9)},
		{Name: "b", Base: lognormalArm(native, 3000, 10, 0.6, 3), Cand: lognormalArm(native, 3000, 10.5, 0.6, 3)},
		{Name: "c", Base: lognormalArm(native, 100, 5, 0.6, 0), Cand: lognormalArm(native, 100, 5, 0.6, 0)},
	}
	r := CompareService(ops, DefaultThresholds(), Look{})
	// The operations' gated p-values, adjusted together.
	var raw, adj []float64
	for _, o := range r.Operations {
		for _, f := range o.Findings {
			if f.Enough {
				raw = append(raw, f.PValue)
				adj = append(adj, f.AdjustedP)
			} else {
				require.True(t, math.IsNaN(f.AdjustedP), "%s %s", o.Name, f.Check)
			}
		}
	}
	require.Len(t, raw, 4+4+2) // c has 100 requests: P50 and errors only
	require.InDeltaSlice(t, BenjaminiHochberg(raw), adj, 1e-15)
	// The gate's family: the service's checks and every operation's,
	// Holm-adjusted together.
	var sraw, sadj []float64
	for _, f := range r.Service.Findings {
		sraw = append(sraw, enoughP(f))
		sadj = append(sadj, f.AdjustedP)
	}
	require.InDeltaSlice(t, Holm(append(sraw, raw...))[:len(sraw)], sadj, 1e-15)
	require.Equal(t, 8100.0, r.Service.BaselineRequests)
	require.Equal(t, 12.0, finding(t, r.Service, CheckErrors).CandidateEvents)
	// Impact: the busiest slowdown first.
	require.Equal(t, "a", r.Operations[0].Name)
	require.Greater(t, r.Operations[0].Impact, r.Operations[1].Impact)
}

func TestCompareServiceMergesDifferentBounds(t *testing.T) {
	// Two operations whose native windows differ (each lists only its
	// populated range, empty buckets inside as zero): the service histogram
	// keeps the common grid.
	window := func(lo, hi int, counts map[int]float64) Histogram {
		var h Histogram
		for k := lo; k <= hi; k++ {
			h.Bounds = append(h.Bounds, math.Exp2(float64(k)/8))
			h.Counts = append(h.Counts, counts[k])
		}
		return h
	}
	a := window(40, 44, map[int]float64{41: 100, 43: 100})
	b := window(42, 48, map[int]float64{43: 50, 47: 150})
	base, cand, err := serviceArms([]Operation{{Name: "a", Base: Arm{Latency: a}, Cand: Arm{Latency: a}}, {Name: "b", Base: Arm{Latency: b}, Cand: Arm{Latency: b}}})
	require.NoError(t, err)
	require.Len(t, base.Latency.Bounds, 9) // 2^(40/8) … 2^(48/8)
	require.Equal(t, 400.0, base.Latency.Total())
	require.Equal(t, base.Latency, cand.Latency)
	require.Equal(t, 400.0, base.Requests)
}

func BenchmarkCompareService(b *testing.B) {
	for _, n := range []int{10, 100} {
		native := nativeBounds()
		ops := make([]Operation, n)
		for i := range ops {
			// Different medians give each operation a different populated window.
			m := 5 * math.Pow(1.05, float64(i))
			ops[i] = Operation{Name: "op", Base: lognormalArm(native, 1000, m, 0.6, 5), Cand: lognormalArm(native, 1000, m, 0.6, 5)}
		}
		b.Run("ops="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			th := DefaultThresholds()
			th.CandidateShare = 0.5
			for b.Loop() {
				CompareService(ops, th, Look{})
			}
		})
	}
}

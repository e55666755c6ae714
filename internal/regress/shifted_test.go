package regress

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompareServiceShifted(t *testing.T) {
	native := nativeBounds()
	narrow := DefaultThresholds()
	wide := narrow.ForOffset()
	op := func(n, baseMedian, candMedian, baseErr, candErr float64) []Operation {
		return []Operation{{Name: "/checkout",
			Base: lognormalArm(native, n, baseMedian, 0.6, baseErr),
			Cand: lognormalArm(native, n, candMedian, 0.6, candErr)}}
	}
	for _, tc := range []struct {
		name   string
		ops    []Operation
		want   Verdict
		reason string
	}{
		{name: "unchanged passes", ops: op(20000, 40, 40, 20, 20), want: Pass, reason: "pass: "},
		{name: "+3 % drift passes", ops: op(20000, 40, 41.2, 20, 20), want: Pass, reason: "pass: "},
		{
			// +15 %: below the wide P50/P95 ratio (1.2) but above the narrow
			// one (1.1): the wide comparison alone would pass it.
			name: "+15 % is inconclusive, not a pass", ops: op(20000, 40, 46, 20, 20), want: Inconclusive,
			reason: "inconclusive: no change reaches the time-shifted thresholds, but the windows cover different times and by the same-window thresholds P50 40.0 → 46.0 ms",
		},
		{name: "+50 % fails", ops: op(20000, 40, 60, 20, 20), want: Regression, reason: "regression: "},
		{name: "errors ×10 fail", ops: op(20000, 40, 40, 20, 200), want: Regression, reason: "regression: errors"},
		{name: "no baseline data is inconclusive", ops: []Operation{{Name: "/checkout", Cand: lognormalArm(native, 20000, 40, 0.6, 20)}},
			want: Inconclusive, reason: "inconclusive: no baseline traffic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CompareServiceShifted(tc.ops, narrow, wide, Look{Index: 30, Total: 60})
			require.Equal(t, tc.want, got.Verdict, got.Reason)
			require.Contains(t, got.Reason, tc.reason)
			require.Equal(t, tc.want, got.Service.Verdict)
			// A regression or an inconclusive wide comparison is left as is.
			wideOnly := CompareService(tc.ops, wide, Look{Index: 30, Total: 60})
			if wideOnly.Verdict != Pass {
				require.Equal(t, wideOnly, got)
			}
		})
	}
}

package regress

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHolmAndBH(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name     string
		p        []float64
		holm, bh []float64
	}{
		// By hand, as R's p.adjust: sorted 0.005, 0.01, 0.03, 0.04.
		// Holm: 4·0.005, 3·0.01, 2·0.03, max(0.06, 1·0.04).
		// BH: min over j ≥ i of 4/j·p: 0.02, 0.02, 0.04, 0.04.
		{"four", []float64{0.01, 0.04, 0.03, 0.005}, []float64{0.03, 0.06, 0.06, 0.02}, []float64{0.02, 0.04, 0.04, 0.02}},
		// R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "holm") = 0.05 0.08
		// 0.09 0.09 0.09; "BH" = 0.05 for all.
		{"five", []float64{0.01, 0.02, 0.03, 0.04, 0.05}, []float64{0.05, 0.08, 0.09, 0.09, 0.09}, []float64{0.05, 0.05, 0.05, 0.05, 0.05}},
		{"capped at 1", []float64{0.6, 0.9}, []float64{1, 1}, []float64{0.9, 0.9}},
		// NaN entries are not in the family (m = 2 here).
		{"NaN", []float64{nan, 0.01, 0.04}, []float64{nan, 0.02, 0.04}, []float64{nan, 0.02, 0.04}},
		{"empty", nil, []float64{}, []float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.p...)
			for name, got := range map[string][]float64{"holm": Holm(tc.p), "bh": BenjaminiHochberg(tc.p)} {
				want := tc.holm
				if name == "bh" {
					want = tc.bh
				}
				require.Len(t, got, len(want), name)
				for i := range want {
					if math.IsNaN(want[i]) {
						require.True(t, math.IsNaN(got[i]), "%s[%d]", name, i)
						continue
					}
					require.InDelta(t, want[i], got[i], 1e-12, "%s[%d]", name, i)
				}
			}
			require.Equal(t, len(in), len(tc.p))
			for i := range in {
				require.True(t, in[i] == tc.p[i] || math.IsNaN(in[i]), "input modified")
			}
		})
	}
}

func TestSpentAlpha(t *testing.T) {
	// Lan–DeMets O'Brien–Fleming-type spending, α = 0.05 at t = ¼, ½, ¾, 1:
	// 0.0000886, 0.00557, 0.02363, 0.05 (R: gsDesign::sfLDOF(0.05, c(.25,
	// .5, .75, 1))$spend, which implements the same 2 − 2Φ(z/√t)).
	for _, tc := range []struct{ alpha, t, want float64 }{
		{0.05, 0.25, 8.857543832130332e-05},
		{0.05, 0.5, 0.005574596680784527},
		{0.05, 0.75, 0.023625121317601305},
		{0.05, 1, 0.05},
		{0.01, 0.5, 0.00026971695663147166},
		{0.01, 0, 0},
		{0.01, -1, 0},
		{0.01, 2, 0.01},
	} {
		require.InDelta(t, tc.want, SpentAlpha(tc.alpha, tc.t), 1e-12*math.Max(tc.want, 1e-3), "α=%v t=%v", tc.alpha, tc.t)
	}
	require.True(t, math.IsNaN(SpentAlpha(0, 0.5)))
	require.True(t, math.IsNaN(SpentAlpha(1, 0.5)))
}

func TestLookAlpha(t *testing.T) {
	require.InDelta(t, 0.01, LookAlpha(0.01, Look{}), 1e-15)
	require.InDelta(t, 0.01, LookAlpha(0.01, Look{Index: 1, Total: 1}), 1e-15)
	for _, total := range []int{2, 5, 20, 240} {
		sum, prev := 0.0, 0.0
		for k := 1; k <= total; k++ {
			a := LookAlpha(0.01, Look{Index: k, Total: total})
			require.GreaterOrEqual(t, a, 0.0)
			if k > 1 {
				require.GreaterOrEqual(t, a, prev, "O'Brien–Fleming spends more later")
			}
			prev = a
			sum += a
		}
		require.InDelta(t, 0.01, sum, 1e-12, "looks spend exactly α (K = %d)", total)
	}
	require.InDelta(t, 0.00026971695663147166, LookAlpha(0.01, Look{Index: 1, Total: 2}), 1e-15)
	require.Equal(t, 0.0, LookAlpha(0.01, Look{Index: 21, Total: 20}), "no alpha past the plan")
}

package regress

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// Reference values: R's pnorm/qnorm (double precision), which agree with
// Abramowitz & Stegun table 26.1 to the digits printed there.
func TestNormal(t *testing.T) {
	for _, tc := range []struct {
		x, cdf float64
	}{
		{0, 0.5},
		{1.96, 0.9750021048517795},
		{-3, 0.0013498980316300957},
		{-5, 2.866515718791946e-07},
		{-10, 7.619853024160527e-24},
		{math.Inf(1), 1},
		{math.Inf(-1), 0},
	} {
		require.InDelta(t, tc.cdf, NormalCDF(tc.x), 1e-12*tc.cdf+1e-300, "Φ(%v)", tc.x)
	}
	require.InDelta(t, 2.866515718791946e-07, normalSF(5), 1e-20)

	for _, tc := range []struct{ p, x float64 }{
		{0.5, 0},
		{0.975, 1.959963984540054},
		{0.995, 2.5758293035489004},
		{0.05, -1.6448536269514729},
		{1e-10, -6.361340902404056},
		{1 - 1e-10, 6.361340889697421}, // float64(1 − 1e-10) < 1 − 1e-10; Wichura AS241
	} {
		require.InDelta(t, tc.x, NormalQuantile(tc.p), 1e-9, "Φ⁻¹(%v)", tc.p)
	}
	require.True(t, math.IsInf(NormalQuantile(1), 1))
	require.True(t, math.IsInf(NormalQuantile(0), -1))
	require.True(t, math.IsNaN(NormalQuantile(1.5)))
	require.True(t, math.IsNaN(NormalQuantile(math.NaN())))
}

// R: pchisq(3.841459, 1, lower.tail = FALSE) = 0.05; pchisq(3.6, 1, ...) =
// 0.05777957.
func TestChiSquare1SF(t *testing.T) {
	require.InDelta(t, 0.05, chiSquare1SF(3.841458820694124), 1e-12)
	require.InDelta(t, 0.05777957112359724, chiSquare1SF(3.6), 1e-12)
	require.Equal(t, 1.0, chiSquare1SF(0))
	require.Equal(t, 1.0, chiSquare1SF(-1))
}

func TestHypergeomUpper(t *testing.T) {
	// P(X ≥ x) for X ~ hypergeometric summed exactly with big integers (see
	// exactHypergeomUpper) for a range of small tables.
	for pop := 2.0; pop <= 14; pop++ {
		for succ := 0.0; succ <= pop; succ++ {
			for draws := 0.0; draws <= pop; draws++ {
				for x := 0.0; x <= draws; x++ {
					want := exactHypergeomUpper(x, pop, succ, draws)
					require.InDelta(t, want, hypergeomUpper(x, pop, succ, draws), 1e-12,
						"x=%v pop=%v succ=%v draws=%v", x, pop, succ, draws)
				}
			}
		}
	}
	// A p-value far in the tail keeps its relative precision.
	p := hypergeomUpper(100, 200, 100, 100) // all 100 successes drawn
	require.InEpsilon(t, 1/exactBinomial(200, 100), p, 1e-9)
}

// exactHypergeomUpper computes P(X ≥ x) with exact binomial coefficients.
func exactHypergeomUpper(x, pop, succ, draws float64) float64 {
	s := 0.0
	for k := x; k <= math.Min(succ, draws); k++ {
		if draws-k > pop-succ {
			continue
		}
		s += exactBinomial(succ, k) * exactBinomial(pop-succ, draws-k)
	}
	return s / exactBinomial(pop, draws)
}

func exactBinomial(n, k float64) float64 {
	r := 1.0
	for i := 1.0; i <= k; i++ {
		r = r * (n - k + i) / i
	}
	return r
}

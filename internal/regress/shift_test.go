package regress

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// recipeBounds are the recipe's 12 classic buckets (ms) and +Inf.
var recipeBounds = []float64{2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.Inf(1)}

// drawShape draws n requests from draw into a histogram over bounds.
func drawShape(bounds []float64, n int, draw func() float64) Histogram {
	h := Histogram{Bounds: bounds, Counts: make([]float64, len(bounds))}
	for range n {
		h.Counts[sort.SearchFloat64s(bounds, draw())]++
	}
	return h
}

func TestChiSquareSF(t *testing.T) {
	for _, tc := range []struct{ x, df, want float64 }{
		{3.841458820694124, 1, 0.05}, {5.991464547107979, 2, 0.05}, {18.307038053275146, 10, 0.05},
		{0.1148318, 3, 0.99}, {63.69073975, 40, 0.01}, {0, 4, 1},
	} {
		require.InDelta(t, tc.want, chiSquareSF(tc.x, tc.df), 1e-6, "x %g df %g", tc.x, tc.df)
	}
	require.InDelta(t, chiSquare1SF(2.5), chiSquareSF(2.5, 1), 1e-12)
}

// TestEstimateShift: on the recipe's coarse buckets, a uniform ×1.25 whose
// quantiles stay inside one bucket is sized from the whole distribution;
// no change is sized as none; a tail-only change and a second mode are
// refused at the goodness-of-fit test.
func TestEstimateShift(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	logn := func(median, sigma, scale float64) func() float64 {
		return func() float64 { return scale * median * math.Exp(sigma*r.NormFloat64()) }
	}
	for _, tc := range []struct {
		name      string
		n         int
		base, can func() float64
		fits      bool
		ratio     float64 // 0: not checked
	}{
		{"×1.25, 80 ms, 3000 requests", 3000, logn(80, 0.5, 1), logn(80, 0.5, 1.25), true, 1.25},
		{"×1.2, 40 ms, 30000 requests", 30000, logn(40, 0.6, 1), logn(40, 0.6, 1.2), true, 1.2},
		{"no change, 40 ms, 3000 requests", 3000, logn(40, 0.6, 1), logn(40, 0.6, 1), true, 1},
		{"tail only: σ 0.6 → 0.9", 30000, logn(40, 0.6, 1), logn(40, 0.9, 1), false, 0},
		{"two modes", 30000, func() float64 {
			if r.Float64() < 0.7 {
				return logn(20, 0.3, 1)()
			}
			return logn(300, 0.3, 1)()
		}, func() float64 {
			if r.Float64() < 0.7 {
				return logn(20, 0.3, 1.2)()
			}
			return logn(300, 0.3, 1.2)()
		}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, c := drawShape(recipeBounds, tc.n, tc.base), drawShape(recipeBounds, tc.n, tc.can)
			s := EstimateShift(b, c, 0.99)
			require.Equal(t, tc.fits, s.Fits, "%+v", s)
			if tc.ratio > 0 {
				require.InDelta(t, tc.ratio, s.Ratio, 0.05*tc.ratio, "%+v", s)
				require.Less(t, s.Low, tc.ratio, "%+v", s)
				require.Greater(t, s.High, tc.ratio, "%+v", s)
			}
		})
	}
	require.False(t, EstimateShift(drawShape(recipeBounds, 10, logn(40, 0.6, 1)), drawShape(recipeBounds, 10, logn(40, 0.6, 1)), 0.99).Fits, "too few requests")
}

// TestEstimateShiftCoverage: the 99 % interval of a true ×1.2 covers it in
// about 99 % of draws, and the fit is refused in about 1 % of them, at 10
// requests/s over 5 minutes on the recipe's buckets.
func TestEstimateShiftCoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	r := rand.New(rand.NewPCG(9, 10))
	const runs = 300
	covered, fits := 0, 0
	for range runs {
		b := drawShape(recipeBounds, 3000, func() float64 { return 40 * math.Exp(0.6*r.NormFloat64()) })
		c := drawShape(recipeBounds, 3000, func() float64 { return 1.2 * 40 * math.Exp(0.6*r.NormFloat64()) })
		s := EstimateShift(b, c, 0.99)
		if !s.Fits {
			continue
		}
		fits++
		if s.Low <= 1.2 && 1.2 <= s.High {
			covered++
		}
	}
	require.GreaterOrEqual(t, fits, runs*95/100, "the true model fits")
	require.GreaterOrEqual(t, float64(covered)/float64(fits), 0.97, "coverage of the 99 %% interval: %d/%d", covered, fits)
}

// TestScaleLLDerivatives: the analytic gradient and Hessian agree with
// central differences of the likelihood.
func TestScaleLLDerivatives(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	b := drawShape(recipeBounds, 2000, func() float64 { return 40 * math.Exp(0.6*r.NormFloat64()) })
	c := drawShape(recipeBounds, 2000, func() float64 { return 55 * math.Exp(0.6*r.NormFloat64()) })
	bb, cb := logBins(b), logBins(c)
	x := [3]float64{math.Log(38), 0.7, 0.25}
	_, g, h := scaleLL(bb, cb, x, true)
	const eps = 1e-5
	for i := range 3 {
		xp, xm := x, x
		xp[i] += eps
		xm[i] -= eps
		lp, gp, _ := scaleLL(bb, cb, xp, true)
		lm, gm, _ := scaleLL(bb, cb, xm, true)
		require.InDelta(t, (lp-lm)/(2*eps), g[i], 1e-4*(1+math.Abs(g[i])), "gradient %d", i)
		for j := range 3 {
			require.InDelta(t, (gp[j]-gm[j])/(2*eps), h[i][j], 1e-3*(1+math.Abs(h[i][j])), "hessian %d,%d", i, j)
		}
	}
}

func BenchmarkEstimateShift(b *testing.B) {
	r := rand.New(rand.NewPCG(13, 14))
	base := drawShape(recipeBounds, 3000, func() float64 { return 40 * math.Exp(0.6*r.NormFloat64()) })
	cand := drawShape(recipeBounds, 3000, func() float64 { return 48 * math.Exp(0.6*r.NormFloat64()) })
	b.ReportAllocs()
	for b.Loop() {
		EstimateShift(base, cand, 0.99)
	}
}

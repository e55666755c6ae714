package regress

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFisherExact(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		xBase, nBase, xCand, nCand float64
		want                       float64
	}{
		// Fisher's lady tasting tea, 3 of 4 cups right: P = 17/70.
		{"tea", 1, 4, 3, 4, 17.0 / 70},
		// R ?fisher.test, Fisher's convictions of like-sex twins
		// (monozygotic 10/13 vs dizygotic 2/17): alternative = "less" on
		// matrix(c(2, 10, 15, 3), 2) gives p-value = 0.0004652.
		{"twins", 2, 17, 10, 13, 0.00046518094336290503},
		// Exact sums with big integers (Python fractions).
		{"rare events", 5, 10000, 20, 10000, 0.0020275907865688223},
		{"zero baseline errors", 0, 1000, 5, 1000, 0.031093789258174406},
		{"candidate not higher", 3, 4, 1, 4, 1 - 1.0/70},
		{"no events", 0, 10, 0, 10, 1},
		{"fractional counts round", 1.2, 3.9, 2.6, 4.4, 17.0 / 70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, FisherExact(tc.xBase, tc.nBase, tc.xCand, tc.nCand), 1e-12*math.Max(1, tc.want))
		})
	}
	require.True(t, math.IsNaN(FisherExact(5, 4, 1, 4)))
}

func TestTwoProportionZ(t *testing.T) {
	// 30/100 vs 45/100: R prop.test(c(45, 30), c(100, 100), correct =
	// FALSE) gives X-squared = 4.8, so z = √4.8 = 2.19089; one-sided
	// p = 0.0142299.
	z, p := TwoProportionZ(30, 100, 45, 100)
	require.InDelta(t, math.Sqrt(4.8), z, 1e-12)
	require.InDelta(t, 0.014229868458155284, p, 1e-12)
	z, p = TwoProportionZ(45, 100, 30, 100)
	require.InDelta(t, -math.Sqrt(4.8), z, 1e-12)
	require.InDelta(t, 1-0.014229868458155284, p, 1e-12)
	z, p = TwoProportionZ(0, 100, 0, 100)
	require.Equal(t, []float64{0, 1}, []float64{z, p})
	z, p = TwoProportionZ(1, 0, 1, 10)
	require.True(t, math.IsNaN(z) && math.IsNaN(p))
}

func TestProportionTestChoosesTest(t *testing.T) {
	got := ProportionTest(30, 100, 45, 100)
	require.Equal(t, TestZ, got.Name)
	require.InDelta(t, 0.014229868458155284, got.PValue, 1e-12)
	got = ProportionTest(9, 100, 45, 100) // one cell below 10
	require.Equal(t, TestFisher, got.Name)
	require.Equal(t, 45.0, got.Statistic)
	require.InDelta(t, FisherExact(9, 100, 45, 100), got.PValue, 0)
}

func TestExceedance(t *testing.T) {
	bounds := []float64{10, 20, 40, inf}
	base := Histogram{Bounds: bounds, Counts: []float64{500, 300, 150, 50}}
	// The baseline's P95 (rank 950) lies in (20, 40]: 50 baseline and 100
	// candidate requests lie above 40.
	cand := Histogram{Bounds: bounds, Counts: []float64{400, 300, 200, 100}}
	got := Exceedance(base, cand, 0.95)
	require.Equal(t, 40.0, got.Edge)
	require.Equal(t, 20.0, got.Width)
	require.Equal(t, []float64{50, 1000, 100, 1000}, []float64{got.BaseAbove, got.BaseN, got.CandAbove, got.CandN})
	require.Equal(t, TestZ, got.Name)
	// pooled 0.075: z = 0.05/√(0.075·0.925·0.002) = 4.24476.
	require.InDelta(t, 4.244763599780089, got.Statistic, 1e-8)
	require.InDelta(t, normalSF(4.244763599780089), got.PValue, 1e-12)

	// The same candidate against itself: nothing to see.
	require.InDelta(t, 0.5, Exceedance(base, base, 0.95).PValue, 0.01)

	// Small counts use Fisher's exact test.
	small := Exceedance(Histogram{Bounds: bounds, Counts: []float64{10, 6, 3, 1}},
		Histogram{Bounds: bounds, Counts: []float64{8, 4, 4, 4}}, 0.95)
	require.Equal(t, TestFisher, small.Name)
	require.Equal(t, 40.0, small.Edge)
	require.InDelta(t, FisherExact(1, 20, 4, 20), small.PValue, 1e-15)

	// A baseline quantile in the +Inf bucket cannot be tested.
	top := Exceedance(Histogram{Bounds: bounds, Counts: []float64{1, 0, 0, 99}}, cand, 0.95)
	require.True(t, math.IsInf(top.Edge, 1))
	require.True(t, math.IsNaN(top.PValue))
	require.True(t, math.IsNaN(Exceedance(Histogram{Bounds: bounds, Counts: make([]float64, 4)}, cand, 0.95).PValue))
}

func TestMannWhitneyByHand(t *testing.T) {
	// Baseline requests in buckets 1, 1, 2; candidate in 2, 3, 3. Midranks
	// 1.5 (bucket 1), 3.5 (bucket 2), 5.5 (bucket 3); candidate rank sum
	// 14.5, U = 14.5 − 6 = 8.5; ties t = 2, 2, 2: σ² = 9/12·(7 − 18/30) =
	// 4.8; z = (8.5 − 4.5 − 0.5)/√4.8 = 1.59752, p = 0.0550745. R:
	// wilcox.test(c(2, 3, 3), c(1, 1, 2), alternative = "greater", exact =
	// FALSE) gives W = 8.5, p-value = 0.05507.
	bounds := []float64{1, 2, 3}
	got := MannWhitney(Histogram{Bounds: bounds, Counts: []float64{2, 1, 0}}, Histogram{Bounds: bounds, Counts: []float64{0, 1, 2}})
	require.Equal(t, TestMannWhitney, got.Name)
	require.InDelta(t, 8.5, got.U, 1e-12)
	require.InDelta(t, 8.5/9, got.Effect, 1e-12)
	require.InDelta(t, 1.5975241260567346, got.Statistic, 1e-12)
	require.InDelta(t, 0.05507446209297349, got.PValue, 1e-12)

	// All requests in one bucket: no information, p = 1.
	one := MannWhitney(Histogram{Bounds: bounds, Counts: []float64{0, 5, 0}}, Histogram{Bounds: bounds, Counts: []float64{0, 7, 0}})
	require.Equal(t, 1.0, one.PValue)
	require.Equal(t, 0.5, one.Effect)
	require.True(t, math.IsNaN(MannWhitney(Histogram{Bounds: bounds, Counts: make([]float64, 3)}, Histogram{Bounds: bounds, Counts: []float64{1, 2, 3}}).PValue))
}

// TestMannWhitneyBruteForce checks U and the tie-corrected variance against
// the definitions on every pair of individual requests.
func TestMannWhitneyBruteForce(t *testing.T) {
	bounds := []float64{1, 2, 4, 8, 16, inf}
	for _, tc := range [][2][]float64{
		{{3, 0, 5, 2, 0, 1}, {0, 4, 1, 6, 3, 0}},
		{{10, 10, 10, 0, 0, 0}, {0, 0, 10, 10, 10, 0}},
		{{1, 2, 3, 4, 5, 6}, {6, 5, 4, 3, 2, 1}},
		{{0, 0, 7, 0, 0, 0}, {0, 0, 6, 1, 0, 0}},
	} {
		b, c := Histogram{Bounds: bounds, Counts: tc[0]}, Histogram{Bounds: bounds, Counts: tc[1]}
		var bs, cs []int
		for i := range bounds {
			for range int(tc[0][i]) {
				bs = append(bs, i)
			}
			for range int(tc[1][i]) {
				cs = append(cs, i)
			}
		}
		u := 0.0
		for _, x := range cs {
			for _, y := range bs {
				switch {
				case x > y:
					u++
				case x == y:
					u += 0.5
				}
			}
		}
		nb, nc := float64(len(bs)), float64(len(cs))
		n := nb + nc
		ties := 0.0
		for i := range bounds {
			tt := tc[0][i] + tc[1][i]
			ties += tt*tt*tt - tt
		}
		sigma := math.Sqrt(nb * nc / 12 * (n + 1 - ties/(n*(n-1))))
		got := MannWhitney(b, c)
		require.InDelta(t, u, got.U, 1e-9)
		require.InDelta(t, (u-nb*nc/2-0.5)/sigma, got.Statistic, 1e-9)
		// Swapping the arms mirrors U.
		require.InDelta(t, nb*nc-u, MannWhitney(c, b).U, 1e-9)
	}
}

func TestSampleRatio(t *testing.T) {
	// R: chisq.test(c(470, 530)) gives X-squared = 3.6, p-value = 0.05778.
	got := SampleRatio(470, 530, 0.5)
	require.Equal(t, TestChiSquare, got.Name)
	require.InDelta(t, 3.6, got.Statistic, 1e-12)
	require.InDelta(t, 0.05777957112359724, got.PValue, 1e-12)
	// A 10 % canary that gets 10 %.
	require.InDelta(t, 1, SampleRatio(900, 100, 0.1).PValue, 1e-12)
	// One that gets 2 %: χ² = (20 − 100)²/100 + (980 − 900)²/900 = 71.1.
	got = SampleRatio(980, 20, 0.1)
	require.InDelta(t, 64+6400.0/900, got.Statistic, 1e-9)
	require.Less(t, got.PValue, 1e-15)
	require.True(t, math.IsNaN(SampleRatio(1, 1, 0).PValue))
	require.True(t, math.IsNaN(SampleRatio(1, 1, 1).PValue))
	require.True(t, math.IsNaN(SampleRatio(0, 0, 0.5).PValue))
}

package regress

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

var inf = math.Inf(1)

func TestHistogramValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Histogram
		ok   bool
	}{
		{"classic", Histogram{Bounds: []float64{1, 2, inf}, Counts: []float64{1, 0, 3}}, true},
		{"no +Inf", Histogram{Bounds: []float64{1, 2}, Counts: []float64{1, 0}}, true},
		{"zero bound", Histogram{Bounds: []float64{0, 2}, Counts: []float64{1, 0}}, true},
		{"negative count", Histogram{Bounds: []float64{1, inf}, Counts: []float64{-0.3, 1}}, true},
		{"empty", Histogram{}, false},
		{"length mismatch", Histogram{Bounds: []float64{1, inf}, Counts: []float64{1}}, false},
		{"not increasing", Histogram{Bounds: []float64{2, 1, inf}, Counts: []float64{1, 1, 1}}, false},
		{"duplicate bound", Histogram{Bounds: []float64{1, 1}, Counts: []float64{1, 1}}, false},
		{"negative bound", Histogram{Bounds: []float64{-1, 1}, Counts: []float64{1, 1}}, false},
		{"NaN bound", Histogram{Bounds: []float64{math.NaN(), 1}, Counts: []float64{1, 1}}, false},
		{"+Inf not last", Histogram{Bounds: []float64{inf, 1}, Counts: []float64{1, 1}}, false},
		{"NaN count", Histogram{Bounds: []float64{1, inf}, Counts: []float64{math.NaN(), 1}}, false},
		{"Inf count", Histogram{Bounds: []float64{1, inf}, Counts: []float64{inf, 1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.Validate()
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidHistogram)
		})
	}
}

func TestFromCumulativeAndTotal(t *testing.T) {
	h := FromCumulative([]float64{0.1, 0.2, 1, inf}, []float64{50, 70, 110, 120})
	require.Equal(t, []float64{50, 20, 40, 10}, h.Counts)
	require.Equal(t, 120.0, h.Total())
	// Non-monotonic cumulative counts are forced monotonic, as
	// histogram_quantile does.
	h = FromCumulative([]float64{1, 2, 3, inf}, []float64{5, 4, 6, 6})
	require.Equal(t, []float64{5, 0, 1, 0}, h.Counts)
	// A missing cumulative count makes the histogram invalid.
	h = FromCumulative([]float64{1, 2, inf}, []float64{5, math.NaN(), 6})
	require.Equal(t, []float64{5, 1}, []float64{h.Counts[0], h.Counts[2]})
	require.ErrorIs(t, h.Validate(), ErrInvalidHistogram)
	// Counts from increase() are rounded; negative ones count as zero.
	require.Equal(t, 3.0, Histogram{Bounds: []float64{1, 2, inf}, Counts: []float64{1.4, 1.6, -2}}.Total())
}

// The expected values are Prometheus's own: promql/promqltest/testdata/
// histograms.test, testhistogram{start="positive"} at 50m (cumulative 50,
// 70, 110, 120 at le 0.1, 0.2, 1, +Inf) and testhistogram2 at 7m.
func TestQuantilePrometheus(t *testing.T) {
	h := FromCumulative([]float64{0.1, 0.2, 1, inf}, []float64{50, 70, 110, 120})
	for _, tc := range []struct{ q, want float64 }{
		{0, 0},
		{0.2, 0.048},
		{0.5, 0.15},
		{0.8, 0.72},
		{1, 1}, // in the +Inf bucket: the last finite bound
	} {
		require.InDelta(t, tc.want, Quantile(h, tc.q), 1e-12, "q=%v", tc.q)
	}
	h2 := FromCumulative([]float64{0, 2, 4, 6, inf}, []float64{0, 1, 2, 3, 3})
	require.InDelta(t, 1, Quantile(h2, 1./6), 1e-12)
	require.InDelta(t, 3, Quantile(h2, 0.5), 1e-12)
	require.InDelta(t, 5, Quantile(h2, 5./6), 1e-12)

	require.True(t, math.IsInf(Quantile(h, -0.1), -1))
	require.True(t, math.IsInf(Quantile(h, 1.1), 1))
	require.True(t, math.IsNaN(Quantile(h, math.NaN())))
	require.True(t, math.IsNaN(Quantile(Histogram{}, 0.5)))
	require.True(t, math.IsNaN(Quantile(Histogram{Bounds: []float64{1, inf}, Counts: []float64{0, 0}}, 0.5)))
	require.True(t, math.IsNaN(Quantile(Histogram{Bounds: []float64{inf}, Counts: []float64{3}}, 0.5)))
	// Without a +Inf bucket (Prometheus would return NaN) the last bucket
	// interpolates like any other.
	require.InDelta(t, 1.5, Quantile(Histogram{Bounds: []float64{1, 2}, Counts: []float64{1, 1}}, 0.75), 1e-12)
}

func TestQuantileCI(t *testing.T) {
	h := Histogram{Bounds: []float64{10, 20, 30, 40, inf}, Counts: []float64{100, 200, 400, 200, 100}}
	for _, tc := range []struct {
		name    string
		h       Histogram
		q, conf float64
		want    Interval
	}{
		// n = 1000, q = 0.5: ranks ⌊500 − 1.96·15.81⌋ = 469 and ⌈530.99⌉ =
		// 531, both in (20, 30] (cumulative 300 … 700).
		{"one bucket", h, 0.5, 0.95, Interval{Low: 20, High: 30, ResolutionLimited: true}},
		// q = 0.7: ranks 671 (in (20, 30]) and 729 (in (30, 40]).
		{"two buckets", h, 0.7, 0.95, Interval{Low: 20, High: 40}},
		// q = 0.9: ranks 881 (in (30, 40]) and 919 (in the +Inf bucket).
		{"open end", h, 0.9, 0.95, Interval{Low: 30, High: inf}},
		// n = 4: rank ⌊2 − 1.96⌋ = 0 < 1 starts at 0; ⌈3.96⌉ = 4.
		{"small n", Histogram{Bounds: []float64{1, 2, 3, inf}, Counts: []float64{0, 2, 2, 0}}, 0.5, 0.95, Interval{Low: 0, High: 3}},
		// u = ⌈9.5 + 1.96·0.69⌉ = 11 > n = 10 is capped at the highest
		// populated bucket, (1, 2], which also holds rank ⌊8.15⌋ = 8.
		{"capped", Histogram{Bounds: []float64{1, 2, 3, inf}, Counts: []float64{5, 5, 0, 0}}, 0.95, 0.95, Interval{Low: 1, High: 2, ResolutionLimited: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := QuantileCI(tc.h, tc.q, tc.conf)
			require.Equal(t, tc.want, got)
			if p := Quantile(tc.h, tc.q); !math.IsNaN(p) {
				require.True(t, got.Low <= p && p <= got.High, "point estimate %v outside %v", p, got)
			}
		})
	}
	for _, bad := range []struct{ q, conf float64 }{{0, 0.95}, {1, 0.95}, {0.5, 0}, {0.5, 1}, {math.NaN(), 0.95}} {
		got := QuantileCI(h, bad.q, bad.conf)
		require.True(t, math.IsNaN(got.Low) && math.IsNaN(got.High), "%v", bad)
	}
	got := QuantileCI(Histogram{Bounds: []float64{1, inf}, Counts: []float64{0, 0}}, 0.5, 0.95)
	require.True(t, math.IsNaN(got.Low))
}

func TestRatioCI(t *testing.T) {
	base := Interval{Low: 100, High: 125}
	cand := Interval{Low: 150, High: 200, ResolutionLimited: true}
	require.Equal(t, Interval{Low: 1.2, High: 2, ResolutionLimited: true}, RatioCI(base, cand))
	got := RatioCI(Interval{Low: 0, High: inf}, Interval{Low: 1, High: 2})
	require.Equal(t, 0.0, got.Low)
	require.True(t, math.IsInf(got.High, 1))
}

func TestAlign(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Histogram
		want []Histogram
	}{
		{
			name: "same bounds are kept",
			in: []Histogram{
				{Bounds: []float64{1, 2, inf}, Counts: []float64{1.4, 2, 3}},
				{Bounds: []float64{1, 2, inf}, Counts: []float64{4, -1, 6}},
			},
			want: []Histogram{
				{Bounds: []float64{1, 2, inf}, Counts: []float64{1, 2, 3}},
				{Bounds: []float64{1, 2, inf}, Counts: []float64{4, 0, 6}},
			},
		},
		{
			// 2 lies inside the second histogram's populated (1, 2.5]: dropped.
			// 2.5 lies inside the first's empty (2, 3]: kept.
			name: "straddled bound dropped",
			in: []Histogram{
				{Bounds: []float64{1, 2, 3, inf}, Counts: []float64{1, 1, 0, 1}},
				{Bounds: []float64{1, 2.5, 3, inf}, Counts: []float64{1, 1, 1, 0}},
			},
			want: []Histogram{
				{Bounds: []float64{1, 2.5, 3, inf}, Counts: []float64{1, 1, 0, 1}},
				{Bounds: []float64{1, 2.5, 3, inf}, Counts: []float64{1, 1, 1, 0}},
			},
		},
		{
			// Sparse native-like windows over one grid: each is known to be
			// zero outside its range, so the union of edges survives.
			name: "disjoint windows",
			in: []Histogram{
				{Bounds: []float64{1, 2}, Counts: []float64{0, 3}},
				{Bounds: []float64{4, 8, inf}, Counts: []float64{0, 2, 1}},
			},
			want: []Histogram{
				{Bounds: []float64{1, 2, 4, 8, inf}, Counts: []float64{0, 3, 0, 0, 0}},
				{Bounds: []float64{1, 2, 4, 8, inf}, Counts: []float64{0, 0, 0, 2, 1}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, align(tc.in...))
		})
	}
	m := merge(Histogram{Bounds: []float64{1, 2, inf}, Counts: []float64{1, 2, 3}},
		Histogram{Bounds: []float64{1, 2, inf}, Counts: []float64{1, 1, 1}})
	require.Equal(t, []float64{2, 3, 4}, m.Counts)
}

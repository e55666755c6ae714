package regress

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

var (
	// ErrInvalidHistogram marks a histogram that Validate rejects.
	ErrInvalidHistogram = errors.New("invalid histogram")
	// ErrInvalidThresholds marks thresholds that Thresholds.Validate rejects.
	ErrInvalidThresholds = errors.New("invalid thresholds")
)

// Histogram is the binned latency distribution of one arm: Counts[i]
// requests took a time in (Bounds[i-1], Bounds[i]], with Bounds[-1] = 0.
//
// Bounds are non-negative and strictly increasing; only the last may be +Inf.
// A histogram whose last bound is finite claims that no request took longer.
// Counts are per bucket, not cumulative (see FromCumulative). They are
// float64 because they usually come from PromQL increase(); every function of
// this package rounds them to the nearest integer and treats negative values
// as zero.
//
// Classic buckets and native histograms use the same form. For a native
// histogram list every bucket from the lowest to the highest populated one
// (empty ones as zero), so that each bucket's lower edge is a bound, and give
// the zero bucket its threshold as bound. When two histograms that are
// compared have different bounds they are first merged onto the finest grid
// on which both are known exactly (see the package documentation); give both
// arms the same bounds to keep full resolution.
type Histogram struct {
	Bounds []float64
	Counts []float64
}

// FromCumulative builds a Histogram from cumulative bucket counts, as a
// Prometheus classic histogram exposes them (le buckets). Like
// histogram_quantile it forces the cumulative counts to be monotonic:
// a count below its predecessor (scrapes of different buckets at different
// times) is raised to it. A NaN count stays NaN in its bucket, so that
// Validate rejects the histogram.
func FromCumulative(bounds, cumulative []float64) Histogram {
	h := Histogram{Bounds: append([]float64(nil), bounds...), Counts: make([]float64, len(cumulative))}
	prev := 0.0
	for i, c := range cumulative {
		switch {
		case math.IsNaN(c):
			h.Counts[i] = c // missing data: Validate rejects it
			continue
		case c < prev:
			c = prev
		}
		h.Counts[i] = c - prev
		prev = c
	}
	return h
}

// Validate reports whether h is well formed: as many counts as bounds, at
// least one bucket, bounds non-negative and strictly increasing with +Inf
// only last, counts finite. Negative counts are allowed (they count as
// zero).
func (h Histogram) Validate() error {
	if len(h.Bounds) == 0 {
		return fmt.Errorf("%w: no buckets", ErrInvalidHistogram)
	}
	if len(h.Bounds) != len(h.Counts) {
		return fmt.Errorf("%w: %d bounds but %d counts", ErrInvalidHistogram, len(h.Bounds), len(h.Counts))
	}
	for i, b := range h.Bounds {
		switch {
		case math.IsNaN(b) || b < 0:
			return fmt.Errorf("%w: bound %d is %v", ErrInvalidHistogram, i, b)
		case math.IsInf(b, 1) && i != len(h.Bounds)-1:
			return fmt.Errorf("%w: bound %d is +Inf but not last", ErrInvalidHistogram, i)
		case i > 0 && b <= h.Bounds[i-1]:
			return fmt.Errorf("%w: bounds not increasing at %d (%v after %v)", ErrInvalidHistogram, i, b, h.Bounds[i-1])
		}
	}
	for i, c := range h.Counts {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return fmt.Errorf("%w: count %d is %v", ErrInvalidHistogram, i, c)
		}
	}
	return nil
}

// Total is the number of requests in h (rounded counts).
func (h Histogram) Total() float64 {
	t := 0.0
	for _, c := range h.Counts {
		t += roundCount(c)
	}
	return t
}

// roundCount rounds a count from increase() to the nearest integer, never
// negative; NaN counts as zero.
func roundCount(c float64) float64 {
	if !(c > 0) {
		return 0
	}
	return math.Round(c)
}

// clean returns h with rounded, non-negative counts. It does not modify h.
func clean(h Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: make([]float64, len(h.Counts))}
	for i, c := range h.Counts {
		out.Counts[i] = roundCount(c)
	}
	return out
}

// cumulative returns the running sums of counts.
func cumulative(counts []float64) []float64 {
	cum := make([]float64, len(counts))
	s := 0.0
	for i, c := range counts {
		s += c
		cum[i] = s
	}
	return cum
}

// lowerEdge is the lower edge of bucket i (0 for the first bucket).
func (h Histogram) lowerEdge(i int) float64 {
	if i == 0 {
		return 0
	}
	return h.Bounds[i-1]
}

// quantileBucket returns the bucket that holds the rank-th smallest request
// (the first bucket whose cumulative count reaches rank), as
// histogram_quantile finds it. cum is cumulative(h.Counts).
func quantileBucket(cum []float64, rank float64) int {
	i := sort.Search(len(cum), func(i int) bool { return cum[i] >= rank })
	if i == len(cum) {
		i = len(cum) - 1
	}
	return i
}

// Quantile estimates the q-quantile of h exactly as Prometheus's
// histogram_quantile does (promql/quantile.go, BucketQuantile): it finds the
// bucket holding rank q·n and interpolates linearly within it; a quantile in
// the +Inf bucket returns the bucket's lower edge (the last finite bound);
// a first bucket with a bound ≤ 0 returns that bound. It returns NaN for an
// empty histogram, -Inf for q < 0 and +Inf for q > 1. Unlike Prometheus it
// accepts a histogram without a +Inf bucket (nothing was slower than its
// last bound). Prometheus interpolates exponentially within native
// histogram buckets; with buckets ≤ 9 % wide the difference is negligible.
func Quantile(h Histogram, q float64) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	case len(h.Counts) == 0 || len(h.Bounds) != len(h.Counts):
		return math.NaN()
	}
	h = clean(h)
	cum := cumulative(h.Counts)
	n := cum[len(cum)-1]
	if n == 0 {
		return math.NaN()
	}
	rank := q * n
	last := len(h.Bounds) - 1
	search := len(cum)
	if math.IsInf(h.Bounds[last], 1) {
		search = last
	}
	b := sort.Search(search, func(i int) bool { return cum[i] >= rank })
	switch {
	case b == search: // only reachable with a +Inf bucket
		if last == 0 {
			return math.NaN()
		}
		return h.Bounds[last-1]
	case b == 0 && h.Bounds[0] <= 0:
		return h.Bounds[0]
	}
	start, end, count := 0.0, h.Bounds[b], cum[b]
	if b > 0 {
		start = h.Bounds[b-1]
		count -= cum[b-1]
		rank -= cum[b-1]
	}
	return start + (end-start)*(rank/count)
}

// Interval is a confidence interval for a quantile or a ratio of quantiles.
type Interval struct {
	Low, High float64
	// ResolutionLimited means both ends fell into one bucket: the interval
	// is that bucket, and finer buckets could have narrowed it.
	ResolutionLimited bool
}

// QuantileCI returns a distribution-free confidence interval at level conf
// (e.g. 0.95) for the q-quantile of the population h was sampled from.
//
// It is the order-statistic interval [X_(l), X_(u)] with the normal
// approximation to the binomial, l = ⌊nq − z·√(nq(1−q))⌋ and
// u = ⌈nq + z·√(nq(1−q))⌉, z = Φ⁻¹(1 − (1−conf)/2) (Conover, Practical
// Nonparametric Statistics, 3rd ed., §3.2; Hahn & Meeker, Statistical
// Intervals, §5.2). X_(l) lies in the bucket where the cumulative count
// reaches l, so the interval runs from that bucket's lower edge to the upper
// edge of the bucket of X_(u): bucket edges, never interpolated, so the
// coverage holds whatever the shape within a bucket. With l < 1 the interval
// starts at 0; with u > n it ends at the upper edge of the highest
// populated bucket (which may be +Inf). An empty histogram, q outside (0, 1)
// or conf outside (0, 1) yield NaN ends.
func QuantileCI(h Histogram, q, conf float64) Interval {
	nan := Interval{Low: math.NaN(), High: math.NaN()}
	if !(q > 0 && q < 1 && conf > 0 && conf < 1) || len(h.Counts) == 0 || len(h.Bounds) != len(h.Counts) {
		return nan
	}
	h = clean(h)
	cum := cumulative(h.Counts)
	n := cum[len(cum)-1]
	if n == 0 {
		return nan
	}
	z := NormalQuantile(1 - (1-conf)/2)
	sd := math.Sqrt(n * q * (1 - q))
	l := math.Floor(n*q - z*sd)
	u := math.Min(math.Ceil(n*q+z*sd), n)
	lo, low := 0, 0.0
	if l >= 1 {
		lo = quantileBucket(cum, l)
		low = h.lowerEdge(lo)
	}
	hi := quantileBucket(cum, u)
	return Interval{Low: low, High: h.Bounds[hi], ResolutionLimited: lo == hi}
}

// RatioCI combines intervals for a baseline and a candidate quantile into a
// conservative interval for candidate/baseline: [cand.Low/base.High,
// cand.High/base.Low]. If each input covers with probability ≥ 1−a/2 the
// result covers with probability ≥ 1−a (Bonferroni). It is resolution-limited
// when either input is.
func RatioCI(base, cand Interval) Interval {
	return Interval{
		Low:               safeDiv(cand.Low, base.High),
		High:              safeDiv(cand.High, base.Low),
		ResolutionLimited: base.ResolutionLimited || cand.ResolutionLimited,
	}
}

// safeDiv divides non-negative numbers, with x/0 = +Inf for x > 0 and
// 0/0 = NaN.
func safeDiv(a, b float64) float64 {
	if b == 0 && a > 0 {
		return math.Inf(1)
	}
	return a / b
}

// sameBound reports whether two bounds are equal up to float rounding (native
// bucket edges computed by different code paths).
func sameBound(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// align merges histograms onto one common grid: the finest set of bounds at
// which every histogram's cumulative count is known exactly. A bound of one
// histogram is kept unless another histogram has requests in a bucket that
// straddles it (then how many of those lie below it is unknown). If any input
// has a +Inf bucket the result has one, holding everything above the last
// kept finite bound. All inputs must be valid; the results are cleaned.
func align(hs ...Histogram) []Histogram {
	out := make([]Histogram, len(hs))
	for i, h := range hs {
		out[i] = clean(h)
	}
	if len(out) < 2 || identicalBounds(out) {
		return out
	}
	var edges []float64
	hasInf := false
	for _, h := range out {
		for _, b := range h.Bounds {
			if math.IsInf(b, 1) {
				hasInf = true
				continue
			}
			edges = append(edges, b)
		}
	}
	sort.Float64s(edges)
	unique := edges[:0]
	for _, e := range edges {
		if len(unique) == 0 || !sameBound(unique[len(unique)-1], e) {
			unique = append(unique, e)
		}
	}
	var bounds []float64
	for _, e := range unique {
		if knownEverywhere(out, e) {
			bounds = append(bounds, e)
		}
	}
	if hasInf {
		bounds = append(bounds, math.Inf(1))
	}
	for i, h := range out {
		cum := cumulative(h.Counts)
		total := cum[len(cum)-1]
		counts := make([]float64, len(bounds))
		prev := 0.0
		for j, b := range bounds {
			c := total
			if !math.IsInf(b, 1) {
				c = cumulativeAt(h, cum, b)
			}
			counts[j] = c - prev
			prev = c
		}
		out[i] = Histogram{Bounds: bounds, Counts: counts}
	}
	return out
}

func identicalBounds(hs []Histogram) bool {
	for _, h := range hs[1:] {
		if len(h.Bounds) != len(hs[0].Bounds) {
			return false
		}
		for j, b := range h.Bounds {
			if !sameBound(b, hs[0].Bounds[j]) {
				return false
			}
		}
	}
	return true
}

// knownEverywhere reports whether every histogram's cumulative count at e is
// known exactly.
func knownEverywhere(hs []Histogram, e float64) bool {
	for _, h := range hs {
		i := sort.Search(len(h.Bounds), func(i int) bool { return h.Bounds[i] >= e || sameBound(h.Bounds[i], e) })
		if i == len(h.Bounds) || sameBound(h.Bounds[i], e) {
			continue // beyond the last finite bound of h, or one of its bounds
		}
		if h.Counts[i] > 0 {
			return false // bucket i straddles e
		}
	}
	return true
}

// cumulativeAt returns the number of requests ≤ e in h, for an e at which
// knownEverywhere holds.
func cumulativeAt(h Histogram, cum []float64, e float64) float64 {
	i := sort.Search(len(h.Bounds), func(i int) bool { return h.Bounds[i] >= e || sameBound(h.Bounds[i], e) })
	switch {
	case i == len(h.Bounds):
		return cum[len(cum)-1]
	case sameBound(h.Bounds[i], e):
		return cum[i]
	case i == 0:
		return 0
	default:
		return cum[i-1]
	}
}

// merge sums histograms after aligning them.
func merge(hs ...Histogram) Histogram {
	al := align(hs...)
	out := Histogram{Bounds: al[0].Bounds, Counts: make([]float64, len(al[0].Counts))}
	for _, h := range al {
		for i, c := range h.Counts {
			out.Counts[i] += c
		}
	}
	return out
}

package regress

import "math"

// Names of the tests in TestResult.Name and Finding.Test.
const (
	TestFisher      = "fisher-exact"   // Statistic: the candidate's event count
	TestZ           = "two-proportion" // Statistic: pooled z
	TestMannWhitney = "mann-whitney"   // Statistic: continuity-corrected z
	TestChiSquare   = "chi-square"     // Statistic: χ² with 1 degree of freedom
)

// fisherBelow is the smallest cell count at which ProportionTest trusts the
// normal approximation; below it, it uses Fisher's exact test.
const fisherBelow = 10

// TestResult is the outcome of one hypothesis test.
type TestResult struct {
	Name      string
	Statistic float64
	PValue    float64
}

// FisherExact is the one-sided Fisher exact test that the candidate's
// proportion xCand/nCand is greater than the baseline's xBase/nBase. Given
// the table's margins the candidate's count is hypergeometric under the null
// hypothesis, and the p-value is P(X ≥ xCand) (Fisher 1935; R's
// fisher.test(alternative = "greater") on the table rbind(c(xCand,
// nCand−xCand), c(xBase, nBase−xBase))). Counts are rounded; NaN for
// impossible counts.
func FisherExact(xBase, nBase, xCand, nCand float64) float64 {
	xBase, nBase, xCand, nCand = roundCount(xBase), roundCount(nBase), roundCount(xCand), roundCount(nCand)
	if xBase > nBase || xCand > nCand {
		return math.NaN()
	}
	return hypergeomUpper(xCand, nBase+nCand, xBase+xCand, nCand)
}

// TwoProportionZ is the one-sided pooled two-proportion z-test that the
// candidate's proportion is greater than the baseline's: z = (p̂c − p̂b) /
// √(p̂(1−p̂)(1/nb + 1/nc)) with the pooled p̂, p = 1 − Φ(z). z² equals the
// statistic of R's prop.test(correct = FALSE). With no variance (both arms
// all or nothing) z = 0 and p = 1; NaN for an empty arm.
func TwoProportionZ(xBase, nBase, xCand, nCand float64) (z, p float64) {
	xBase, nBase, xCand, nCand = roundCount(xBase), roundCount(nBase), roundCount(xCand), roundCount(nCand)
	if nBase == 0 || nCand == 0 || xBase > nBase || xCand > nCand {
		return math.NaN(), math.NaN()
	}
	pooled := (xBase + xCand) / (nBase + nCand)
	v := pooled * (1 - pooled) * (1/nBase + 1/nCand)
	if v <= 0 {
		return 0, 1
	}
	z = (xCand/nCand - xBase/nBase) / math.Sqrt(v)
	return z, normalSF(z)
}

// ProportionTest tests one-sided whether the candidate's proportion of
// events is greater than the baseline's: Fisher's exact test when any cell
// of the 2×2 table is below 10, else the pooled two-proportion z-test.
func ProportionTest(xBase, nBase, xCand, nCand float64) TestResult {
	xBase, nBase, xCand, nCand = roundCount(xBase), roundCount(nBase), roundCount(xCand), roundCount(nCand)
	if math.Min(math.Min(xBase, nBase-xBase), math.Min(xCand, nCand-xCand)) < fisherBelow {
		return TestResult{Name: TestFisher, Statistic: xCand, PValue: FisherExact(xBase, nBase, xCand, nCand)}
	}
	z, p := TwoProportionZ(xBase, nBase, xCand, nCand)
	return TestResult{Name: TestZ, Statistic: z, PValue: p}
}

// ExceedanceResult is the outcome of the tail exceedance test.
type ExceedanceResult struct {
	TestResult
	// Edge is the upper edge of the baseline bucket holding its q-quantile.
	Edge float64
	// Width is that bucket's width: the resolution of the comparison.
	Width float64
	// BaseAbove and CandAbove count the requests above Edge in each arm of
	// BaseN and CandN.
	BaseAbove, BaseN, CandAbove, CandN float64
}

// Exceedance tests whether the candidate's tail beyond the baseline's
// q-quantile is heavier: with Edge the upper edge of the baseline bucket
// that holds its q-quantile, it compares the shares of requests above Edge
// one-sided with ProportionTest. It needs only bucket counts and targets the
// tail directly. The histograms are aligned first. When the baseline's
// q-quantile lies in the +Inf bucket (or an arm is empty) nothing can be
// tested: Edge is +Inf and PValue NaN.
func Exceedance(base, cand Histogram, q float64) ExceedanceResult {
	al := align(base, cand)
	b, c := al[0], al[1]
	r := ExceedanceResult{BaseN: b.Total(), CandN: c.Total(), Edge: math.Inf(1), Width: math.Inf(1)}
	r.Name, r.PValue, r.Statistic = TestFisher, math.NaN(), math.NaN()
	if r.BaseN == 0 || r.CandN == 0 || !(q > 0 && q < 1) {
		return r
	}
	cb, cc := cumulative(b.Counts), cumulative(c.Counts)
	i := quantileBucket(cb, q*r.BaseN)
	if math.IsInf(b.Bounds[i], 1) {
		return r
	}
	r.Edge, r.Width = b.Bounds[i], b.Bounds[i]-b.lowerEdge(i)
	r.BaseAbove, r.CandAbove = r.BaseN-cb[i], r.CandN-cc[i]
	r.TestResult = ProportionTest(r.BaseAbove, r.BaseN, r.CandAbove, r.CandN)
	return r
}

// MannWhitneyResult is the outcome of the Mann–Whitney U test.
type MannWhitneyResult struct {
	TestResult
	// U counts the (candidate, baseline) pairs in which the candidate
	// request is slower, ties counting ½.
	U float64
	// Effect is the common-language effect size U/(nb·nc) =
	// P(candidate > baseline) + ½·P(tie); 0.5 means no shift.
	Effect float64
	// BaseN and CandN are the arms' request counts.
	BaseN, CandN float64
}

// MannWhitney is the one-sided Mann–Whitney U (Wilcoxon rank-sum) test that
// candidate latencies are stochastically larger, on binned data. All
// requests in one bucket are ties and share a midrank; with the
// tie-corrected variance σ² = nb·nc/12 · [(N+1) − Σ(t³−t)/(N(N−1))] over
// the bucket sizes t and the continuity correction, z = (U − nb·nc/2 −
// ½)/σ and p = 1 − Φ(z), as R's wilcox.test(exact = FALSE, correct = TRUE)
// and SciPy's mannwhitneyu(method = "asymptotic") compute it (Lehmann,
// Nonparametrics, 1975, §1.4). The histograms are aligned first. Without
// variance (all requests in one bucket) z = 0 and p = 1; NaN for an empty
// arm. It detects shifts of the body; changes of spread or of the tail
// alone can leave U unchanged, hence the separate Exceedance test.
func MannWhitney(base, cand Histogram) MannWhitneyResult {
	al := align(base, cand)
	b, c := al[0], al[1]
	r := MannWhitneyResult{BaseN: b.Total(), CandN: c.Total()}
	r.Name = TestMannWhitney
	nb, nc := r.BaseN, r.CandN
	if nb == 0 || nc == 0 {
		r.Statistic, r.PValue, r.U, r.Effect = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return r
	}
	n := nb + nc
	below, ties := 0.0, 0.0
	for i := range b.Counts {
		r.U += c.Counts[i] * (below + b.Counts[i]/2)
		below += b.Counts[i]
		t := b.Counts[i] + c.Counts[i]
		ties += t * (t - 1) * (t + 1)
	}
	r.Effect = r.U / (nb * nc)
	v := nb * nc / 12 * ((n + 1) - ties/(n*(n-1)))
	if v <= 1e-9*nb*nc { // all in one bucket (up to rounding)
		r.Statistic, r.PValue = 0, 1
		return r
	}
	d := r.U - nb*nc/2 - 0.5 // continuity correction, as R and SciPy for "greater"
	r.Statistic = d / math.Sqrt(v)
	r.PValue = normalSF(r.Statistic)
	return r
}

// SampleRatio is the chi-square goodness-of-fit test (1 degree of freedom)
// of the arms' request counts against the expected candidate share of
// traffic: a sample-ratio mismatch often means crash-looping or unrouted
// candidate pods. χ² = Σ (observed − expected)²/expected over both arms
// (R's chisq.test(c(nBase, nCand), p = c(1−share, share))). NaN for a share
// outside (0, 1) or no traffic at all.
func SampleRatio(nBase, nCand, share float64) TestResult {
	nBase, nCand = roundCount(nBase), roundCount(nCand)
	n := nBase + nCand
	r := TestResult{Name: TestChiSquare, Statistic: math.NaN(), PValue: math.NaN()}
	if !(share > 0 && share < 1) || n == 0 {
		return r
	}
	ec, eb := n*share, n*(1-share)
	r.Statistic = (nCand-ec)*(nCand-ec)/ec + (nBase-eb)*(nBase-eb)/eb
	r.PValue = chiSquare1SF(r.Statistic)
	return r
}

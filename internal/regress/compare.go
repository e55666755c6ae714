package regress

import (
	"fmt"
	"math"
)

// Check names, in Finding.Check.
const (
	CheckP50     = "p50"     // body latency: Mann–Whitney U
	CheckP95     = "p95"     // tail latency: exceedance above the baseline's P95 bucket
	CheckP99     = "p99"     // far tail: exceedance above the baseline's P99 bucket
	CheckErrors  = "errors"  // error rate: two-proportion test
	CheckTraffic = "traffic" // sample-ratio mismatch (CompareService only)
)

// Verdict is the outcome of a comparison. The zero value is Inconclusive,
// so that a verdict nobody set never passes.
type Verdict int

// Verdicts.
const (
	// Inconclusive: not enough data for a pass, and no regression proven.
	Inconclusive Verdict = iota
	// Pass: every check had enough data and none found a regression.
	Pass
	// Regression: a check found a change both significant and large.
	Regression
)

// String returns "inconclusive", "pass" or "regression".
func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Regression:
		return "regression"
	case Inconclusive:
		return "inconclusive"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// MarshalText encodes the verdict as its String, for JSON and YAML reports.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Thresholds configure the decision rule. Latency thresholds are in the unit
// of the histogram bounds (milliseconds for spanwatch's metrics).
//
// This struct is the one list of the gate's numbers: its yaml keys are the
// config file's gate: section, and Fields derives from its tags the gate's
// flags (flag), their help (help), the valid ranges Validate checks (range,
// in interval notation) and the table of docs/gate.md. A nested Quantiles
// takes its flag and help from the parent's tags, with {q} replaced by the
// quantile's key and {Q} by its name (p50, P50).
type Thresholds struct {
	// Alpha is the family-wise error rate of the gated checks (Holm), spent
	// over the planned looks (LookAlpha). Default 0.01.
	Alpha float64 `yaml:"alpha" flag:"alpha" range:"(0,0.5)" help:"Family-wise error rate across the gated checks (Holm), spent over the looks."`
	// FDR is the false-discovery rate for per-operation findings
	// (Benjamini–Hochberg); they inform and do not gate. Default 0.05.
	FDR float64 `yaml:"fdr" flag:"fdr" range:"(0,1)" help:"False-discovery rate of the per-operation findings (Benjamini-Hochberg)."`
	// MinRatio holds the smallest candidate/baseline quantile ratios that
	// count as large. Defaults 1.10, 1.10, 1.20.
	MinRatio Quantiles `yaml:"min_ratio" flag:"min-ratio-{q}" range:"[1,inf)" help:"Smallest {Q} ratio (candidate/baseline) that counts as a regression."`
	// MinAbsChange is the smallest absolute quantile change that counts as
	// large; the width of the baseline bucket holding the quantile raises it
	// (a change within one bucket cannot be measured). Default 5 (ms).
	MinAbsChange float64 `yaml:"min_abs_change" flag:"min-abs-change" range:"[0,inf)" help:"Smallest absolute latency change (ms) that counts; at least one bucket width is always required too."`
	// ErrorRate holds the error-rate thresholds.
	ErrorRate ErrorRate `yaml:"error_rate"`
	// MinRequests holds the requests each arm needs before a check may pass:
	// about ten expected requests beyond the quantile. MinRequests.P50 also
	// applies to the error check. Defaults 30, 200, 1000.
	MinRequests Quantiles `yaml:"min_requests" flag:"min-requests-{q}" range:"[1,inf)" help:"Requests per arm needed before the {Q} check can pass (the P50 one also before the error check)."`
	// SRMAlpha is the significance level of the sample-ratio-mismatch test.
	// Default 0.001.
	SRMAlpha float64 `yaml:"srm_alpha" flag:"srm-alpha" range:"(0,0.5)" help:"Significance of the sample-ratio-mismatch check (with candidate share)."`
	// CandidateShare is the candidate's expected share of the service's
	// requests (0.2 for a 20 % canary): with it, a sample-ratio check tests
	// the arms' totals against that split, and a mismatch makes a pass
	// inconclusive. 0, the default, skips the check.
	CandidateShare float64 `yaml:"candidate_share" flag:"candidate-share" range:"[0,1)" help:"Expected share of traffic for the candidate (e.g. 0.2 for a 20 % canary); enables the sample-ratio check; 0 skips it."`
}

// Quantiles holds one number per gated quantile.
type Quantiles struct {
	P50 float64 `yaml:"p50"`
	P95 float64 `yaml:"p95"`
	P99 float64 `yaml:"p99"`
}

// ErrorRate holds the error-rate thresholds.
type ErrorRate struct {
	// MinIncrease is the smallest error-rate increase that counts as large,
	// as a fraction (0.005 = half a percentage point). Default 0.005.
	MinIncrease float64 `yaml:"min_increase" flag:"error-points" range:"[0,1)" help:"Smallest error-rate increase that counts (0.005 = 0.5 percentage points)."`
	// MinRatio is the smallest candidate/baseline error-rate ratio that
	// counts as large. Default 2.
	MinRatio float64 `yaml:"min_ratio" flag:"error-ratio" range:"[1,inf)" help:"Smallest error-rate ratio (candidate/baseline) that counts."`
}

// DefaultThresholds returns the defaults documented on Thresholds.
func DefaultThresholds() Thresholds {
	return Thresholds{
		Alpha:        0.01,
		FDR:          0.05,
		MinRatio:     Quantiles{P50: 1.10, P95: 1.10, P99: 1.20},
		MinAbsChange: 5,
		ErrorRate:    ErrorRate{MinIncrease: 0.005, MinRatio: 2},
		MinRequests:  Quantiles{P50: 30, P95: 200, P99: 1000},
		SRMAlpha:     0.001,
	}
}

// OffsetMinRatio holds offset mode's smallest quantile ratios: when the
// baseline is the same window earlier, the two windows hold different
// traffic (time of day, mix, neighbours), so a change has to be larger
// before it counts than between two versions in the same window.
var OffsetMinRatio = Quantiles{P50: 1.2, P95: 1.2, P99: 1.3}

// ForOffset returns t with the quantile ratios raised to at least offset
// mode's (OffsetMinRatio).
func (t Thresholds) ForOffset() Thresholds {
	t.MinRatio.P50 = max(t.MinRatio.P50, OffsetMinRatio.P50)
	t.MinRatio.P95 = max(t.MinRatio.P95, OffsetMinRatio.P95)
	t.MinRatio.P99 = max(t.MinRatio.P99, OffsetMinRatio.P99)
	return t
}

// Arm is one side of a comparison, measured over the same window: the
// baseline (stable version) or the candidate (new version).
type Arm struct {
	// Latency is the span-duration histogram (increase over the window).
	Latency Histogram
	// Requests is the number of calls in the window (the calls counter);
	// zero means unknown, and the histogram's total is used instead.
	Requests float64
	// Errors is the number of those calls with error status (0 when the
	// error series is absent). NaN or infinite counts make the comparison
	// inconclusive.
	Errors float64
}

// validate rejects counts that are not finite and invalid histograms; an
// arm without any histogram is valid (its latency checks lack data).
func (a Arm) validate() error {
	for _, c := range []struct {
		name string
		v    float64
	}{{"requests", a.Requests}, {"errors", a.Errors}} {
		if math.IsNaN(c.v) || math.IsInf(c.v, 0) {
			return fmt.Errorf("%s count is %v", c.name, c.v)
		}
	}
	if len(a.Latency.Bounds) == 0 && len(a.Latency.Counts) == 0 {
		return nil
	}
	if err := a.Latency.Validate(); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	return nil
}

// requestCount returns the arm's request count: Requests rounded, else the
// histogram's total.
func (a Arm) requestCount() float64 {
	if n := roundCount(a.Requests); n > 0 {
		return n
	}
	if len(a.Latency.Counts) == len(a.Latency.Bounds) {
		return a.Latency.Total()
	}
	return 0
}

// errorCount returns the arm's error count, rounded and at most its requests.
func (a Arm) errorCount() float64 { return math.Min(roundCount(a.Errors), a.requestCount()) }

// Finding is the evidence and verdict of one check. Quantities that cannot
// be computed (the quantile of an empty arm, the adjusted p-value of a check
// outside the family) are NaN, and ratios may be +Inf; fields that do not
// apply to a check are zero.
type Finding struct {
	// Check is CheckP50, CheckP95, CheckP99, CheckErrors or CheckTraffic.
	Check string
	// BaselineN and CandidateN are the requests each arm contributed.
	BaselineN, CandidateN float64
	// Baseline and Candidate are the arms' quantiles (as histogram_quantile
	// computes them, on the arms' common grid) or error rates; for traffic,
	// the expected and the observed candidate share of requests.
	Baseline, Candidate float64
	// Ratio is Candidate/Baseline, with an interval of level ≥ 1−Alpha:
	// for quantiles RatioCI of the arms' QuantileCI at 1−Alpha/2 each; for
	// errors the Katz log interval of the rate ratio; for traffic the Wilson
	// interval of the observed share over the expected one.
	Ratio, CILow, CIHigh float64
	// ResolutionLimited: the buckets are too coarse for a narrower quantile
	// interval.
	ResolutionLimited bool
	// Edge is the upper edge and Width the width of the baseline bucket
	// holding the quantile (latency checks). The tail checks count requests
	// above Edge; Width is the comparison's resolution. Width is +Inf when
	// the quantile lies in the +Inf bucket and cannot be tested.
	Edge, Width float64
	// BaselineEvents and CandidateEvents are the requests above Edge (p95,
	// p99) or the errors (errors).
	BaselineEvents, CandidateEvents float64
	// Effect is the common-language effect size of the p50 check:
	// P(candidate slower) + ½·P(tie), 0.5 meaning no shift.
	Effect float64
	// Test names the test (TestFisher, TestZ, TestMannWhitney,
	// TestChiSquare); Statistic is its statistic and PValue its raw
	// one-sided p-value (two-sided for traffic).
	Test      string
	Statistic float64
	PValue    float64
	// AdjustedP is the p-value adjusted over the family: Holm over the gated
	// checks in Compare and the service result; Benjamini–Hochberg over all
	// operations' gated checks in ServiceResult.Operations; unadjusted for
	// traffic.
	AdjustedP float64
	// Significant: AdjustedP is within the level available at this look.
	Significant bool
	// Large: the point estimates reach the practical thresholds: the
	// quantile ratio and an increase ≥ max(MinAbsChange, Width); for errors
	// +ErrorPoints and ×ErrorRatio.
	Large bool
	// BelowResolution: the change reaches the ratio and absolute
	// thresholds but not one bucket width, so these buckets cannot tell
	// whether it is large; if it is significant the check is inconclusive
	// rather than a pass.
	BelowResolution bool
	// ShiftSized: the quantile's bucket could not size the change, and the
	// scale change estimated from every bucket (Shift, see EstimateShift)
	// decided Large and BelowResolution instead: large when its estimate
	// reaches the ratio and MinAbsChange at the fitted quantile; not
	// excluded while its interval's upper end does.
	ShiftSized bool
	Shift      Shift
	// Enough: both arms have the requests this check needs, and it could
	// be tested. Only such checks are gated.
	Enough bool
	// Verdict of this check, and Reason, one sentence with the evidence.
	Verdict Verdict
	Reason  string
}

// Result is the outcome of comparing two arms.
type Result struct {
	Verdict Verdict
	// Reason is one sentence for humans.
	Reason string
	// Findings hold one entry per check, in the order p50, p95, p99, errors
	// (then traffic in a service result). When the comparison could not
	// start (no traffic, invalid input) they are empty, but for traffic.
	Findings []Finding
	// BaselineRequests and CandidateRequests are the arms' request counts.
	BaselineRequests, CandidateRequests float64
	// Alpha is the level available at this look (LookAlpha of
	// Thresholds.Alpha); Look is the look, normalized.
	Alpha float64
	Look  Look
}

// Compare compares a candidate arm with a baseline arm (one operation or a
// whole service) and decides:
//
//   - Regression if a gated check is significant after Holm's adjustment at
//     the look's level and practically large;
//   - Pass if every check had enough data and none may be a regression: no
//     point estimate reaches the practical thresholds, and no significant
//     change is too small for the buckets to size;
//   - Inconclusive otherwise, including no traffic in an arm and invalid
//     input. Missing data never passes.
func Compare(base, cand Arm, th Thresholds, look Look) Result {
	r, ok := evaluate(base, cand, th, look)
	if !ok {
		return r
	}
	p := make([]float64, len(r.Findings))
	for i, f := range r.Findings {
		p[i] = math.NaN()
		if f.Enough {
			p[i] = f.PValue
		}
	}
	for i, adj := range Holm(p) {
		judge(&r.Findings[i], adj, levels{look: r.Alpha, full: th.Alpha}, th)
	}
	summarize(&r, th)
	return r
}

// evaluate validates the input and runs every check, leaving the decision
// to judge. When the comparison cannot start, it returns a final
// Inconclusive result and false.
func evaluate(base, cand Arm, th Thresholds, look Look) (Result, bool) {
	look = look.normalize()
	r := Result{Verdict: Inconclusive, BaselineRequests: base.requestCount(), CandidateRequests: cand.requestCount(), Look: look}
	if err := th.Validate(); err != nil {
		r.Reason = "inconclusive: " + err.Error()
		return r, false
	}
	r.Alpha = LookAlpha(th.Alpha, look)
	for _, a := range []struct {
		name string
		arm  Arm
	}{{"baseline", base}, {"candidate", cand}} {
		if err := a.arm.validate(); err != nil {
			r.Reason = fmt.Sprintf("inconclusive: %s %v", a.name, err)
			return r, false
		}
	}
	switch {
	case r.BaselineRequests == 0 && r.CandidateRequests == 0:
		r.Reason = "inconclusive: no traffic in either arm"
		return r, false
	case r.CandidateRequests == 0:
		r.Reason = "inconclusive: no candidate traffic"
		return r, false
	case r.BaselineRequests == 0:
		r.Reason = "inconclusive: no baseline traffic"
		return r, false
	}
	var b, c Histogram
	if len(base.Latency.Bounds) > 0 && len(cand.Latency.Bounds) > 0 {
		al := align(base.Latency, cand.Latency)
		b, c = al[0], al[1]
	}
	// The scale change from every bucket, fitted once and only when a
	// quantile's bucket cannot size the change.
	var shift *Shift
	shiftOf := func() Shift {
		if shift == nil {
			s := EstimateShift(b, c, 1-th.Alpha)
			shift = &s
		}
		return *shift
	}
	r.Findings = []Finding{
		latencyFinding(CheckP50, 0.5, th.MinRequests.P50, th.MinRatio.P50, b, c, th, shiftOf),
		latencyFinding(CheckP95, 0.95, th.MinRequests.P95, th.MinRatio.P95, b, c, th, shiftOf),
		latencyFinding(CheckP99, 0.99, th.MinRequests.P99, th.MinRatio.P99, b, c, th, shiftOf),
		errorFinding(base, cand, th),
	}
	return r, true
}

// latencyFinding runs one quantile check on aligned histograms b and c
// (empty when an arm has no latency data); shift fits the scale change from
// every bucket when the quantile's bucket is too coarse.
func latencyFinding(check string, q, minN, minRatio float64, b, c Histogram, th Thresholds, shift func() Shift) Finding {
	f := Finding{Check: check, BaselineN: b.Total(), CandidateN: c.Total(), AdjustedP: math.NaN()}
	f.Baseline, f.Candidate = Quantile(b, q), Quantile(c, q)
	f.Ratio = safeDiv(f.Candidate, f.Baseline)
	conf := 1 - th.Alpha/2
	ci := RatioCI(QuantileCI(b, q, conf), QuantileCI(c, q, conf))
	f.CILow, f.CIHigh, f.ResolutionLimited = ci.Low, ci.High, ci.ResolutionLimited
	f.Edge, f.Width = math.NaN(), math.Inf(1)
	if f.BaselineN > 0 {
		i := quantileBucket(cumulative(b.Counts), q*f.BaselineN)
		f.Edge = b.Bounds[i]
		f.Width = b.Bounds[i] - b.lowerEdge(i)
	}
	if q == 0.5 {
		mw := MannWhitney(b, c)
		f.Test, f.Statistic, f.PValue, f.Effect = mw.Name, mw.Statistic, mw.PValue, mw.Effect
	} else {
		ex := Exceedance(b, c, q)
		f.Test, f.Statistic, f.PValue = ex.Name, ex.Statistic, ex.PValue
		f.BaselineEvents, f.CandidateEvents = ex.BaseAbove, ex.CandAbove
	}
	testable := !math.IsInf(f.Width, 1) && !math.IsNaN(f.PValue)
	delta := f.Candidate - f.Baseline
	f.Large = testable && f.Ratio >= minRatio && delta >= math.Max(th.MinAbsChange, f.Width)
	f.BelowResolution = testable && !f.Large && f.Ratio >= minRatio && delta >= th.MinAbsChange && delta < f.Width
	f.Enough = testable && math.Min(f.BaselineN, f.CandidateN) >= minN
	if f.Enough && !f.Large && delta < f.Width {
		// The bucket cannot size the change; every bucket may. (Without
		// enough requests the check is inconclusive whatever its size.)
		if s := shift(); s.Fits && (q == 0.5 || tailFits(s, f, c)) {
			baseQ := s.Quantile(q)
			// Large when the estimate reaches the threshold and its interval
			// excludes changes below half of it: the estimate is a model's,
			// so it must stand clear of no change on its own too.
			large := s.Ratio >= minRatio && s.Low >= 1+(minRatio-1)/2 && (s.Ratio-1)*baseQ >= th.MinAbsChange
			open := s.High >= minRatio && (s.High-1)*baseQ >= th.MinAbsChange
			f.ShiftSized, f.Shift = true, s
			f.Large = large
			f.BelowResolution = !large && (f.BelowResolution || open)
		}
		if !f.ShiftSized && f.CandidateN > 0 {
			// Neither the bucket nor every bucket sizes it: the change may be
			// as large as the buckets holding the two quantiles allow, so a
			// significant one is no pass.
			i := quantileBucket(cumulative(b.Counts), q*f.BaselineN)
			j := quantileBucket(cumulative(c.Counts), q*f.CandidateN)
			lo, hi := b.lowerEdge(i), c.Bounds[j]
			mayBeLarge := hi-lo >= th.MinAbsChange && (lo == 0 || hi/lo >= minRatio)
			f.BelowResolution = f.BelowResolution || mayBeLarge
		}
	}
	return f
}

// tailFits reports whether the candidate's requests above the tail check's
// edge are as many as the fitted scale model predicts: a tail that grew on
// its own (more requests beyond the edge than a scaled baseline has) refutes
// the model for this check even when the buckets as a whole fit it.
func tailFits(s Shift, f Finding, c Histogram) bool {
	if math.IsNaN(f.Edge) || math.IsInf(f.Edge, 0) {
		return false
	}
	above := 1 - NormalCDF((math.Log(f.Edge)-s.Mu-math.Log(s.Ratio))/s.Sigma)
	return poissonUpper(f.CandidateEvents, f.CandidateN*above) >= ShiftFitLevel
}

// poissonUpper is P(X ≥ k) for X ~ Poisson(lambda).
func poissonUpper(k, lambda float64) float64 {
	if k <= 0 {
		return 1
	}
	if lambda <= 0 {
		return 0
	}
	return 1 - gammaQ(k, lambda)
}

// errorFinding runs the error-rate check.
func errorFinding(base, cand Arm, th Thresholds) Finding {
	nb, nc := base.requestCount(), cand.requestCount()
	eb, ec := base.errorCount(), cand.errorCount()
	f := Finding{
		Check: CheckErrors, BaselineN: nb, CandidateN: nc, BaselineEvents: eb, CandidateEvents: ec,
		Baseline: eb / nb, Candidate: ec / nc, AdjustedP: math.NaN(),
	}
	f.Ratio, f.CILow, f.CIHigh = rateRatioCI(eb, nb, ec, nc, 1-th.Alpha)
	t := ProportionTest(eb, nb, ec, nc)
	f.Test, f.Statistic, f.PValue = t.Name, t.Statistic, t.PValue
	f.Large = f.Candidate > f.Baseline && f.Candidate-f.Baseline >= th.ErrorRate.MinIncrease && f.Candidate >= th.ErrorRate.MinRatio*f.Baseline
	f.Enough = !math.IsNaN(f.PValue) && math.Min(nb, nc) >= th.MinRequests.P50
	return f
}

// rateRatioCI returns the ratio of the candidate's to the baseline's rate
// with the Katz log interval at level conf: exp(ln RR ± z·√(1/xc − 1/nc +
// 1/xb − 1/nb)) (Katz et al. 1978). With a zero count ½ is added to each
// cell (Haldane–Anscombe) for the interval, whose end on the side of the
// zero is then open (0 or +Inf). Two zero rates give ratio 1 and (0, +Inf).
func rateRatioCI(xb, nb, xc, nc, conf float64) (ratio, lo, hi float64) {
	if nb == 0 || nc == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	if xb == 0 && xc == 0 {
		return 1, 0, math.Inf(1)
	}
	ratio = safeDiv(xc/nc, xb/nb)
	a, b, na, nbb := xc, xb, nc, nb
	if a == 0 || b == 0 {
		a, b, na, nbb = a+0.5, b+0.5, na+1, nbb+1
	}
	z := NormalQuantile(1 - (1-conf)/2)
	se := math.Sqrt(math.Max(0, 1/a-1/na+1/b-1/nbb))
	center := math.Log((a / na) / (b / nbb))
	lo, hi = math.Exp(center-z*se), math.Exp(center+z*se)
	switch {
	case xb == 0:
		hi = math.Inf(1)
	case xc == 0:
		lo = 0
	}
	return ratio, lo, hi
}

// levels are the significance levels of one look: look is what this look
// may spend (a regression needs it), full the level of a single-look
// analysis (a pass must not be contradicted by it).
type levels struct{ look, full float64 }

// judge sets the adjusted p-value, significance, the check's verdict and its
// reason. A check passes only when the data rule a regression out: a change
// whose point estimate is large stays inconclusive until it is significant
// (a regression) or more data shrinks it, whatever the look; a significant
// change that the buckets are too coarse to size (BelowResolution) is
// inconclusive too. So spending alpha over looks never makes a pass easier
// than in a single look, and enough requests alone never pass a change
// that may be a regression.
func judge(f *Finding, adjusted float64, lv levels, th Thresholds) {
	f.AdjustedP = adjusted
	f.Significant = f.Enough && lv.look > 0 && adjusted <= lv.look
	switch {
	case !f.Enough:
		f.Verdict = Inconclusive
	case f.Significant && f.Large:
		f.Verdict = Regression
	case f.Large:
		f.Verdict = Inconclusive
	case f.BelowResolution && adjusted <= lv.full:
		f.Verdict = Inconclusive
	default:
		f.Verdict = Pass
	}
	f.Reason = describe(*f, lv, th)
}

// summarize sets the overall verdict and reason from the judged findings:
// any regression fails, all passes pass, anything else is inconclusive.
func summarize(r *Result, th Thresholds) {
	var regressions, open []string
	all := len(r.Findings) > 0
	for _, f := range r.Findings {
		switch f.Verdict {
		case Regression:
			regressions = append(regressions, f.Reason)
		case Inconclusive:
			open = append(open, cause(f, th))
		}
		all = all && f.Verdict == Pass
	}
	switch {
	case len(regressions) > 0:
		r.Verdict, r.Reason = Regression, "regression: "+joinReasons(regressions)
	case all:
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("pass: no change is both significant and large (%s baseline, %s candidate requests)",
			fmtCount(r.BaselineRequests), fmtCount(r.CandidateRequests))
	default:
		r.Verdict, r.Reason = Inconclusive, "inconclusive: "+joinReasons(open)
	}
}

package regress

import (
	"fmt"
	"math"
	"strings"
)

// label is how reasons name a check.
func label(check string) string {
	switch check {
	case CheckP50, CheckP95, CheckP99:
		return strings.ToUpper(check)
	}
	return check
}

// describe renders a judged finding as one sentence: the evidence with
// its p-values (Evidence), then the verdict with its cause, e.g.
// "P95 122 → 245 ms (+100 %, CI +63 % … +150 %), p < 0.001: significant and large".
func describe(f Finding, lv levels, th Thresholds) string {
	return f.Evidence() + ": " + outcome(f, lv, th)
}

// Evidence renders what a finding measured and its p-values, without the
// verdict: "P95 122 → 245 ms (+100 %, CI +63 % … +150 %), p < 0.001
// (adjusted p < 0.001)".
func (f Finding) Evidence() string {
	var what string
	switch f.Check {
	case CheckErrors:
		what = fmt.Sprintf("errors %s → %s (%s/%s vs %s/%s; ×%s, CI %s … %s)",
			fmtRate(f.Baseline), fmtRate(f.Candidate),
			fmtCount(f.BaselineEvents), fmtCount(f.BaselineN), fmtCount(f.CandidateEvents), fmtCount(f.CandidateN),
			fmtRatio(f.Ratio), fmtRatio(f.CILow), fmtRatio(f.CIHigh))
	case CheckTraffic:
		what = fmt.Sprintf("candidate got %s of requests, expected %s (%s vs %s requests)",
			fmtRate(f.Candidate), fmtRate(f.Baseline), fmtCount(f.CandidateN), fmtCount(f.BaselineN))
	default:
		limited := ""
		if f.ResolutionLimited {
			limited = ", resolution-limited"
		}
		what = fmt.Sprintf("%s %s → %s ms (%s, CI %s … %s%s)", label(f.Check),
			fmtMs(f.Baseline), fmtMs(f.Candidate), fmtChange(f.Ratio), fmtChange(f.CILow), fmtChange(f.CIHigh), limited)
		if f.ShiftSized {
			what += fmt.Sprintf("; scale ×%s (CI ×%s … ×%s) from every bucket", fmtRatio(f.Shift.Ratio), fmtRatio(f.Shift.Low), fmtRatio(f.Shift.High))
		}
	}
	return what + ", " + fmtPValue(f)
}

// outcome says what the finding's verdict is and why.
func outcome(f Finding, lv levels, th Thresholds) string {
	if f.Check == CheckTraffic {
		if f.Significant {
			return "sample-ratio mismatch (crash-looping or unrouted candidate?)"
		}
		return "traffic split as expected"
	}
	switch {
	case f.Verdict == Regression:
		// The result's reason already says "regression: ", before the
		// findings that made it one.
		return "significant and large"
	case f.Verdict == Inconclusive:
		return "inconclusive, " + need(f, th)
	case f.Significant:
		return "no regression: significant but below " + largeRule(f, th)
	case f.Large:
		return fmt.Sprintf("no regression: large but not significant at α %s", fmtP(lv.full))
	}
	return "no regression"
}

// largeRule describes the practical-significance thresholds of a check.
func largeRule(f Finding, th Thresholds) string {
	width := f.Width
	if f.ShiftSized {
		width = 0 // sized from every bucket, not by one bucket's width
	}
	f.Width = width
	switch f.Check {
	case CheckErrors:
		return fmt.Sprintf("+%s and ×%s", fmtPoints(th.ErrorRate.MinIncrease), fmtRatio(th.ErrorRate.MinRatio))
	case CheckP50:
		return fmt.Sprintf("×%s and +%s ms", fmtRatio(th.MinRatio.P50), fmtMs(math.Max(th.MinAbsChange, f.Width)))
	case CheckP95:
		return fmt.Sprintf("×%s and +%s ms", fmtRatio(th.MinRatio.P95), fmtMs(math.Max(th.MinAbsChange, f.Width)))
	default:
		return fmt.Sprintf("×%s and +%s ms", fmtRatio(th.MinRatio.P99), fmtMs(math.Max(th.MinAbsChange, f.Width)))
	}
}

// need explains why a finding is inconclusive: it lacks data, cannot be
// tested, or is a large change not yet significant at this look's level.
func need(f Finding, th Thresholds) string {
	minN := th.MinRequests.P50
	switch f.Check {
	case CheckP95:
		minN = th.MinRequests.P95
	case CheckP99:
		minN = th.MinRequests.P99
	case CheckTraffic:
		return "no traffic"
	}
	switch {
	case f.Enough && f.BelowResolution && f.ShiftSized:
		return fmt.Sprintf("significant change whose scale (×%s, up to ×%s) may still be large: wait for more data",
			fmtRatio(f.Shift.Ratio), fmtRatio(f.Shift.High))
	case f.Enough && f.BelowResolution:
		return fmt.Sprintf("significant change of %s within one bucket (%s ms wide): too coarse to tell whether it is large; native histograms measure it",
			fmtChange(f.Ratio), fmtMs(f.Width))
	case f.Enough:
		return "large change not yet significant: wait for more data"
	case f.Check != CheckErrors && (f.BaselineN == 0 || f.CandidateN == 0):
		return "no latency data in an arm"
	case f.Check != CheckErrors && math.IsInf(f.Width, 1):
		return fmt.Sprintf("the baseline's %s lies in the +Inf bucket (above %s ms)", label(f.Check), fmtMs(f.Baseline))
	}
	return fmt.Sprintf("needs ≥ %s requests per arm (baseline %s, candidate %s)",
		fmtCount(minN), fmtCount(f.BaselineN), fmtCount(f.CandidateN))
}

// cause is the short form of an inconclusive finding for the overall reason.
func cause(f Finding, th Thresholds) string {
	if f.Check == CheckTraffic {
		return f.Reason
	}
	return label(f.Check) + " " + need(f, th)
}

func fmtPValue(f Finding) string {
	if math.IsNaN(f.PValue) {
		return "not testable"
	}
	s := "p " + fmtPRel(f.PValue)
	if !math.IsNaN(f.AdjustedP) && f.AdjustedP != f.PValue {
		s += " (adjusted p " + fmtPRel(f.AdjustedP) + ")"
	}
	return s
}

// fmtPRel renders "< 0.001" or "= 0.034".
func fmtPRel(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return "= " + fmtP(p)
}

func fmtP(p float64) string {
	if p < 0.001 {
		return fmt.Sprintf("%.1e", p)
	}
	return fmt.Sprintf("%.2g", p)
}

func fmtMs(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 0):
		return fmt.Sprintf("%v", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// fmtChange renders a ratio as a relative change: 1.38 → "+38 %".
func fmtChange(r float64) string {
	pct := (r - 1) * 100
	switch {
	case math.IsNaN(r):
		return "n/a"
	case math.IsInf(r, 1):
		return "+Inf %"
	case math.Abs(pct) >= 10:
		return fmt.Sprintf("%+.0f %%", pct)
	}
	return fmt.Sprintf("%+.1f %%", pct)
}

func fmtRatio(r float64) string {
	switch {
	case math.IsNaN(r):
		return "n/a"
	case math.IsInf(r, 1):
		return "∞"
	}
	return fmt.Sprintf("%.3g", r)
}

func fmtRate(r float64) string {
	if math.IsNaN(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f %%", 100*r)
}

func fmtPoints(p float64) string { return fmt.Sprintf("%.2g points", 100*p) }

func fmtCount(n float64) string { return fmt.Sprintf("%.0f", n) }

func joinReasons(rs []string) string { return strings.Join(rs, "; ") }

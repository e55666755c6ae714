package regress

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spanwatch/spanwatch/internal/field"
)

// lognormalArm returns an arm whose bucket counts are exactly n times the
// probabilities of a lognormal latency distribution (no sampling noise).
func lognormalArm(bounds []float64, n, median, sigma, errors float64) Arm {
	h := Histogram{Bounds: bounds, Counts: make([]float64, len(bounds))}
	prev := 0.0
	for i, b := range bounds {
		f := NormalCDF(math.Log(b/median) / sigma)
		h.Counts[i] = n * (f - prev)
		prev = f
	}
	return Arm{Latency: h, Requests: n, Errors: errors}
}

func finding(t *testing.T, r Result, check string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Check == check {
			return f
		}
	}
	t.Fatalf("no %s finding in %+v", check, r)
	return Finding{}
}

func TestCompare(t *testing.T) {
	classic := classicBounds()
	native := nativeBounds()
	arm := lognormalArm
	for _, tc := range []struct {
		name       string
		base, cand Arm
		th         func(*Thresholds)
		look       Look
		want       Verdict
		reason     string             // substring of Result.Reason
		checks     map[string]Verdict // per-check verdicts
	}{
		{
			name: "identical, plenty of data", want: Pass,
			base: arm(classic, 10000, 40, 0.6, 100), cand: arm(classic, 10000, 40, 0.6, 100),
			reason: "pass: no change is both significant and large (10000 baseline, 10000 candidate requests)",
			checks: map[string]Verdict{CheckP50: Pass, CheckP95: Pass, CheckP99: Pass, CheckErrors: Pass},
		},
		{
			name: "2x slower, native", want: Regression,
			base: arm(native, 10000, 40, 0.6, 0), cand: arm(native, 10000, 80, 0.6, 0),
			reason: "regression: P50 40.0 → 80.0 ms (+100 %",
			checks: map[string]Verdict{CheckP50: Regression, CheckP95: Regression, CheckP99: Regression, CheckErrors: Pass},
		},
		{
			name: "2x slower, classic", want: Regression,
			base: arm(classic, 10000, 40, 0.6, 0), cand: arm(classic, 10000, 80, 0.6, 0),
			checks: map[string]Verdict{CheckP50: Regression, CheckP95: Regression, CheckP99: Regression},
		},
		{
			name: "+20 %, native", want: Regression,
			base: arm(native, 10000, 40, 0.6, 0), cand: arm(native, 10000, 48, 0.6, 0),
			checks: map[string]Verdict{CheckP50: Regression, CheckP95: Regression},
		},
		{
			// The quantiles stay within one classic bucket (40 ms around the
			// median, 100 ms around P95), but every bucket edge sizes the
			// uniform scale change.
			name: "+20 %, classic: within one bucket, sized from every bucket: regression", want: Regression,
			base: arm(classic, 10000, 40, 0.6, 0), cand: arm(classic, 10000, 48, 0.6, 0),
			checks: map[string]Verdict{CheckP50: Regression, CheckP95: Regression},
			reason: "scale ×1.2",
		},
		{
			// A change of the spread is no scale change: the fit is refused
			// and the bucket rule stays, which cannot size it.
			name: "spread only, classic: the scale fit refuses: inconclusive, not a pass", want: Inconclusive,
			base: arm(classic, 10000, 40, 0.6, 0), cand: arm(classic, 10000, 40, 0.75, 0),
			reason: "too coarse to tell whether it is large",
		},
		{
			name: "+5 %, native: significant but small", want: Pass,
			base: arm(native, 100000, 40, 0.6, 0), cand: arm(native, 100000, 42, 0.6, 0),
		},
		{
			name: "20 requests", want: Inconclusive,
			base: arm(classic, 20, 40, 0.6, 0), cand: arm(classic, 20, 40, 0.6, 0),
			reason: "inconclusive: P50 needs ≥ 30 requests per arm (baseline 20, candidate 20); P95 needs ≥ 200",
			checks: map[string]Verdict{CheckP50: Inconclusive, CheckErrors: Inconclusive},
		},
		{
			name: "500 requests: P99 lacks data", want: Inconclusive,
			base: arm(native, 500, 40, 0.6, 0), cand: arm(native, 500, 40, 0.6, 0),
			reason: "inconclusive: P99 needs ≥ 1000 requests per arm (baseline 499, candidate 499)", // rounded bins
			checks: map[string]Verdict{CheckP50: Pass, CheckP95: Pass, CheckP99: Inconclusive, CheckErrors: Pass},
		},
		{
			name: "500 requests, 2x slower: regression proven without P99", want: Regression,
			base: arm(native, 500, 40, 0.6, 0), cand: arm(native, 500, 80, 0.6, 0),
			checks: map[string]Verdict{CheckP50: Regression, CheckP99: Inconclusive},
		},
		{
			name: "no candidate traffic", want: Inconclusive, reason: "inconclusive: no candidate traffic",
			base: arm(classic, 1000, 40, 0.6, 0), cand: Arm{Latency: Histogram{Bounds: classic, Counts: make([]float64, len(classic))}},
		},
		{
			name: "no baseline traffic", want: Inconclusive, reason: "inconclusive: no baseline traffic",
			base: Arm{}, cand: arm(classic, 1000, 40, 0.6, 0),
		},
		{
			name: "no traffic", want: Inconclusive, reason: "inconclusive: no traffic in either arm",
		},
		{
			name: "counters without histograms", want: Inconclusive, reason: "P50 no latency data in an arm",
			base: Arm{Requests: 5000}, cand: Arm{Requests: 5000},
			checks: map[string]Verdict{CheckP50: Inconclusive, CheckErrors: Pass},
		},
		{
			name: "invalid histogram", want: Inconclusive, reason: "candidate latency: invalid histogram: bounds not increasing",
			base: arm(classic, 1000, 40, 0.6, 0), cand: Arm{Latency: Histogram{Bounds: []float64{2, 1}, Counts: []float64{1, 1}}, Requests: 2},
		},
		{
			name: "missing error count", want: Inconclusive, reason: "inconclusive: candidate errors count is NaN",
			base: arm(classic, 10000, 40, 0.6, 0), cand: arm(classic, 10000, 40, 0.6, math.NaN()),
		},
		{
			name: "invalid thresholds", want: Inconclusive, reason: "invalid thresholds: alpha: must be in (0, 0.5), got 0",
			base: arm(classic, 10000, 40, 0.6, 0), cand: arm(classic, 10000, 80, 0.6, 0),
			th: func(th *Thresholds) { th.Alpha = 0 },
		},
		{
			name: "baseline P99 beyond the last bucket", want: Inconclusive,
			base: arm([]float64{10, 50, inf}, 10000, 40, 0.6, 0), cand: arm([]float64{10, 50, inf}, 10000, 40, 0.6, 0),
			reason: "P95 the baseline's P95 lies in the +Inf bucket (above 50.0 ms)",
		},
		{
			name: "error rate 0.1 % → 2 %", want: Regression, reason: "regression: errors 0.10 % → 2.00 % (10/10000 vs 200/10000; ×20",
			base: arm(native, 10000, 40, 0.6, 10), cand: arm(native, 10000, 40, 0.6, 200),
			checks: map[string]Verdict{CheckErrors: Regression, CheckP50: Pass},
		},
		{
			// 0/1000 vs 4/1000 is ×∞ and +0.4 points, but four errors are no
			// evidence: Fisher's p = 0.062.
			name: "a handful of errors", want: Pass,
			base: arm(native, 1002, 40, 0.6, 0), cand: arm(native, 1002, 40, 0.6, 4),
			checks: map[string]Verdict{CheckErrors: Pass},
		},
		{
			name: "error rate 1 % → 1.2 %: significant, not large", want: Pass,
			base: arm(native, 100000, 40, 0.6, 1000), cand: arm(native, 100000, 40, 0.6, 1200),
			checks: map[string]Verdict{CheckErrors: Pass},
		},
		{
			// Look 1 of 20 may spend only ~1e-30: a clear +15 % is
			// significant at α = 0.01 but not there, so it neither fails
			// nor passes yet.
			name: "+15 % at an early look", want: Inconclusive, look: Look{Index: 1, Total: 20},
			base: arm(native, 1000, 40, 0.6, 0), cand: arm(native, 1000, 46, 0.6, 0),
			reason: "large change not yet significant: wait for more data",
		},
		{
			name: "+15 % in a single look", want: Regression, look: Look{Index: 1, Total: 1},
			base: arm(native, 1000, 40, 0.6, 0), cand: arm(native, 1000, 46, 0.6, 0),
		},
		{
			name: "2x slower at an early look", want: Regression, look: Look{Index: 1, Total: 20},
			base: arm(native, 10000, 40, 0.6, 0), cand: arm(native, 10000, 80, 0.6, 0),
		},
		{
			name: "2x slower past the plan: no alpha left, never a pass", want: Inconclusive, look: Look{Index: 21, Total: 20},
			base: arm(native, 10000, 40, 0.6, 0), cand: arm(native, 10000, 80, 0.6, 0),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := DefaultThresholds()
			if tc.th != nil {
				tc.th(&th)
			}
			r := Compare(tc.base, tc.cand, th, tc.look)
			require.Equal(t, tc.want, r.Verdict, r.Reason)
			require.Contains(t, r.Reason, tc.reason)
			for check, want := range tc.checks {
				f := finding(t, r, check)
				require.Equal(t, want, f.Verdict, f.Reason)
			}
			for _, f := range r.Findings {
				require.Contains(t, f.Reason, map[Verdict]string{Pass: ": no regression", Regression: ": significant and large", Inconclusive: ": inconclusive"}[f.Verdict])
			}
		})
	}
}

func TestCompareFindingEvidence(t *testing.T) {
	native := nativeBounds()
	r := Compare(lognormalArm(native, 10000, 40, 0.6, 10), lognormalArm(native, 10000, 80, 0.6, 12), DefaultThresholds(), Look{})
	require.Equal(t, Regression, r.Verdict)
	require.Equal(t, 0.01, r.Alpha)
	require.Equal(t, Look{Index: 1, Total: 1}, r.Look)
	require.Equal(t, []string{CheckP50, CheckP95, CheckP99, CheckErrors}, []string{r.Findings[0].Check, r.Findings[1].Check, r.Findings[2].Check, r.Findings[3].Check})

	p95 := finding(t, r, CheckP95)
	require.Equal(t, TestZ, p95.Test)
	require.InDelta(t, 40*math.Exp(0.6*1.6448536), p95.Baseline, 0.01*p95.Baseline)
	require.InDelta(t, 2, p95.Ratio, 0.02)
	require.Less(t, p95.CILow, p95.Ratio)
	require.Greater(t, p95.CIHigh, p95.Ratio)
	require.False(t, p95.ResolutionLimited)
	require.Greater(t, p95.Edge, p95.Baseline)
	require.InDelta(t, p95.Edge*(1-math.Exp2(-1.0/8)), p95.Width, 1e-9)
	require.InDelta(t, 500, p95.BaselineEvents, 60)
	require.Greater(t, p95.CandidateEvents, 3000.0)
	require.True(t, p95.Significant && p95.Large && p95.Enough)
	require.LessOrEqual(t, p95.PValue, p95.AdjustedP)
	require.Regexp(t, `^P95 10\d → 21\d ms \(\+100 %, CI \+\d+ % … \+\d+ %\), p < 0\.001: significant and large$`, p95.Reason)

	p50 := finding(t, r, CheckP50)
	require.Equal(t, TestMannWhitney, p50.Test)
	require.InDelta(t, NormalCDF(math.Log(2)/(0.6*math.Sqrt2)), p50.Effect, 0.01) // P(X > Y) for lognormals

	errs := finding(t, r, CheckErrors)
	require.Equal(t, TestZ, errs.Test)
	require.Equal(t, []float64{10, 12}, []float64{errs.BaselineEvents, errs.CandidateEvents})
	require.InDelta(t, 1.2, errs.Ratio, 1e-12)
	require.False(t, errs.Large)
	require.Equal(t, Pass, errs.Verdict)

	// JSON reports carry the verdict as text.
	b, err := json.Marshal(struct{ V Verdict }{r.Verdict})
	require.NoError(t, err)
	require.JSONEq(t, `{"V":"regression"}`, string(b))
}

func TestCompareCounts(t *testing.T) {
	bounds := []float64{10, 50, 100, inf}
	h := Histogram{Bounds: bounds, Counts: []float64{100.4, 800.2, 99.6, 0}}
	// Requests unknown: the histogram's total is used. Errors are capped
	// at requests.
	r := Compare(Arm{Latency: h}, Arm{Latency: h, Errors: 5000}, DefaultThresholds(), Look{})
	require.Equal(t, 1000.0, r.BaselineRequests)
	require.Equal(t, 1000.0, r.CandidateRequests)
	e := finding(t, r, CheckErrors)
	require.Equal(t, 1.0, e.Candidate)
	require.Equal(t, Regression, r.Verdict)
}

func TestRateRatioCI(t *testing.T) {
	// Katz: 30/1000 vs 15/1000, RR = 2, se = √(1/30 − 1/1000 + 1/15 −
	// 1/1000) = 0.313050, 95 %: 2·exp(∓1.959964·0.313050) = 1.082834 …
	// 3.694011.
	ratio, lo, hi := rateRatioCI(15, 1000, 30, 1000, 0.95)
	require.InDelta(t, 2, ratio, 1e-12)
	require.InDelta(t, 1.082834, lo, 1e-6)
	require.InDelta(t, 3.694011, hi, 1e-6)
	ratio, lo, hi = rateRatioCI(0, 1000, 5, 1000, 0.95)
	require.True(t, math.IsInf(ratio, 1) && math.IsInf(hi, 1))
	require.Greater(t, lo, 0.0)
	ratio, lo, hi = rateRatioCI(5, 1000, 0, 1000, 0.95)
	require.Equal(t, []float64{0, 0}, []float64{ratio, lo})
	// Haldane: 0.5/1001 vs 5.5/1001, exp(ln(1/11) + 1.96·√(2 + 1/5.5 − 2/1001)).
	require.InDelta(t, math.Exp(math.Log(1.0/11)+NormalQuantile(0.975)*math.Sqrt(2+1/5.5-2.0/1001)), hi, 1e-12)
	ratio, lo, hi = rateRatioCI(0, 1000, 0, 1000, 0.95)
	require.Equal(t, 1.0, ratio)
	require.Equal(t, 0.0, lo)
	require.True(t, math.IsInf(hi, 1))
}

func TestVerdict(t *testing.T) {
	var zero Verdict
	require.Equal(t, Inconclusive, zero, "a verdict nobody set must not pass")
	require.Equal(t, "pass", Pass.String())
	require.Equal(t, "regression", Regression.String())
	require.Equal(t, "inconclusive", Inconclusive.String())
	require.Equal(t, "Verdict(7)", Verdict(7).String())
}

func TestThresholdsValidate(t *testing.T) {
	require.NoError(t, DefaultThresholds().Validate())
	for key, mod := range map[string]func(*Thresholds){
		"alpha":                   func(t *Thresholds) { t.Alpha = 0.5 },
		"fdr":                     func(t *Thresholds) { t.FDR = 0 },
		"srm_alpha":               func(t *Thresholds) { t.SRMAlpha = -1 },
		"min_ratio.p50":           func(t *Thresholds) { t.MinRatio.P50 = 0.9 },
		"min_ratio.p99":           func(t *Thresholds) { t.MinRatio.P99 = math.NaN() },
		"error_rate.min_ratio":    func(t *Thresholds) { t.ErrorRate.MinRatio = 0.5 },
		"min_abs_change":          func(t *Thresholds) { t.MinAbsChange = -1 },
		"error_rate.min_increase": func(t *Thresholds) { t.ErrorRate.MinIncrease = 1 },
		"min_requests.p50":        func(t *Thresholds) { t.MinRequests.P50 = 0 },
		"min_requests.p99":        func(t *Thresholds) { t.MinRequests.P99 = math.Inf(1) },
		"candidate_share":         func(t *Thresholds) { t.CandidateShare = 1 },
	} {
		th := DefaultThresholds()
		mod(&th)
		err := th.Validate()
		require.ErrorIs(t, err, ErrInvalidThresholds, key)
		var fe *field.Error
		require.ErrorAs(t, err, &fe, key)
		require.Equal(t, key, fe.Path)
		require.Contains(t, fe.Err.Error(), "must be ", key)
	}
}

// TestThresholdFields: every number has a unique key and flag, a help text
// and a range its default lies in; Fields points into its receiver.
func TestThresholdFields(t *testing.T) {
	th := DefaultThresholds()
	fs := th.Fields()
	require.Len(t, fs, 13)
	keys, flags := map[string]bool{}, map[string]bool{}
	for _, f := range fs {
		require.False(t, keys[f.Key], f.Key)
		require.False(t, flags[f.Flag], f.Flag)
		keys[f.Key], flags[f.Flag] = true, true
		require.NotEmpty(t, f.Help, f.Key)
		require.NotContains(t, f.Help+f.Flag, "{", f.Key)
		require.NoError(t, f.check(*f.Value), f.Key)
	}
	require.Equal(t, "min_ratio.p95", fs[3].Key)
	require.Equal(t, "min-ratio-p95", fs[3].Flag)
	require.Contains(t, fs[3].Help, "P95")
	*fs[3].Value = 7
	require.Equal(t, 7.0, th.MinRatio.P95)
	other := Thresholds{}
	for i, f := range other.Fields() {
		require.Equal(t, fs[i].Key, f.Key)
	}
	require.Equal(t, "(0, 0.5)", fs[0].RangeText())
	require.Equal(t, "≥ 1", fs[2].RangeText())
}

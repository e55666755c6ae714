package regress

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Operation is one operation (span name) of a service, with both arms.
type Operation struct {
	Name       string
	Base, Cand Arm
}

// OperationResult is the result for one operation. Its findings carry
// Benjamini–Hochberg adjusted p-values over all operations' checks, and its
// verdict uses significance at the false-discovery rate Thresholds.FDR
// (spent over looks in proportion to Alpha): the list of what looks
// regressed. An operation fails the gate only through Gates.
type OperationResult struct {
	Name string
	Result
	// Impact ranks operations: the larger of the P50 and P95 increases
	// (never negative) times the candidate's requests, the extra time the
	// change costs in the window, so that busy endpoints come first.
	Impact float64
	// Gates is set when one of the operation's checks is a regression at
	// the family-wise level: significant after Holm's adjustment over the
	// service's and every operation's checks at the look's α, and large. It
	// fails the gate even when the service as a whole does not move. A
	// service's only operation gates exactly when the service regressed.
	Gates bool
}

// ServiceResult is the gate's outcome for a service.
type ServiceResult struct {
	// Verdict decides the gate: Regression when the service as a whole or
	// an operation (OperationResult.Gates) regressed, else the service's
	// verdict (Service.Verdict). Operations never block a pass otherwise: a
	// low-traffic operation that cannot reach its minimum requests does
	// not hold the service's verdict back.
	Verdict Verdict
	// Reason is one sentence: the service's reason, plus the operations
	// that look regressed.
	Reason string
	// Service compares the arms summed over all operations, with Holm over
	// its checks, plus the traffic check when the expected share is known.
	Service Result
	// Operations are ordered regressions first, then by Impact, then Name.
	Operations []OperationResult
}

// CompareService compares a service's candidate with its baseline as a
// whole (summing all operations) and per operation. The service result
// gates: its checks are Holm-adjusted at the look's level (see Compare).
// Per-operation findings explain it, with Benjamini–Hochberg adjusted
// p-values across operations and checks.
//
// Thresholds.CandidateShare is the share of the service's requests the
// candidate should get (0.1 for a 10 % canary); when it is in (0, 1) a
// traffic check tests the split (sample-ratio mismatch at
// Thresholds.SRMAlpha), and a mismatch makes a pass inconclusive. 0 means
// unknown and skips the check.
func CompareService(ops []Operation, th Thresholds, look Look) ServiceResult {
	expectedCandidateShare := th.CandidateShare
	if err := th.Validate(); err != nil {
		r := Result{Reason: "inconclusive: " + err.Error(), Look: look.normalize()}
		return ServiceResult{Verdict: Inconclusive, Reason: r.Reason, Service: r}
	}
	if len(ops) == 0 {
		r := Result{Reason: "inconclusive: no operations", Look: look.normalize(), Alpha: LookAlpha(th.Alpha, look)}
		return ServiceResult{Verdict: Inconclusive, Reason: r.Reason, Service: r}
	}
	base, cand, err := serviceArms(ops)
	var (
		svc    Result
		family bool // the service's and the operations' checks form one Holm family
	)
	switch {
	case err != nil:
		svc = Result{Reason: "inconclusive: " + err.Error(), Look: look.normalize(), Alpha: LookAlpha(th.Alpha, look),
			BaselineRequests: base.Requests, CandidateRequests: cand.Requests}
	case len(ops) == 1:
		// One operation is the service: one family of checks.
		svc = Compare(base, cand, th, look)
	default:
		svc, family = evaluate(base, cand, th, look)
	}
	opResults := compareOperations(ops, th, look)
	if family {
		judgeFamily(&svc, opResults, th)
	}
	if expectedCandidateShare > 0 && expectedCandidateShare < 1 {
		tf := trafficFinding(svc.BaselineRequests, svc.CandidateRequests, expectedCandidateShare, th)
		svc.Findings = append(svc.Findings, tf)
		if len(svc.Findings) > 1 {
			summarize(&svc, th) // the checks ran: decide again with the traffic check
		} else if tf.Significant {
			svc.Reason += "; " + tf.Reason // already inconclusive: add the evidence
		}
	}
	single := len(ops) == 1 && len(opResults) == 1
	if single {
		// The operation is the service: its family is the service's.
		opResults[0].Gates = svc.Verdict == Regression
	}
	res := ServiceResult{Verdict: svc.Verdict, Service: svc, Operations: opResults}
	res.Reason = svc.Reason
	var gating, flagged []string
	for _, o := range res.Operations {
		switch {
		case o.Gates:
			gating = append(gating, o.Name+": "+joinReasons(gatingReasons(o)))
		case o.Verdict == Regression:
			flagged = append(flagged, o.Name)
		}
	}
	if len(gating) > 0 && !single {
		if svc.Verdict == Regression {
			res.Reason += "; operations: " + strings.Join(gating, "; ")
		} else {
			res.Verdict = Regression
			res.Reason = "regression in operation " + strings.Join(gating, "; operation ") +
				" (the service as a whole: " + svc.Reason + ")"
		}
	}
	switch {
	case len(flagged) == 1:
		res.Reason += fmt.Sprintf("; operation that looks regressed (FDR %s) but is not significant family-wise: %s", fmtP(th.FDR), flagged[0])
	case len(flagged) > 1:
		res.Reason += fmt.Sprintf("; operations that look regressed (FDR %s) but are not significant family-wise: %s", fmtP(th.FDR), strings.Join(flagged, ", "))
	}
	return res
}

// judgeFamily decides the service's checks and marks the operations that
// gate, with Holm's adjustment over the service's and every operation's
// checks together: the family-wise error rate of the whole gate stays at
// the look's α however many operations there are.
func judgeFamily(svc *Result, ops []OperationResult, th Thresholds) {
	var p []float64
	for _, f := range svc.Findings {
		p = append(p, enoughP(f))
	}
	for _, o := range ops {
		for _, f := range o.Findings {
			p = append(p, enoughP(f))
		}
	}
	adj := Holm(p)
	lv := levels{look: svc.Alpha, full: th.Alpha}
	for i := range svc.Findings {
		judge(&svc.Findings[i], adj[i], lv, th)
	}
	summarize(svc, th)
	k := len(svc.Findings)
	for i := range ops {
		for _, f := range ops[i].Findings {
			if f.Enough && f.Large && adj[k] <= lv.look {
				ops[i].Gates = true
			}
			k++
		}
	}
}

// enoughP is a finding's raw p-value, or NaN (outside every family) when
// the check lacked data.
func enoughP(f Finding) float64 {
	if !f.Enough {
		return math.NaN()
	}
	return f.PValue
}

// gatingReasons are the reasons of an operation's regressed checks.
func gatingReasons(o OperationResult) []string {
	var out []string
	for _, f := range o.Findings {
		if f.Verdict == Regression {
			out = append(out, f.Reason)
		}
	}
	if len(out) == 0 {
		// Significant family-wise but not at the FDR level cannot happen
		// (BH adjusts less than Holm, and FDR ≥ α); say so rather than nothing.
		out = append(out, "a check is significant family-wise and large")
	}
	return out
}

// serviceArms sums the operations' arms. Operations without latency data
// contribute only requests and errors; an invalid histogram is an error, so
// that partial data never passes.
func serviceArms(ops []Operation) (base, cand Arm, err error) {
	var hb, hc []Histogram
	for _, o := range ops {
		for _, a := range []struct {
			side string
			arm  Arm
			sum  *Arm
			hs   *[]Histogram
		}{{"baseline", o.Base, &base, &hb}, {"candidate", o.Cand, &cand, &hc}} {
			if verr := a.arm.validate(); verr != nil {
				if err == nil {
					err = fmt.Errorf("operation %q %s %w", o.Name, a.side, verr)
				}
				continue
			}
			a.sum.Requests += a.arm.requestCount()
			a.sum.Errors += a.arm.errorCount()
			if h := a.arm.Latency; len(h.Bounds) > 0 {
				*a.hs = append(*a.hs, h)
			}
		}
	}
	if err != nil || len(hb) == 0 || len(hc) == 0 {
		return base, cand, err
	}
	// Align both arms together so that they share one grid.
	all := merge2(hb, hc)
	base.Latency, cand.Latency = all[0], all[1]
	return base, cand, nil
}

// merge2 aligns every histogram of both arms onto one grid and sums each
// arm.
func merge2(hb, hc []Histogram) [2]Histogram {
	al := align(append(append([]Histogram(nil), hb...), hc...)...)
	var out [2]Histogram
	for k := range out {
		out[k] = Histogram{Bounds: al[0].Bounds, Counts: make([]float64, len(al[0].Bounds))}
	}
	for i, h := range al {
		k := 0
		if i >= len(hb) {
			k = 1
		}
		for j, c := range h.Counts {
			out[k].Counts[j] += c
		}
	}
	return out
}

// compareOperations evaluates every operation and adjusts the gated checks
// of all of them together with Benjamini–Hochberg.
func compareOperations(ops []Operation, th Thresholds, look Look) []OperationResult {
	out := make([]OperationResult, len(ops))
	ok := make([]bool, len(ops))
	var p []float64
	for i, o := range ops {
		out[i].Name = o.Name
		out[i].Result, ok[i] = evaluate(o.Base, o.Cand, th, look)
		for _, f := range out[i].Findings {
			if f.Enough {
				p = append(p, f.PValue)
			}
		}
	}
	adj := BenjaminiHochberg(p)
	// The FDR is spent over looks in the same proportion as alpha.
	lv := levels{look: th.FDR * LookAlpha(th.Alpha, look) / th.Alpha, full: th.FDR}
	k := 0
	for i := range out {
		if !ok[i] {
			continue
		}
		for j := range out[i].Findings {
			f := &out[i].Findings[j]
			a := math.NaN()
			if f.Enough {
				a = adj[k]
				k++
			}
			judge(f, a, lv, th)
		}
		summarize(&out[i].Result, th)
		out[i].Impact = impact(out[i].Findings, out[i].CandidateRequests)
	}
	sort.SliceStable(out, func(a, b int) bool {
		ra, rb := out[a].Verdict == Regression, out[b].Verdict == Regression
		if ra != rb {
			return ra
		}
		if out[a].Impact != out[b].Impact {
			return out[a].Impact > out[b].Impact
		}
		return out[a].Name < out[b].Name
	})
	return out
}

// impact is the larger of the P50 and P95 increases times the candidate's
// requests.
func impact(fs []Finding, requests float64) float64 {
	d := 0.0
	for _, f := range fs {
		if f.Check == CheckP50 || f.Check == CheckP95 {
			if c := f.Candidate - f.Baseline; c > d {
				d = c
			}
		}
	}
	return d * requests
}

// trafficFinding runs the sample-ratio-mismatch check.
func trafficFinding(nb, nc, share float64, th Thresholds) Finding {
	n := nb + nc
	t := SampleRatio(nb, nc, share)
	f := Finding{
		Check: CheckTraffic, BaselineN: nb, CandidateN: nc, Baseline: share, Candidate: nc / n,
		Test: t.Name, Statistic: t.Statistic, PValue: t.PValue, AdjustedP: t.PValue, Enough: n > 0,
	}
	f.Ratio = f.Candidate / share
	lo, hi := wilson(nc, n, 1-th.SRMAlpha)
	f.CILow, f.CIHigh = lo/share, hi/share
	f.Significant = f.Enough && t.PValue <= th.SRMAlpha
	f.Large = f.Significant
	f.Verdict = Pass
	if !f.Enough || f.Significant {
		f.Verdict = Inconclusive
	}
	f.Reason = describe(f, levels{look: th.SRMAlpha, full: th.SRMAlpha}, th)
	return f
}

// wilson is the Wilson score interval for a proportion x/n at level conf
// (Wilson 1927).
func wilson(x, n, conf float64) (lo, hi float64) {
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	z := NormalQuantile(1 - (1-conf)/2)
	p, z2 := x/n, z*z
	center := (p + z2/(2*n)) / (1 + z2/n)
	half := z / (1 + z2/n) * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return math.Max(0, center-half), math.Min(1, center+half)
}

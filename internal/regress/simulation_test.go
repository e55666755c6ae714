package regress

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// Simulation-style property tests: latencies are lognormal (median 40 ms,
// σ 0.6) drawn with a fixed seed and binned into spanwatch's default
// classic buckets or native-like buckets (growth 2^(1/8)).

const (
	simMedian = 40.0
	simSigma  = 0.6
)

// drawArm draws n requests, slowed down by the factor slow, each an error
// with probability errRate.
func drawArm(r *rand.Rand, bounds []float64, n int, slow, errRate float64) Arm {
	a := Arm{Latency: Histogram{Bounds: bounds, Counts: make([]float64, len(bounds))}, Requests: float64(n)}
	addRequests(r, &a, n, slow, errRate)
	return a
}

func addRequests(r *rand.Rand, a *Arm, n int, slow, errRate float64) {
	for range n {
		v := simMedian * math.Exp(simSigma*r.NormFloat64()) * slow
		a.Latency.Counts[sort.SearchFloat64s(a.Latency.Bounds, v)]++
		if r.Float64() < errRate {
			a.Errors++
		}
	}
	a.Requests += float64(n)
}

type simOutcome struct {
	runs, pass, regression, inconclusive int
	lowP                                 map[string]int // raw p < 0.05 per check
}

func (o simOutcome) rate(v Verdict) float64 {
	n := map[Verdict]int{Pass: o.pass, Regression: o.regression, Inconclusive: o.inconclusive}[v]
	return float64(n) / float64(o.runs)
}

func simulate(seed uint64, runs int, bounds []float64, n int, slow, baseErr, candErr float64) simOutcome {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	th := DefaultThresholds()
	o := simOutcome{runs: runs, lowP: map[string]int{}}
	for range runs {
		res := Compare(drawArm(r, bounds, n, 1, baseErr), drawArm(r, bounds, n, slow, candErr), th, Look{})
		switch res.Verdict {
		case Pass:
			o.pass++
		case Regression:
			o.regression++
		default:
			o.inconclusive++
		}
		for _, f := range res.Findings {
			if f.PValue < 0.05 {
				o.lowP[f.Check]++
			}
		}
	}
	return o
}

func TestSimulationVerdicts(t *testing.T) {
	const runs = 200
	// A/A may fail at most α = 1 % of runs; with 200 runs allow 2 % for
	// sampling noise (P(Binomial(200, 0.01) > 4) ≈ 5 %; the seed is fixed).
	const aaMax = 0.02
	for _, tc := range []struct {
		name             string
		bounds           []float64
		n                int
		slow             float64
		baseErr, candErr float64
		check            func(t *testing.T, o simOutcome)
	}{
		{"A/A classic 10k", classicBounds(), 10000, 1, 0.01, 0.01, func(t *testing.T, o simOutcome) {
			require.LessOrEqual(t, o.rate(Regression), aaMax)
			require.GreaterOrEqual(t, o.rate(Pass), 0.95)
		}},
		{"A/A native 10k", nativeBounds(), 10000, 1, 0.01, 0.01, func(t *testing.T, o simOutcome) {
			require.LessOrEqual(t, o.rate(Regression), aaMax)
			require.GreaterOrEqual(t, o.rate(Pass), 0.95)
		}},
		{"A/A native 1k", nativeBounds(), 1000, 1, 0.01, 0.01, func(t *testing.T, o simOutcome) {
			// Small samples: "large" is easy to reach by chance, so only
			// significance (Holm at 1 %) protects.
			require.LessOrEqual(t, o.rate(Regression), aaMax)
		}},
		{"A/A classic 10 requests", classicBounds(), 10, 1, 0.01, 0.01, func(t *testing.T, o simOutcome) {
			require.Equal(t, 1.0, o.rate(Inconclusive))
		}},
		{"A/A native 10 requests", nativeBounds(), 10, 1, 0.01, 0.01, func(t *testing.T, o simOutcome) {
			require.Equal(t, 1.0, o.rate(Inconclusive))
		}},
		{"2x classic 10k", classicBounds(), 10000, 2, 0.01, 0.01, func(t *testing.T, o simOutcome) {
			require.GreaterOrEqual(t, o.rate(Regression), 0.99)
		}},
		{"2x native 10k", nativeBounds(), 10000, 2, 0.01, 0.01, func(t *testing.T, o simOutcome) {
			require.GreaterOrEqual(t, o.rate(Regression), 0.99)
		}},
		{"+20 % native 10k", nativeBounds(), 10000, 1.2, 0.01, 0.01, func(t *testing.T, o simOutcome) {
			require.GreaterOrEqual(t, o.rate(Regression), 0.8)
		}},
		{"+20 % classic 10k", classicBounds(), 10000, 1.2, 0.01, 0.01, func(t *testing.T, o simOutcome) {
			// Documented limit: a change smaller than the bucket around the
			// quantile is not "large" (40 ms around P50, 100 ms around
			// P95); it is significant, and the findings say so.
			require.GreaterOrEqual(t, o.lowP[CheckP95], o.runs*9/10)
		}},
		{"errors 1 % → 3 % native 10k", nativeBounds(), 10000, 1, 0.01, 0.03, func(t *testing.T, o simOutcome) {
			require.GreaterOrEqual(t, o.rate(Regression), 0.99)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := simulate(uint64(len(tc.name)), runs, tc.bounds, tc.n, tc.slow, tc.baseErr, tc.candErr)
			t.Logf("%s: regression %.1f %%, pass %.1f %%, inconclusive %.1f %%; raw p < 0.05: %v",
				tc.name, 100*o.rate(Regression), 100*o.rate(Pass), 100*o.rate(Inconclusive), o.lowP)
			tc.check(t, o)
		})
	}
}

// TestSimulationCalibration checks that each test's raw p-values are
// uniform-ish under no change: about 5 % of A/A runs below 0.05.
func TestSimulationCalibration(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bounds []float64
	}{{"classic", classicBounds()}, {"native", nativeBounds()}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const runs = 400
			o := simulate(7, runs, tc.bounds, 10000, 1, 0.01, 0.01)
			for _, check := range []string{CheckP50, CheckP95, CheckP99, CheckErrors} {
				share := float64(o.lowP[check]) / runs
				t.Logf("%s %s: P(p < 0.05) = %.3f", tc.name, check, share)
				// Binomial(400, 0.05) has sd 1.1 %: 2 … 8.5 % is > 3 sd wide.
				require.InDelta(t, 0.05, share, 0.035, check)
			}
		})
	}
}

// TestSimulationQuantileCICoverage checks that the order-statistic interval
// covers the true quantile at least at its nominal level.
func TestSimulationQuantileCICoverage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bounds []float64
		n      int
	}{{"classic", classicBounds(), 1000}, {"native", nativeBounds(), 1000}, {"native small", nativeBounds(), 200}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(11, uint64(tc.n)))
			const runs = 400
			covered := map[float64]int{}
			for range runs {
				h := drawArm(r, tc.bounds, tc.n, 1, 0).Latency
				for _, q := range []float64{0.5, 0.95} {
					truth := simMedian * math.Exp(simSigma*NormalQuantile(q))
					ci := QuantileCI(h, q, 0.95)
					if ci.Low <= truth && truth <= ci.High {
						covered[q]++
					}
				}
			}
			for q, c := range covered {
				t.Logf("%s n=%d: 95 %% interval covers P%.0f in %.1f %% of runs", tc.name, tc.n, 100*q, 100*float64(c)/runs)
				require.GreaterOrEqual(t, float64(c)/runs, 0.93, "q=%v", q)
			}
		})
	}
}

// TestSimulationRepeatedLooks evaluates a growing A/A comparison at 20 looks.
// With alpha spending a run fails at any look at most α of the time; testing
// each look at the full α (the mistake spending prevents) is shown for
// comparison. A 2x slowdown still fails early.
func TestSimulationRepeatedLooks(t *testing.T) {
	const (
		runs    = 200
		looks   = 20
		perLook = 100 // requests per arm between looks
	)
	th := DefaultThresholds()
	bounds := nativeBounds()
	type outcome struct{ spentFail, naiveFail, slowFail, slowLookSum int }
	var o outcome
	r := rand.New(rand.NewPCG(13, 17))
	for range runs {
		base, cand := drawArm(r, bounds, 0, 1, 0), drawArm(r, bounds, 0, 1, 0)
		slowBase, slow := drawArm(r, bounds, 0, 1, 0), drawArm(r, bounds, 0, 1, 0)
		spent, naive, slowAt := false, false, 0
		for k := 1; k <= looks; k++ {
			addRequests(r, &base, perLook, 1, 0.01)
			addRequests(r, &cand, perLook, 1, 0.01)
			spent = spent || Compare(base, cand, th, Look{Index: k, Total: looks}).Verdict == Regression
			naive = naive || Compare(base, cand, th, Look{}).Verdict == Regression
			if slowAt == 0 {
				addRequests(r, &slowBase, perLook, 1, 0.01)
				addRequests(r, &slow, perLook, 2, 0.01)
				if Compare(slowBase, slow, th, Look{Index: k, Total: looks}).Verdict == Regression {
					slowAt = k
				}
			}
		}
		if spent {
			o.spentFail++
		}
		if naive {
			o.naiveFail++
		}
		if slowAt > 0 {
			o.slowFail++
			o.slowLookSum += slowAt
		}
	}
	t.Logf("A/A over %d looks: %.1f %% of runs fail with alpha spending, %.1f %% testing every look at α",
		looks, 100*float64(o.spentFail)/runs, 100*float64(o.naiveFail)/runs)
	t.Logf("2x slowdown: caught in %.1f %% of runs, on average at look %.1f of %d (%d requests per arm per look)",
		100*float64(o.slowFail)/runs, float64(o.slowLookSum)/float64(max(o.slowFail, 1)), looks, perLook)
	require.LessOrEqual(t, float64(o.spentFail)/runs, 0.02)
	require.Equal(t, runs, o.slowFail)
	require.Less(t, float64(o.slowLookSum)/float64(o.slowFail), looks/2.0, "a large regression fails early")
}

// TestSimulationMultiOperationAA: with several operations in the gate's
// family, A/A runs still fail at most at about α, and a regression of one
// small operation that leaves the service's quantiles in place is caught.
func TestSimulationMultiOperationAA(t *testing.T) {
	const runs = 400
	th := DefaultThresholds()
	bounds := nativeBounds()
	sizes := []int{20000, 5000, 2000, 1000, 300, 50}
	r := rand.New(rand.NewPCG(21, 22))
	aaFail, aaFlagged, caught := 0, 0, 0
	for range runs {
		var aa, small []Operation
		for i, n := range sizes {
			name := string(rune('a' + i))
			aa = append(aa, Operation{Name: name, Base: drawArm(r, bounds, n, 1, 0.001), Cand: drawArm(r, bounds, n, 1, 0.001)})
			slow := 1.0
			if i == 3 { // 1000 of 28350 requests, 1.5x slower
				slow = 1.5
			}
			small = append(small, Operation{Name: name, Base: drawArm(r, bounds, n, 1, 0.001), Cand: drawArm(r, bounds, n, slow, 0.001)})
		}
		res := CompareService(aa, th, Look{})
		if res.Verdict == Regression {
			aaFail++
		}
		for _, o := range res.Operations {
			if o.Verdict == Regression {
				aaFlagged++
				break
			}
		}
		res = CompareService(small, th, Look{})
		if res.Verdict == Regression {
			for _, o := range res.Operations {
				if o.Gates && o.Name == "d" {
					caught++
					break
				}
			}
		}
	}
	t.Logf("A/A with %d operations: %.2f %% of runs fail the gate; %.2f %% have an operation flagged at FDR %g",
		len(sizes), 100*float64(aaFail)/runs, 100*float64(aaFlagged)/runs, th.FDR)
	t.Logf("operation d (3.5 %% of traffic) 1.5x slower: caught by the gate in %.1f %% of runs", 100*float64(caught)/runs)
	require.LessOrEqual(t, float64(aaFail)/runs, 0.02)
	require.GreaterOrEqual(t, float64(caught)/runs, 0.95)
}

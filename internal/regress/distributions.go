package regress

import "math"

// NormalCDF is Φ(x), the standard normal distribution function, computed
// as ½·erfc(−x/√2) so that both tails keep full relative precision.
func NormalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// normalSF is the upper tail 1 − Φ(x), accurate far into the tail.
func normalSF(x float64) float64 { return 0.5 * math.Erfc(x/math.Sqrt2) }

// NormalQuantile is Φ⁻¹(p): −√2·erfcinv(2p), refined by one Newton step
// (math.Erfcinv alone is good to about 1e-9); NaN outside [0, 1], ∓Inf at 0
// and 1.
func NormalQuantile(p float64) float64 {
	if !(p >= 0 && p <= 1) {
		return math.NaN()
	}
	x := -math.Sqrt2 * math.Erfcinv(2*p)
	if math.IsInf(x, 0) {
		return x
	}
	e := NormalCDF(x) - p // Φ(x) − p, computed in the tail p is closer to
	if p > 0.5 {
		e = (1 - p) - normalSF(x)
	}
	return x - e/(math.Exp(-x*x/2)/math.Sqrt(2*math.Pi))
}

// chiSquare1SF is the upper tail of the chi-square distribution with one
// degree of freedom: P(χ²₁ ≥ x) = P(|Z| ≥ √x) = erfc(√(x/2)).
func chiSquare1SF(x float64) float64 {
	if x <= 0 {
		return 1
	}
	return math.Erfc(math.Sqrt(x / 2))
}

// logChoose is ln C(n, k) for integer-valued 0 ≤ k ≤ n.
func logChoose(n, k float64) float64 {
	a, _ := math.Lgamma(n + 1)
	b, _ := math.Lgamma(k + 1)
	c, _ := math.Lgamma(n - k + 1)
	return a - b - c
}

// hypergeomUpper returns P(X ≥ x) for X hypergeometric: x successes in
// draws from a population of size pop holding succ successes. Terms are
// summed upward from x with the ratio recurrence
// p(k+1)/p(k) = (succ−k)(draws−k) / ((k+1)(pop−succ−draws+k+1)),
// relative to p(x), and stop once they no longer change the sum.
func hypergeomUpper(x, pop, succ, draws float64) float64 {
	lo := math.Max(0, draws-(pop-succ))
	hi := math.Min(succ, draws)
	switch {
	case x <= lo:
		return 1
	case x > hi:
		return 0
	}
	logp := logChoose(succ, x) + logChoose(pop-succ, draws-x) - logChoose(pop, draws)
	sum, term := 1.0, 1.0
	for k := x; k < hi; k++ {
		term *= (succ - k) * (draws - k) / ((k + 1) * (pop - succ - draws + k + 1))
		sum += term
		if term < sum*1e-17 {
			break // past the mode (ratios < 1 from here on) and negligible
		}
	}
	return math.Min(1, math.Exp(logp+math.Log(sum)))
}

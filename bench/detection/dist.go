package detection

import (
	"fmt"
	"math"
	"sort"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// Dist is a latency distribution in milliseconds.
type Dist interface {
	// CDF is P(latency ≤ x).
	CDF(x float64) float64
	// Quantile is the smallest x with CDF(x) ≥ u, for u in (0, 1).
	Quantile(u float64) float64
}

// Lognormal latencies: ln X ~ N(ln Median, Sigma²).
type Lognormal struct{ Median, Sigma float64 }

// CDF implements Dist.
func (d Lognormal) CDF(x float64) float64 {
	if x <= 0 {
		return 0
	}
	return regress.NormalCDF(math.Log(x/d.Median) / d.Sigma)
}

// Quantile implements Dist.
func (d Lognormal) Quantile(u float64) float64 {
	return d.Median * math.Exp(d.Sigma*regress.NormalQuantile(u))
}

// Pareto latencies above Min with tail index Alpha, cut at Cap: a request
// that would take longer times out at Cap (a point mass there).
type Pareto struct{ Min, Alpha, Cap float64 }

// CDF implements Dist.
func (d Pareto) CDF(x float64) float64 {
	switch {
	case x < d.Min:
		return 0
	case x >= d.Cap:
		return 1
	}
	return 1 - math.Pow(d.Min/x, d.Alpha)
}

// Quantile implements Dist.
func (d Pareto) Quantile(u float64) float64 {
	return math.Min(d.Cap, d.Min*math.Pow(1-u, -1/d.Alpha))
}

// Mixture draws from Comps[i] with probability Weights[i] (summing to 1).
type Mixture struct {
	Weights []float64
	Comps   []Dist
}

// CDF implements Dist.
func (d Mixture) CDF(x float64) float64 {
	s := 0.0
	for i, c := range d.Comps {
		s += d.Weights[i] * c.CDF(x)
	}
	return s
}

// Quantile implements Dist.
func (d Mixture) Quantile(u float64) float64 { return invertCDF(d, u) }

// Scaled multiplies every latency by Factor (a uniform slowdown).
type Scaled struct {
	D      Dist
	Factor float64
}

// CDF implements Dist.
func (d Scaled) CDF(x float64) float64 { return d.D.CDF(x / d.Factor) }

// Quantile implements Dist.
func (d Scaled) Quantile(u float64) float64 { return d.Factor * d.D.Quantile(u) }

// Warped multiplies the u-quantile of D by M(u): the request that was at
// quantile u becomes M(u) times slower. Tail-only and body-only changes are
// warps that leave one part of the distribution alone. u ↦ D.Quantile(u)·M(u)
// must be increasing (NewWarped checks it).
type Warped struct {
	D Dist
	M func(u float64) float64
}

// NewWarped returns the warp, or an error if it is not increasing.
func NewWarped(d Dist, m func(u float64) float64) (Warped, error) {
	w := Warped{D: d, M: m}
	prev := 0.0
	for i := 1; i < 4000; i++ {
		u := float64(i) / 4000
		q := w.Quantile(u)
		if q < prev {
			return w, fmt.Errorf("warp not increasing at u = %.4f (%.4g < %.4g)", u, q, prev)
		}
		prev = q
	}
	return w, nil
}

// Quantile implements Dist.
func (d Warped) Quantile(u float64) float64 { return d.D.Quantile(u) * d.M(u) }

// CDF implements Dist: the largest u whose warped quantile is ≤ x.
func (d Warped) CDF(x float64) float64 {
	lo, hi := 0.0, 1.0
	if x <= 0 {
		return 0
	}
	for range 60 {
		mid := (lo + hi) / 2
		if d.Quantile(mid) <= x {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// invertCDF finds the u-quantile of d by bisection on log x over
// [1 µs, 10⁷ ms].
func invertCDF(d Dist, u float64) float64 {
	lo, hi := math.Log(1e-3), math.Log(1e7)
	for range 80 {
		mid := (lo + hi) / 2
		if d.CDF(math.Exp(mid)) >= u {
			hi = mid
		} else {
			lo = mid
		}
	}
	return math.Exp(hi)
}

// ramp is 0 below a, 1 above b, linear in between.
func ramp(u, a, b float64) float64 { return math.Min(1, math.Max(0, (u-a)/(b-a))) }

// TailOnly makes the tail slower by the factor 1+f above quantile 0.99,
// ramping linearly from nothing at quantile 0.95: P99 grows by f while P95
// and everything below it stay put.
func TailOnly(d Dist, f float64) (Warped, error) {
	return NewWarped(d, func(u float64) float64 { return 1 + f*ramp(u, 0.95, 0.99) })
}

// BodyOnly makes the lower half slower by the factor 1+f, ramping linearly
// back to no change at quantile 0.9: P50 grows by f while P95 and P99 stay
// put.
func BodyOnly(d Dist, f float64) (Warped, error) {
	return NewWarped(d, func(u float64) float64 { return 1 + f*(1-ramp(u, 0.5, 0.9)) })
}

// Tabulated is a distribution's quantile function sampled at fine steps of
// the normal score of u, with the CDF interpolated linearly between them:
// a fast CDF for warps, whose own CDF bisects.
type Tabulated struct {
	z, x []float64 // z_i = Φ⁻¹(u_i) ascending, x_i = Quantile(u_i)
}

// Tabulate samples d at normal scores −8 … 8 in steps of 0.001.
func Tabulate(d Dist) Tabulated {
	var t Tabulated
	for i := -8000; i <= 8000; i++ {
		z := float64(i) / 1000
		t.z = append(t.z, z)
		t.x = append(t.x, d.Quantile(regress.NormalCDF(z)))
	}
	return t
}

// CDF implements Dist.
func (t Tabulated) CDF(x float64) float64 {
	n := len(t.x)
	switch {
	case x < t.x[0]:
		return 0
	case x >= t.x[n-1]:
		return 1
	}
	i := sort.SearchFloat64s(t.x, x) // t.x[i−1] < x ≤ t.x[i]
	if i == 0 {
		return regress.NormalCDF(t.z[0])
	}
	a, b := t.x[i-1], t.x[i]
	z := t.z[i]
	if b > a {
		z = t.z[i-1] + (t.z[i]-t.z[i-1])*(x-a)/(b-a)
	}
	return regress.NormalCDF(z)
}

// Quantile implements Dist.
func (t Tabulated) Quantile(u float64) float64 {
	z := regress.NormalQuantile(u)
	i := sort.SearchFloat64s(t.z, z)
	switch {
	case i <= 0:
		return t.x[0]
	case i >= len(t.z):
		return t.x[len(t.x)-1]
	}
	f := (z - t.z[i-1]) / (t.z[i] - t.z[i-1])
	return t.x[i-1] + f*(t.x[i]-t.x[i-1])
}

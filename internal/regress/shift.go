package regress

import (
	"math"
)

// Scale shift from the whole binned distribution.
//
// When both arms' quantiles lie in one coarse bucket, the bucket alone cannot
// size the change. Every bucket edge still constrains it: under a uniform
// scale change (every latency ×r) the candidate's share below each edge e is
// the baseline's share below e/r. EstimateShift fits that model — log-latency
// normal with a common σ, the candidate's location shifted by ln r — to the
// interval-censored counts of both arms by maximum likelihood, and reports r
// with a Wald interval from the observed information. The fitted shape
// places the mass inside each bucket, so the interval includes the
// within-bucket uncertainty only as far as the model holds; a Pearson
// goodness-of-fit test over both arms' buckets decides whether it does, and
// a misfit (a tail-only change, a second mode, a heavy tail) refuses the
// estimate, so the gate falls back to the bucket-level rule.

// ShiftFitLevel is the goodness-of-fit p-value below which the scale model
// is refused.
const ShiftFitLevel = 0.01

// minShiftRequests is the smallest arm EstimateShift fits.
const minShiftRequests = 30

// Shift is a uniform scale change between two arms.
type Shift struct {
	// Ratio is the estimated scale factor (candidate/baseline), Low and High
	// its interval. NaN when not estimated.
	Ratio, Low, High float64
	// Fits: the model was fitted and passes the goodness-of-fit test.
	Fits bool
	// FitP is the goodness-of-fit p-value (NaN when not testable).
	FitP float64
	// Mu and Sigma are the baseline's fitted log-latency mean and standard
	// deviation (log of the histogram's unit).
	Mu, Sigma float64
}

// Quantile is the fitted baseline's q-quantile.
func (s Shift) Quantile(q float64) float64 { return math.Exp(s.Mu + s.Sigma*NormalQuantile(q)) }

// bin is one bucket with data: (lo, hi] in log units, the count.
type bin struct{ lo, hi, n float64 }

func logBins(h Histogram) []bin {
	var out []bin
	for i, c := range h.Counts {
		c = roundCount(c)
		lo := math.Inf(-1)
		if l := h.lowerEdge(i); l > 0 {
			lo = math.Log(l)
		}
		hi := math.Log(h.Bounds[i]) // +Inf stays +Inf
		out = append(out, bin{lo, hi, c})
	}
	return out
}

// binProb is P(lo < Z ≤ hi) for Z ~ N(mu, sigma), computed on the side of
// the smaller tail for accuracy.
func binProb(b bin, mu, sigma float64) float64 {
	a, z := (b.lo-mu)/sigma, (b.hi-mu)/sigma
	if a > 0 {
		return normalSF(a) - normalSF(z)
	}
	return NormalCDF(z) - NormalCDF(a)
}

// EstimateShift fits the scale model to aligned histograms b and c at
// confidence conf. It refuses (Fits false) arms smaller than 30 requests,
// fewer than two populated finite buckets, and a misfit.
func EstimateShift(b, c Histogram, conf float64) Shift {
	s := Shift{Ratio: math.NaN(), Low: math.NaN(), High: math.NaN(), FitP: math.NaN()}
	if len(b.Bounds) == 0 || b.Total() < minShiftRequests || c.Total() < minShiftRequests {
		return s
	}
	bb, cb := logBins(b), logBins(c)
	if populatedFinite(bb) < 2 && populatedFinite(cb) < 2 {
		return s
	}
	q50b, q50c := Quantile(b, 0.5), Quantile(c, 0.5)
	spread := math.Log(Quantile(b, 0.84)/math.Max(Quantile(b, 0.16), 1e-9)) / 2
	if math.IsNaN(spread) || math.IsInf(spread, 0) || spread <= 0 {
		spread = 0.5
	}
	x := [3]float64{math.Log(q50b), math.Min(math.Max(spread, 0.05), 3), math.Log(q50c / q50b)}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return s
		}
	}
	x, info, ok := fitScale(bb, cb, x)
	if !ok {
		return s
	}
	s.Mu, s.Sigma = x[0], x[1]
	cov, ok := invert3(info)
	if !ok || !(cov[2][2] > 0) {
		return s
	}
	se := math.Sqrt(cov[2][2])
	z := NormalQuantile(1 - (1-conf)/2)
	s.Ratio, s.Low, s.High = math.Exp(x[2]), math.Exp(x[2]-z*se), math.Exp(x[2]+z*se)
	s.FitP = fitP(bb, cb, s.Mu, s.Sigma, x[2])
	s.Fits = !math.IsNaN(s.FitP) && s.FitP >= ShiftFitLevel
	return s
}

// scaleLL returns the log-likelihood of the scale model at x = (μ, σ, d)
// and, with derivatives, its gradient and Hessian.
func scaleLL(bb, cb []bin, x [3]float64, derivatives bool) (ll float64, g [3]float64, h [3][3]float64) {
	mu, sigma, d := x[0], x[1], x[2]
	for arm, bins := range [][]bin{bb, cb} {
		m := mu
		if arm == 1 {
			m += d
		}
		for _, k := range bins {
			if k.n == 0 {
				continue
			}
			za, zb := (k.lo-m)/sigma, (k.hi-m)/sigma
			p := math.Max(binProb(k, m, sigma), 1e-300)
			ll += k.n * math.Log(p)
			if !derivatives {
				continue
			}
			// φ(z), zφ(z), z²φ(z), z³φ(z) at both ends; all vanish at ±∞.
			pa, pb := phiPowers(za), phiPowers(zb)
			dm := -(pb[0] - pa[0]) / sigma
			ds := -(pb[1] - pa[1]) / sigma
			dmm := -(pb[1] - pa[1]) / (sigma * sigma)
			dms := (-(pb[2] - pa[2]) + (pb[0] - pa[0])) / (sigma * sigma)
			dss := (-((pb[3] - pb[1]) - (pa[3] - pa[1])) + (pb[1] - pa[1])) / (sigma * sigma)
			// Parameters: μ moves both arms, d the candidate's only.
			grad := [3]float64{dm, ds, 0}
			hess := [3][3]float64{{dmm, dms, 0}, {dms, dss, 0}, {0, 0, 0}}
			if arm == 1 {
				grad[2] = dm
				hess[0][2], hess[2][0], hess[2][2] = dmm, dmm, dmm
				hess[1][2], hess[2][1] = dms, dms
			}
			for i := range 3 {
				g[i] += k.n * grad[i] / p
				for j := range 3 {
					h[i][j] += k.n * (hess[i][j]/p - grad[i]*grad[j]/(p*p))
				}
			}
		}
	}
	return ll, g, h
}

// phiPowers returns z^k·φ(z) for k = 0…3, zero at ±∞.
func phiPowers(z float64) [4]float64 {
	if math.IsInf(z, 0) {
		return [4]float64{}
	}
	f := math.Exp(-z*z/2) / math.Sqrt(2*math.Pi)
	return [4]float64{f, z * f, z * z * f, z * z * z * f}
}

// fitScale maximises the scale model's likelihood from x by Newton's method
// with step halving, and returns the estimate with its observed
// information (the negated Hessian).
func fitScale(bb, cb []bin, x [3]float64) ([3]float64, [3][3]float64, bool) {
	ll, g, h := scaleLL(bb, cb, x, true)
	for range 100 {
		neg := h
		for i := range 3 {
			for j := range 3 {
				neg[i][j] = -h[i][j]
			}
		}
		step := g // gradient ascent when the Hessian is not usable
		if inv, ok := invert3(neg); ok {
			var st [3]float64
			for i := range 3 {
				for j := range 3 {
					st[i] += inv[i][j] * g[j]
				}
			}
			if st[0]*g[0]+st[1]*g[1]+st[2]*g[2] > 0 {
				step = st
			}
		}
		improved := false
		for t := 1.0; t > 1e-10; t /= 2 {
			y := [3]float64{x[0] + t*step[0], x[1] + t*step[1], x[2] + t*step[2]}
			if y[1] <= 1e-6 {
				continue
			}
			if v, _, _ := scaleLL(bb, cb, y, false); v > ll {
				done := math.Abs(v-ll) < 1e-10*(1+math.Abs(ll))
				x = y
				ll, g, h = scaleLL(bb, cb, x, true)
				improved = !done
				break
			}
		}
		if !improved {
			break
		}
	}
	info := h
	for i := range 3 {
		for j := range 3 {
			info[i][j] = -h[i][j]
		}
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return x, info, false
		}
	}
	return x, info, x[1] > 0
}

func populatedFinite(bs []bin) int {
	n := 0
	for _, b := range bs {
		if b.n > 0 && !math.IsInf(b.hi, 1) && !math.IsInf(b.lo, -1) {
			n++
		}
	}
	return n
}

// invert3 inverts a 3×3 matrix; ok is false when it is singular.
func invert3(m [3][3]float64) ([3][3]float64, bool) {
	var inv [3][3]float64
	det := m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) -
		m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) +
		m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
	if det == 0 || math.IsNaN(det) || math.IsInf(det, 0) {
		return inv, false
	}
	for i := range 3 {
		for j := range 3 {
			a, b := (j+1)%3, (j+2)%3
			c, d := (i+1)%3, (i+2)%3
			inv[i][j] = (m[a][c]*m[b][d] - m[a][d]*m[b][c]) / det
		}
	}
	return inv, true
}

// fitP is the Pearson goodness-of-fit p-value of the fitted model over both
// arms' buckets, adjacent buckets merged until each expects at least 5
// requests; NaN when fewer degrees of freedom than one remain.
func fitP(bb, cb []bin, mu, sigma, d float64) float64 {
	x2, cells := 0.0, 0
	for _, arm := range []struct {
		bins  []bin
		shift float64
	}{{bb, 0}, {cb, d}} {
		total := 0.0
		for _, k := range arm.bins {
			total += k.n
		}
		type cell struct{ obs, exp float64 }
		var cs []cell
		var cur cell
		for _, k := range arm.bins {
			cur.obs += k.n
			cur.exp += total * binProb(k, mu+arm.shift, sigma)
			if cur.exp >= 5 {
				cs = append(cs, cur)
				cur = cell{}
			}
		}
		switch {
		case len(cs) == 0:
			cs = append(cs, cur)
		case cur.obs > 0 || cur.exp > 0:
			// What is left expects fewer than 5: it joins the last cell.
			cs[len(cs)-1].obs += cur.obs
			cs[len(cs)-1].exp += cur.exp
		}
		for _, c := range cs {
			if c.exp > 0 {
				x2 += (c.obs - c.exp) * (c.obs - c.exp) / c.exp
				cells++
			}
		}
	}
	df := cells - 2 - 3
	if df < 1 {
		return math.NaN()
	}
	return chiSquareSF(x2, float64(df))
}

// chiSquareSF is the upper tail of the chi-square distribution with df
// degrees of freedom: the regularized upper incomplete gamma Q(df/2, x/2).
func chiSquareSF(x, df float64) float64 {
	if x <= 0 {
		return 1
	}
	return gammaQ(df/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function, by its series
// for x < a+1 and its continued fraction otherwise (Numerical Recipes §6.2).
func gammaQ(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-15 {
				break
			}
		}
		return math.Max(0, 1-sum*math.Exp(-x+a*math.Log(x)-lg))
	}
	const tiny = 1e-300
	b := x + 1 - a
	c, d := 1/tiny, 1/b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lg) * h
}

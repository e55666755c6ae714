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
	ll := func(x []float64) float64 {
		mu, sigma, d := x[0], math.Exp(x[1]), x[2]
		sum := 0.0
		for _, arm := range []struct {
			bins  []bin
			shift float64
		}{{bb, 0}, {cb, d}} {
			for _, k := range arm.bins {
				if k.n == 0 {
					continue
				}
				sum += k.n * math.Log(math.Max(binProb(k, mu+arm.shift, sigma), 1e-300))
			}
		}
		return sum
	}
	q50b, q50c := Quantile(b, 0.5), Quantile(c, 0.5)
	spread := math.Log(Quantile(b, 0.84)/math.Max(Quantile(b, 0.16), 1e-9)) / 2
	if math.IsNaN(spread) || math.IsInf(spread, 0) || spread <= 0 {
		spread = 0.5
	}
	x0 := []float64{math.Log(q50b), math.Log(math.Min(math.Max(spread, 0.05), 3)), math.Log(q50c / q50b)}
	for _, v := range x0 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return s
		}
	}
	x := maximize(ll, x0, []float64{0.1, 0.1, 0.05})
	s.Mu, s.Sigma = x[0], math.Exp(x[1])
	se := math.Sqrt(shiftVariance(ll, x))
	if math.IsNaN(se) || se <= 0 {
		return s
	}
	z := NormalQuantile(1 - (1-conf)/2)
	s.Ratio, s.Low, s.High = math.Exp(x[2]), math.Exp(x[2]-z*se), math.Exp(x[2]+z*se)
	s.FitP = fitP(bb, cb, s.Mu, s.Sigma, x[2])
	s.Fits = !math.IsNaN(s.FitP) && s.FitP >= ShiftFitLevel
	return s
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

// shiftVariance is the variance of the shift parameter (x[2]) from the
// inverse of the observed information, by central differences.
func shiftVariance(f func([]float64) float64, x []float64) float64 {
	const n = 3
	h := []float64{1e-4, 1e-4, 1e-4}
	var hess [n][n]float64
	at := func(dx ...float64) float64 {
		y := make([]float64, n)
		for i := range y {
			y[i] = x[i] + dx[i]
		}
		return f(y)
	}
	f0 := f(x)
	for i := range n {
		for j := i; j < n; j++ {
			di, dj := make([]float64, n), make([]float64, n)
			di[i], dj[j] = h[i], h[j]
			var v float64
			if i == j {
				v = (at(di...) - 2*f0 + at(neg(di)...)) / (h[i] * h[i])
			} else {
				pp, pm := add(di, dj), add(di, neg(dj))
				mp, mm := add(neg(di), dj), add(neg(di), neg(dj))
				v = (at(pp...) - at(pm...) - at(mp...) + at(mm...)) / (4 * h[i] * h[j])
			}
			hess[i][j], hess[j][i] = -v, -v
		}
	}
	inv, ok := invert3(hess)
	if !ok {
		return math.NaN()
	}
	return inv[2][2]
}

func neg(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = -x
	}
	return out
}

func add(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
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

// maximize maximizes f from x0 with the Nelder–Mead simplex (initial steps
// step).
func maximize(f func([]float64) float64, x0, step []float64) []float64 {
	n := len(x0)
	type pt struct {
		x []float64
		v float64
	}
	g := func(x []float64) float64 {
		v := f(x)
		if math.IsNaN(v) {
			return math.Inf(-1)
		}
		return v
	}
	simplex := make([]pt, n+1)
	simplex[0] = pt{append([]float64(nil), x0...), g(x0)}
	for i := range n {
		x := append([]float64(nil), x0...)
		x[i] += step[i]
		simplex[i+1] = pt{x, g(x)}
	}
	sortDesc := func() {
		for i := 1; i < len(simplex); i++ {
			for j := i; j > 0 && simplex[j].v > simplex[j-1].v; j-- {
				simplex[j], simplex[j-1] = simplex[j-1], simplex[j]
			}
		}
	}
	along := func(c []float64, w []float64, t float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = c[i] + t*(w[i]-c[i])
		}
		return out
	}
	for iter := 0; iter < 2000; iter++ {
		sortDesc()
		if math.Abs(simplex[0].v-simplex[n].v) <= 1e-10*(1+math.Abs(simplex[0].v)) {
			spread := 0.0
			for i := range n {
				spread = math.Max(spread, math.Abs(simplex[0].x[i]-simplex[n].x[i]))
			}
			if spread < 1e-7 {
				break
			}
		}
		centroid := make([]float64, n)
		for _, p := range simplex[:n] {
			for i := range centroid {
				centroid[i] += p.x[i] / float64(n)
			}
		}
		worst := simplex[n]
		r := along(centroid, worst.x, -1)
		rv := g(r)
		switch {
		case rv > simplex[0].v:
			e := along(centroid, worst.x, -2)
			if ev := g(e); ev > rv {
				simplex[n] = pt{e, ev}
			} else {
				simplex[n] = pt{r, rv}
			}
		case rv > simplex[n-1].v:
			simplex[n] = pt{r, rv}
		default:
			t := 0.5
			if rv > worst.v {
				t = -0.5
			}
			k := along(centroid, worst.x, t)
			if kv := g(k); kv > math.Max(rv, worst.v) {
				simplex[n] = pt{k, kv}
				continue
			}
			best := simplex[0].x
			for i := 1; i <= n; i++ {
				x := along(best, simplex[i].x, 0.5)
				simplex[i] = pt{x, g(x)}
			}
		}
	}
	sortDesc()
	return simplex[0].x
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

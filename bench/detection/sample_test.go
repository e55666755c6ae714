package detection

import (
	"math"
	"math/rand/v2"
	"testing"
)

// chiSquare compares n draws with the pmf over 0…len(pmf)−1 (the rest
// lumped into the last class) and returns the statistic and the degrees of
// freedom, pooling classes with fewer than 5 expected draws.
func chiSquare(draws []int, pmf func(k int) float64, kmax int) (stat float64, df int) {
	obs := make([]float64, kmax+1)
	for _, d := range draws {
		obs[min(d, kmax)]++
	}
	n := float64(len(draws))
	exp := make([]float64, kmax+1)
	rest := 1.0
	for k := range kmax {
		exp[k] = n * pmf(k)
		rest -= pmf(k)
	}
	exp[kmax] = n * rest
	var eo, ee float64
	for k := range obs {
		eo += obs[k]
		ee += exp[k]
		if ee >= 5 {
			stat += (eo - ee) * (eo - ee) / ee
			df++
			eo, ee = 0, 0
		}
	}
	if ee > 0 {
		stat += (eo - ee) * (eo - ee) / ee
	}
	return stat, df - 1
}

// chiSquareOK accepts a statistic below mean + 5 standard deviations.
func chiSquareOK(stat float64, df int) bool {
	return stat < float64(df)+5*math.Sqrt(2*float64(df))
}

func TestPoissonMatchesPMF(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, lambda := range []float64{0.001, 0.7, 12, 29.9, 30, 75.5, 2400} {
		draws := make([]int, 200000)
		for i := range draws {
			draws[i] = Poisson(r, lambda)
		}
		pmf := func(k int) float64 {
			lg, _ := math.Lgamma(float64(k) + 1)
			return math.Exp(-lambda + float64(k)*math.Log(lambda) - lg)
		}
		stat, df := chiSquare(draws, pmf, int(lambda+10*math.Sqrt(lambda)+10))
		if !chiSquareOK(stat, df) {
			t.Errorf("Poisson(%g): χ² = %.1f with %d df", lambda, stat, df)
		}
	}
}

func TestBinomialMatchesPMF(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		n int
		p float64
	}{{0, 0.5}, {10, 0.001}, {300, 0.05}, {15000, 0.001}, {15000, 0.05}, {20000, 0.5}, {40, 0.9}} {
		draws := make([]int, 100000)
		for i := range draws {
			draws[i] = Binomial(r, c.n, c.p)
			if draws[i] < 0 || draws[i] > c.n {
				t.Fatalf("Binomial(%d, %g) = %d", c.n, c.p, draws[i])
			}
		}
		if c.n == 0 {
			continue
		}
		pmf := func(k int) float64 {
			if k > c.n {
				return 0
			}
			return math.Exp(logChoose(float64(c.n), float64(k)) + float64(k)*math.Log(c.p) + float64(c.n-k)*math.Log1p(-c.p))
		}
		mean := float64(c.n) * c.p
		stat, df := chiSquare(draws, pmf, min(c.n, int(mean+10*math.Sqrt(mean)+10)))
		if !chiSquareOK(stat, df) {
			t.Errorf("Binomial(%d, %g): χ² = %.1f with %d df", c.n, c.p, stat, df)
		}
	}
}

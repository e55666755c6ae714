package detection

import (
	"math"
	"math/rand/v2"
)

// Poisson draws from the Poisson distribution with mean lambda by inversion:
// from 0 upward for small means, and for larger ones outward from the mode
// (mode, mode+1, mode−1, mode+2, …), subtracting each probability from one
// uniform until it is used up. Inversion in any fixed order of the outcomes
// is exact (up to floating point), and starting at the mode costs about
// 1.6 standard deviations of steps.
func Poisson(r *rand.Rand, lambda float64) int {
	switch {
	case !(lambda > 0):
		return 0
	case lambda < 30:
		u := r.Float64()
		p := math.Exp(-lambda)
		k := 0
		for u > p && p > 0 {
			u -= p
			k++
			p *= lambda / float64(k)
		}
		return k
	}
	m := math.Floor(lambda)
	lg, _ := math.Lgamma(m + 1)
	pm := math.Exp(-lambda + m*math.Log(lambda) - lg)
	return outward(r.Float64(), int(m), pm, math.MaxInt,
		func(k int, p float64) float64 { return p * lambda / float64(k+1) }, // p(k+1) from p(k)
		func(k int, p float64) float64 { return p * float64(k) / lambda },   // p(k−1) from p(k)
	)
}

// Binomial draws the number of successes in n trials of probability p, by
// inversion like Poisson.
func Binomial(r *rand.Rand, n int, p float64) int {
	switch {
	case n <= 0 || !(p > 0):
		return 0
	case p >= 1:
		return n
	case p > 0.5:
		return n - Binomial(r, n, 1-p)
	}
	nf := float64(n)
	q := p / (1 - p)
	if nf*p < 30 {
		u := r.Float64()
		pk := math.Exp(nf * math.Log1p(-p))
		k := 0
		for u > pk && pk > 0 && k < n {
			u -= pk
			pk *= (nf - float64(k)) / float64(k+1) * q
			k++
		}
		return k
	}
	m := math.Floor((nf + 1) * p)
	pm := math.Exp(logChoose(nf, m) + m*math.Log(p) + (nf-m)*math.Log1p(-p))
	return outward(r.Float64(), int(m), pm, n,
		func(k int, pk float64) float64 { return pk * (nf - float64(k)) / float64(k+1) * q },
		func(k int, pk float64) float64 { return pk * float64(k) / (nf - float64(k) + 1) / q },
	)
}

// outward inverts u over the outcomes 0…maxK in the order mode, mode+1,
// mode−1, mode+2, …, given the probability pm of the mode and the
// recurrences to the next outcome up and down.
func outward(u float64, mode int, pm float64, maxK int, up, down func(k int, p float64) float64) int {
	u -= pm
	if u <= 0 {
		return mode
	}
	hi, phi := mode, pm
	lo, plo := mode, pm
	for {
		moved := false
		if hi < maxK {
			phi = up(hi, phi)
			hi++
			u -= phi
			if u <= 0 {
				return hi
			}
			moved = phi > 0
		}
		if lo > 0 {
			plo = down(lo, plo)
			lo--
			u -= plo
			if u <= 0 {
				return lo
			}
			moved = moved || plo > 0
		}
		if !moved {
			return mode // rounding left a sliver of u: both tails underflowed
		}
	}
}

// logChoose is ln C(n, k).
func logChoose(n, k float64) float64 {
	a, _ := math.Lgamma(n + 1)
	b, _ := math.Lgamma(k + 1)
	c, _ := math.Lgamma(n - k + 1)
	return a - b - c
}

package regress

import (
	"math"
	"sort"
)

// Holm returns Holm–Bonferroni adjusted p-values (Holm 1979; R's
// p.adjust(method = "holm")): with the m p-values sorted ascending,
// adj₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1)·p₍ⱼ₎). Rejecting every hypothesis
// with adj ≤ α controls the family-wise error rate at α under any
// dependence. NaN entries (checks that were not run) are not part of the
// family and stay NaN. The input is not modified.
func Holm(p []float64) []float64 {
	idx, adj := sortedFamily(p)
	m := float64(len(idx))
	running := 0.0
	for rank, i := range idx {
		running = math.Max(running, math.Min(1, (m-float64(rank))*p[i]))
		adj[i] = running
	}
	return adj
}

// BenjaminiHochberg returns Benjamini–Hochberg adjusted p-values (Benjamini
// & Hochberg 1995; R's p.adjust(method = "BH")): with the m p-values sorted
// ascending, adj₍ᵢ₎ = min_{j ≥ i} min(1, m/j·p₍ⱼ₎). Rejecting every
// hypothesis with adj ≤ q controls the false-discovery rate at q for
// independent or positively dependent tests. NaN entries stay NaN and are
// not counted. The input is not modified.
func BenjaminiHochberg(p []float64) []float64 {
	idx, adj := sortedFamily(p)
	m := float64(len(idx))
	running := 1.0
	for rank := len(idx) - 1; rank >= 0; rank-- {
		i := idx[rank]
		running = math.Min(running, math.Min(1, m/float64(rank+1)*p[i]))
		adj[i] = running
	}
	return adj
}

// sortedFamily returns the indices of the non-NaN p-values in ascending
// order of p, and a result slice filled with NaN.
func sortedFamily(p []float64) ([]int, []float64) {
	adj := make([]float64, len(p))
	idx := make([]int, 0, len(p))
	for i, v := range p {
		adj[i] = math.NaN()
		if !math.IsNaN(v) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	return idx, adj
}

// Look says which of a planned number of evaluations this is: the Index-th
// (1-based) of Total. The gate plans Total = max-wait / poll interval. The
// zero value means a single look, like {1, 1}.
type Look struct {
	Index, Total int
}

// normalize maps non-positive fields to 1, so the zero value is {1, 1}.
func (l Look) normalize() Look {
	if l.Total <= 0 {
		l.Total = 1
	}
	if l.Index <= 0 {
		l.Index = 1
	}
	return l
}

// SpentAlpha is the Lan–DeMets spending function of O'Brien–Fleming shape
// (Lan & DeMets 1983): the share of the error rate alpha that may have been
// spent by information fraction t, α(t) = 2 − 2Φ(z_{1−α/2}/√t), with
// α(0) = 0 and α(1) = alpha. It spends almost nothing early (α = 0.05 at
// t = ¼, ½, ¾, 1: 0.0001, 0.0056, 0.0236, 0.05).
func SpentAlpha(alpha, t float64) float64 {
	switch {
	case !(alpha > 0 && alpha < 1):
		return math.NaN()
	case t <= 0:
		return 0
	case t >= 1:
		return alpha
	}
	return 2 * normalSF(NormalQuantile(1-alpha/2)/math.Sqrt(t))
}

// LookAlpha is the error rate available to the given look: the increment
// α(k/K) − α((k−1)/K) of SpentAlpha. Testing each look at its increment is a
// Bonferroni split of alpha over the looks, so the chance of any false
// regression over all looks stays ≤ alpha whatever the dependence between
// looks. A look past the plan (Index > Total) gets 0: it may still pass or
// be inconclusive, but no longer fail.
func LookAlpha(alpha float64, look Look) float64 {
	look = look.normalize()
	if look.Index > look.Total {
		return 0
	}
	k, n := float64(look.Index), float64(look.Total)
	return math.Max(0, SpentAlpha(alpha, k/n)-SpentAlpha(alpha, (k-1)/n))
}

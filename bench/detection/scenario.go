package detection

import (
	"fmt"
	"math"
	"strings"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// BaseErrorRate is every scenario's error rate before the change.
const BaseErrorRate = 0.001

// Shape is a baseline latency distribution.
type Shape struct {
	Name string
	Dist Dist
	// Lognormal is set for the lognormal shapes (offset mode modulates its
	// median over the day).
	Lognormal *Lognormal
}

// LognormalShape is the lognormal shape with the given median (ms) and σ.
func LognormalShape(median, sigma float64) Shape {
	d := Lognormal{Median: median, Sigma: sigma}
	return Shape{Name: fmt.Sprintf("lognormal %g ms σ %.1f", median, sigma), Dist: d, Lognormal: &d}
}

// Bimodal is a cache: a share miss of requests are misses (lognormal 120 ms,
// σ 0.5), the rest hits (lognormal 5 ms, σ 0.3).
func Bimodal(miss float64) Dist {
	return Mixture{
		Weights: []float64{1 - miss, miss},
		Comps:   []Dist{Lognormal{Median: 5, Sigma: 0.3}, Lognormal{Median: 120, Sigma: 0.5}},
	}
}

// BimodalShape is the cache with 20 % misses.
func BimodalShape() Shape {
	return Shape{Name: "bimodal cache 80 % 5 ms / 20 % 120 ms", Dist: Bimodal(0.2)}
}

// HeavyTailShape is a lognormal body (40 ms, σ 0.6, 98 %) with a Pareto
// tail (2 %, from 150 ms, index 1.5, timing out at 30 s).
func HeavyTailShape() Shape {
	return Shape{
		Name: "heavy tail 98 % lognormal 40 ms σ 0.6 + 2 % Pareto(150 ms, 1.5)",
		Dist: Mixture{
			Weights: []float64{0.98, 0.02},
			Comps:   []Dist{Lognormal{Median: 40, Sigma: 0.6}, Pareto{Min: 150, Alpha: 1.5, Cap: 30000}},
		},
	}
}

// Kind is the ground truth of a change.
type Kind int

// Kinds of change.
const (
	// NoChange: the candidate is the baseline (A/A); a regression verdict
	// is a false failure.
	NoChange Kind = iota
	// SubThreshold: a real change at or below the gate's practical
	// thresholds (e.g. +5 %, +10 % exactly at the ratio threshold, +20 % of
	// a 5 ms quantile, errors +0.4 points); neither verdict is wrong.
	SubThreshold
	// Regress: a real regression beyond the practical thresholds, which
	// should fail.
	Regress
)

// String names the kind.
func (k Kind) String() string {
	return [...]string{"no change", "at/below thresholds", "regression"}[k]
}

// Classify is the ground truth of a change by the gate's own definition of
// large (regress.Thresholds), with a margin so that changes right at a
// threshold (which any rule detects about half the time) count as at the
// threshold: a regression needs a true quantile ratio ≥ 1.01 × P50Ratio,
// P95Ratio or P99Ratio together with an increase ≥ 1.1 × MinAbsChange
// (5.5 ms), or an error rate up by ≥ ErrorPoints and ≥ ErrorRatio times.
// The bucket-width part of the gate's rule is a property of the histograms,
// not of the truth, and is left out.
func Classify(base, cand Dist, errRate float64) Kind {
	th := regress.DefaultThresholds()
	changed, large := errRate != BaseErrorRate, false
	for _, c := range []struct{ q, ratio float64 }{{0.5, th.MinRatio.P50}, {0.95, th.MinRatio.P95}, {0.99, th.MinRatio.P99}} {
		b, x := base.Quantile(c.q), cand.Quantile(c.q)
		if math.Abs(x/b-1) > 1e-4 {
			changed = true
		}
		if x/b >= c.ratio*1.01 && x-b >= 1.1*th.MinAbsChange {
			large = true
		}
	}
	if errRate-BaseErrorRate >= th.ErrorRate.MinIncrease && errRate >= th.ErrorRate.MinRatio*BaseErrorRate {
		large = true
	}
	switch {
	case large:
		return Regress
	case changed:
		return SubThreshold
	}
	return NoChange
}

// Change turns the baseline into the candidate.
type Change struct {
	Name string
	// Latency returns the candidate's latency distribution.
	Latency func(base Dist) (Dist, error)
	// ErrorRate is the candidate's error rate.
	ErrorRate float64
}

func same(d Dist) (Dist, error) { return d, nil }

// AA is the no-change run.
func AA() Change { return Change{Name: "A/A", Latency: same, ErrorRate: BaseErrorRate} }

// Uniform slows every request by the fraction f.
func Uniform(f float64) Change {
	return Change{
		Name: fmt.Sprintf("+%g %% uniform", f*100), ErrorRate: BaseErrorRate,
		Latency: func(d Dist) (Dist, error) { return Scaled{D: d, Factor: 1 + f}, nil },
	}
}

// Tail is the tail-only change: P99 +50 %, P95 and below unchanged.
func Tail() Change {
	return Change{
		Name: "tail-only +50 % P99", ErrorRate: BaseErrorRate,
		Latency: func(d Dist) (Dist, error) { return TailOnly(d, 0.5) },
	}
}

// Body is the body-only change: P50 +20 %, P95 and P99 unchanged.
func Body() Change {
	return Change{
		Name: "body-only +20 % P50", ErrorRate: BaseErrorRate,
		Latency: func(d Dist) (Dist, error) { return BodyOnly(d, 0.2) },
	}
}

// Errors raises the error rate from BaseErrorRate to rate.
func Errors(rate float64) Change {
	return Change{
		Name: fmt.Sprintf("errors 0.1 → %g %%", rate*100), Latency: same, ErrorRate: rate,
	}
}

// MissRatio changes the bimodal cache's miss ratio.
func MissRatio(miss float64) Change {
	return Change{
		Name: fmt.Sprintf("misses 20 → %g %%", miss*100), ErrorRate: BaseErrorRate,
		Latency: func(Dist) (Dist, error) { return Bimodal(miss), nil },
	}
}

// Truth describes the true change of the quantiles and the error rate.
func Truth(base, cand Dist, errRate float64) string {
	var parts []string
	for _, q := range []float64{0.5, 0.95, 0.99} {
		r := cand.Quantile(q)/base.Quantile(q) - 1
		if math.Abs(r) >= 0.0005 {
			parts = append(parts, fmt.Sprintf("P%g %+.0f %%", q*100, r*100))
		}
	}
	if errRate != BaseErrorRate {
		parts = append(parts, fmt.Sprintf("errors ×%g", errRate/BaseErrorRate))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Cycle is offset mode's daily cycle: the median latency and the traffic
// follow sinusoids over 24 h, in phase (busier is slower), and the latency
// may have a morning peak on top.
type Cycle struct {
	// Latency and Traffic are the relative amplitudes (0.15 = ±15 %).
	Latency, Traffic float64
	// Peak is the relative height of a Gaussian latency peak at PeakAt
	// seconds after midnight, with standard deviation PeakWidth seconds
	// (0: none).
	Peak, PeakAt, PeakWidth float64
	// Offset is how far back the baseline window lies, in seconds.
	Offset float64
}

// Name describes the cycle.
func (c Cycle) Name() string {
	off := fmt.Sprintf("%gh", c.Offset/3600)
	if c.Offset >= 86400 && math.Mod(c.Offset, 86400) == 0 {
		off = fmt.Sprintf("%gd", c.Offset/86400)
	}
	s := fmt.Sprintf("offset %s, latency ±%g %%, traffic ±%g %%", off, c.Latency*100, c.Traffic*100)
	if c.Peak > 0 {
		s += fmt.Sprintf(", +%g %% peak at %02d:%02d (σ %gh)", c.Peak*100, int(c.PeakAt)/3600, int(c.PeakAt)%3600/60, c.PeakWidth/3600)
	}
	return s
}

// LatencyFactor is the median latency's factor at t seconds after
// midnight (of any day).
func (c Cycle) LatencyFactor(t float64) float64 {
	f := 1 + c.Latency*math.Sin(2*math.Pi*t/86400)
	if c.Peak > 0 {
		d := math.Mod(t-c.PeakAt, 86400) // distance on the 24 h circle
		if d < 0 {
			d += 86400
		}
		d = math.Min(d, 86400-d)
		f *= 1 + c.Peak*math.Exp(-d*d/(2*c.PeakWidth*c.PeakWidth))
	}
	return f
}

// TrafficFactor is the traffic's factor at t seconds after midnight.
func (c Cycle) TrafficFactor(t float64) float64 { return 1 + c.Traffic*math.Sin(2*math.Pi*t/86400) }

// ShiftedShare is the share of the day at which the median now differs
// from the median Offset earlier by at least the relative amount x (either
// way).
func (c Cycle) ShiftedShare(x float64) float64 {
	n := 0
	const steps = 86400 / 60
	for i := range steps {
		t := float64(i) * 60
		if math.Abs(c.LatencyFactor(t)/c.LatencyFactor(t-c.Offset)-1) >= x {
			n++
		}
	}
	return float64(n) / steps
}

package detection

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// Method is one way of deciding.
type Method int

// Methods, in the order of the tables.
const (
	// GateNative is spanwatch's gate on native histograms (schema 3).
	GateNative Method = iota
	// GateClassic is spanwatch's gate on the cell's classic buckets
	// (spanwatch's defaults unless the cell sets others).
	GateClassic
	// Recipe is the recipe's rule: at the end of the first window (5
	// minutes in the default plan), P95 by histogram_quantile over the
	// cell's classic buckets, fail at > +20 %.
	Recipe
	// StrictNative and StrictClassic are a what-if: the gate's findings
	// with the stricter pass rule (StrictVerdict) that the gate adopted.
	StrictNative
	StrictClassic
	numMethods
)

// String names the method.
func (m Method) String() string {
	return [...]string{"spanwatch native", "spanwatch classic", "recipe", "what-if native", "what-if classic"}[m]
}

// RecipeThreshold is the recipe's failing P95 increase.
const RecipeThreshold = 0.20

// Plan is how the gate waits: a look every Step seconds, each over the last
// Window steps of data, Looks looks planned (max-wait / poll interval + 1,
// as internal/gate.Run plans them). The recipe decides once, after Window
// steps.
type Plan struct {
	Step   float64
	Window int
	Looks  int
}

// DefaultPlan is window 5m, max-wait 5m, poll interval 15s: 21 looks.
func DefaultPlan() Plan { return Plan{Step: 15, Window: 20, Looks: 21} }

// ProductPlan is the gate's shipped defaults: window 5m, max-wait 15m,
// poll interval 15s: 61 looks.
func ProductPlan() Plan { return Plan{Step: 15, Window: 20, Looks: 61} }

// ShortPlan is window 2m, max-wait 2m, poll interval 15s: 9 looks.
func ShortPlan() Plan { return Plan{Step: 15, Window: 8, Looks: 9} }

// Cell is one configuration, run many times.
type Cell struct {
	// Table groups cells in the report.
	Table  string
	Shape  Shape
	Change Change
	// Rate is the mean number of requests per second in each arm.
	Rate float64
	// Cycle selects offset mode (nil: canary mode, both arms in the same
	// window from the deploy on).
	Cycle *Cycle
	Plan  Plan
	// Classic are the classic bucket bounds (ms, +Inf implied) that the
	// classic methods decide on; nil is ClassicBounds.
	Classic []float64
	// ClassicOnly says the service stores classic buckets only: the
	// native methods (GateNative, StrictNative) are not run and count no
	// runs.
	ClassicOnly bool
}

// Buckets are the cell's classic bucket bounds.
func (c Cell) Buckets() []float64 {
	if c.Classic == nil {
		return ClassicBounds
	}
	return c.Classic
}

// Key identifies the cell; it seeds the cell's random numbers.
func (c Cell) Key() string {
	k := fmt.Sprintf("%s|%s|%s|%g|%d/%d/%g", c.Table, c.Shape.Name, c.Change.Name, c.Rate, c.Plan.Window, c.Plan.Looks, c.Plan.Step)
	if c.Cycle != nil {
		k += "|" + c.Cycle.Name()
	}
	if c.Classic != nil {
		k += "|classic " + joinFloats(c.Classic)
	}
	if c.ClassicOnly {
		k += "|classic only"
	}
	return k
}

// Outcome counts the verdicts of one method over a cell's runs, with the
// times (seconds after the deploy) at which it decided.
type Outcome struct {
	Fail, Pass, Inconclusive int
	FailTimes, PassTimes     []float64
}

// Runs is the number of runs counted.
func (o Outcome) Runs() int { return o.Fail + o.Pass + o.Inconclusive }

// Result is a cell's outcome for every method.
type Result struct {
	Cell
	// Truth describes the true change; Kind classifies it.
	Truth    string
	Kind     Kind
	Outcomes [numMethods]Outcome
}

// armSpec says how one arm's requests are drawn in a step.
type armSpec struct {
	lambda, errRate float64
	probs           []float64
	active          []int
}

func newArmSpec(g *Grid, d Dist, lambda, errRate float64) armSpec {
	a := armSpec{lambda: lambda, errRate: errRate, probs: g.Probs(d)}
	for j, p := range a.probs {
		if p*lambda > 1e-13 {
			a.active = append(a.active, j)
		}
	}
	return a
}

// draw adds one step of requests to cells and returns the requests and
// errors. Bucket counts of a Poisson number of i.i.d. requests are
// independent Poisson variables; errors are independent of latency.
func (a armSpec) draw(r *rand.Rand, cells []float64) (n, errs float64) {
	clear(cells)
	total := 0
	for _, j := range a.active {
		c := Poisson(r, a.lambda*a.probs[j])
		cells[j] = float64(c)
		total += c
	}
	return float64(total), float64(Binomial(r, total, a.errRate))
}

// window accumulates an arm's steps.
type window struct {
	cells     []float64
	n, errors float64
}

func (w *window) add(cells []float64, n, errs, sign float64) {
	for j, c := range cells {
		w.cells[j] += sign * c
	}
	w.n += sign * n
	w.errors += sign * errs
}

// Run simulates the cell runs times with the given seed and scores every
// method on the same draws. g must hold the cell's classic bucketing; the
// draws depend on g's cells, so the same cell run on a grid with more
// bucketings draws other (equally distributed) requests.
func (c Cell) Run(g *Grid, runs int, seed uint64) (Result, error) {
	res := Result{Cell: c}
	bucketing := slices.IndexFunc(g.Bounds, func(b []float64) bool { return slices.Equal(b, c.Buckets()) })
	if bucketing < 0 {
		return res, fmt.Errorf("%s: the grid lacks the cell's classic buckets", c.Key())
	}
	base := c.Shape.Dist
	cand, err := c.Change.Latency(base)
	if err != nil {
		return res, fmt.Errorf("%s: %w", c.Key(), err)
	}
	res.Truth = Truth(base, cand, c.Change.ErrorRate)
	res.Kind = Classify(base, cand, c.Change.ErrorRate)
	h := fnv.New64a()
	h.Write([]byte(c.Key()))
	cellSeed := h.Sum64() ^ seed

	p := c.Plan
	first := 1 // first step with data: the deploy in canary mode
	if c.Cycle != nil {
		first = 2 - p.Window // the past is there: full windows from the first look
	}
	steps := p.Looks - first + 1
	var specs [2][]armSpec // per arm, per step (one entry when constant)
	if c.Cycle == nil {
		specs[0] = []armSpec{newArmSpec(g, base, c.Rate*p.Step, BaseErrorRate)}
		specs[1] = []armSpec{newArmSpec(g, cand, c.Rate*p.Step, c.Change.ErrorRate)}
	} else {
		if c.Shape.Lognormal == nil {
			return res, fmt.Errorf("%s: offset mode needs a lognormal shape", c.Key())
		}
		specs[0], specs[1] = make([]armSpec, steps), make([]armSpec, steps)
	}
	cells := g.Cells()
	buf := make([][2][]float64, steps)
	var n, errs [2][]float64
	for arm := range 2 {
		n[arm], errs[arm] = make([]float64, steps), make([]float64, steps)
		for s := range steps {
			buf[s][arm] = make([]float64, cells)
		}
	}
	scratch := make([]float64, nativeHi-nativeLo+1)
	th := regress.DefaultThresholds()
	if c.Cycle != nil {
		// Offset mode's wider practical thresholds, as `spanwatch gate
		// --baseline-offset` applies them.
		th = th.ForOffset()
	}

	for run := range runs {
		r := rand.New(rand.NewPCG(cellSeed, uint64(run)))
		if cy := c.Cycle; cy != nil {
			tod := r.Float64() * 86400 // the deploy's time of day
			ln := *c.Shape.Lognormal
			for s := range steps {
				mid := tod + (float64(s+first)-0.5)*p.Step
				for arm, t := range []float64{mid - cy.Offset, mid} {
					d := Lognormal{Median: ln.Median * cy.LatencyFactor(t), Sigma: ln.Sigma}
					specs[arm][s] = newArmSpec(g, d, c.Rate*cy.TrafficFactor(t)*p.Step, BaseErrorRate)
				}
			}
		}
		for s := range steps {
			for arm := range 2 {
				sp := specs[arm][0]
				if len(specs[arm]) > 1 {
					sp = specs[arm][s]
				}
				n[arm][s], errs[arm][s] = sp.draw(r, buf[s][arm])
			}
		}

		var win [2]window
		for arm := range win {
			win[arm].cells = make([]float64, cells)
		}
		var decided [numMethods]bool
		if c.ClassicOnly {
			decided[GateNative], decided[StrictNative] = true, true
		}
		for look := 1; look <= p.Looks; look++ {
			// The window of this look: steps look−Window+1 … look.
			lo := look - p.Window + 1
			if look == 1 {
				for s := max(lo, first); s <= look; s++ {
					for arm := range 2 {
						win[arm].add(buf[s-first][arm], n[arm][s-first], errs[arm][s-first], 1)
					}
				}
			} else {
				for arm := range 2 {
					win[arm].add(buf[look-first][arm], n[arm][look-first], errs[arm][look-first], 1)
					if lo-1 >= first {
						win[arm].add(buf[lo-1-first][arm], n[arm][lo-1-first], errs[arm][lo-1-first], -1)
					}
				}
			}
			t := float64(look) * p.Step
			var classic [2]regress.Histogram
			for arm := range 2 {
				classic[arm] = g.ClassicHistogram(bucketing, win[arm].cells)
			}
			for m, native := range []bool{true, false} {
				strict := StrictNative + Method(m)
				if decided[m] && decided[strict] {
					continue
				}
				var arms [2]regress.Arm
				for arm := range 2 {
					hist := classic[arm]
					if native {
						hist = g.NativeHistogram(win[arm].cells, scratch)
					}
					arms[arm] = regress.Arm{Latency: hist, Requests: win[arm].n, Errors: win[arm].errors}
				}
				sr := gateResult(arms[0], arms[1], th, regress.Look{Index: look, Total: p.Looks})
				for _, e := range []struct {
					m Method
					v regress.Verdict
				}{{Method(m), sr.Verdict}, {strict, StrictVerdict(sr, th)}} {
					if decided[e.m] {
						continue
					}
					o := &res.Outcomes[e.m]
					switch {
					case e.v == regress.Regression:
						o.Fail++
						o.FailTimes = append(o.FailTimes, t)
						decided[e.m] = true
					case e.v == regress.Pass:
						o.Pass++
						o.PassTimes = append(o.PassTimes, t)
						decided[e.m] = true
					case look == p.Looks:
						o.Inconclusive++
					}
				}
			}
			if look == p.Window {
				o := &res.Outcomes[Recipe]
				if recipeFails(classic[0], classic[1]) {
					o.Fail++
					o.FailTimes = append(o.FailTimes, t)
				} else {
					o.Pass++
					o.PassTimes = append(o.PassTimes, t)
				}
			}
			if decided[GateNative] && decided[GateClassic] && decided[StrictNative] && decided[StrictClassic] && look >= p.Window {
				break
			}
		}
	}
	return res, nil
}

// gateResult decides as internal/gate.Run does at one look: CompareService
// over the service's operations (here one), without the sample-ratio check
// (candidate share 0, the default).
func gateResult(base, cand regress.Arm, th regress.Thresholds, look regress.Look) regress.ServiceResult {
	return regress.CompareService([]regress.Operation{{Name: "op", Base: base, Cand: cand}}, th, look)
}

// StrictVerdict is the what-if, now also the gate's own rule: the verdict,
// except that a pass becomes inconclusive while a gated check
//
//   - has a large point estimate that is not (yet) significant (an
//     earlier gate passed it: "large but not significant"), or
//   - is significant at the full α with a quantile ratio and an absolute
//     increase beyond the thresholds, and only the one-bucket-width part of
//     the rule called it small (an earlier gate passed it; it is
//     resolution-limited).
//
// It measured how many passes of real regressions came from those two
// rules; with the gate deciding this way now, it only checks agreement.
func StrictVerdict(r regress.ServiceResult, th regress.Thresholds) regress.Verdict {
	if r.Verdict != regress.Pass {
		return r.Verdict
	}
	for _, f := range r.Service.Findings {
		if !f.Enough {
			continue
		}
		if f.Large {
			return regress.Inconclusive
		}
		ratio := map[string]float64{regress.CheckP50: th.MinRatio.P50, regress.CheckP95: th.MinRatio.P95, regress.CheckP99: th.MinRatio.P99}[f.Check]
		if ratio > 0 && f.AdjustedP <= th.Alpha && f.Ratio >= ratio && f.Candidate-f.Baseline >= th.MinAbsChange {
			return regress.Inconclusive
		}
	}
	return regress.Pass
}

// recipeFails is the recipe's rule: histogram_quantile(0.95) of each arm,
// fail when the candidate's is more than 20 % above the baseline's. With no
// data in an arm the quantile is NaN, the comparison false, and the recipe
// passes.
func recipeFails(base, cand regress.Histogram) bool {
	b, c := regress.Quantile(base, 0.95), regress.Quantile(cand, 0.95)
	return c/b-1 > RecipeThreshold
}

// Median returns the median of xs (NaN for none); xs is sorted in place.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}

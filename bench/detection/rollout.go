package detection

import (
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"sync"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// TableRollout is the deployment table: automatic verdicts per rollout
// shape, next to today's manual gate.
const TableRollout = "rollout"

// RolloutKind is how a new version replaces the previous one.
type RolloutKind int

// Rollout kinds.
const (
	// Canary: the new version takes a fixed share of the traffic beside the
	// previous one for the whole watch.
	Canary RolloutKind = iota
	// Rolling: the previous version's share falls linearly to zero over
	// Duration seconds (a rolling update).
	Rolling
	// Switch: the previous version stops when the new one starts
	// (recreate, big bang).
	Switch
)

// Rollout is a rollout shape.
type Rollout struct {
	Kind RolloutKind
	// Share is the canary's share of the traffic.
	Share float64
	// Duration is a rolling update's length in seconds.
	Duration float64
}

// Name names the shape.
func (r Rollout) Name() string {
	switch r.Kind {
	case Canary:
		return fmt.Sprintf("canary %g %%", 100*r.Share)
	case Rolling:
		return fmt.Sprintf("rolling %s", fmtTime(r.Duration))
	}
	return "switch"
}

// End is when the previous version's share reaches zero, in seconds after
// the new version's first request (the canary's rollout is complete when
// it serves: 0).
func (r Rollout) End() float64 {
	if r.Kind == Rolling {
		return r.Duration
	}
	return 0
}

// oldShare is the previous version's mean share of the traffic over
// (a, b] seconds after first-seen; before 0 it serves alone.
func (r Rollout) oldShare(a, b float64) float64 {
	if b <= 0 {
		return 1
	}
	pre := math.Max(0, -a) // before first-seen: alone
	a = math.Max(a, 0)
	var after float64 // ∫ share over (a, b]
	switch r.Kind {
	case Canary:
		after = (1 - r.Share) * (b - a)
	case Rolling:
		f := func(t float64) float64 { // ∫₀ᵗ max(0, 1 − t/D)
			t = math.Min(t, r.Duration)
			return t - t*t/(2*r.Duration)
		}
		after = f(b) - f(a)
	}
	return (pre + after) / (b - a + pre)
}

// Rollouts are the table's shapes.
func Rollouts() []Rollout {
	return []Rollout{
		{Kind: Canary, Share: 0.1},
		{Kind: Rolling, Duration: 120}, {Kind: Rolling, Duration: 300}, {Kind: Rolling, Duration: 600},
		{Kind: Switch},
	}
}

// RolloutRates are the table's traffic levels: the service's requests per
// second, over both versions.
var RolloutRates = []float64{1, 10, 100}

// RolloutChanges are the table's changes.
func RolloutChanges() []Change { return []Change{AA(), Uniform(0.2), Uniform(1), Tail(), Errors(0.01)} }

// Diurnal is the deployment table's daily trend: the brief's cycle
// (median ±15 %, traffic ±50 %) with a +50 % morning peak at 09:00 (σ 1 h),
// for deploys between DiurnalFrom and DiurnalTo, the morning ramp, where
// latency and traffic change fastest.
func Diurnal() Cycle {
	return Cycle{Latency: 0.15, Traffic: 0.5, Peak: 0.5, PeakAt: 9 * 3600, PeakWidth: 3600}
}

// Deploy times of day under the trend, seconds after midnight.
const (
	DiurnalFrom = 6 * 3600
	DiurnalTo   = 12 * 3600
)

// Watch is how deployments are watched, with the defaults of `spanwatch
// serve` (deploy: and gate: sections): every Step seconds (the poll and the
// flush interval, 15 s), windows of Window steps (5m), MaxWait steps from
// first-seen (15m), Activity steps (1m) in which a version counts as
// serving.
type Watch struct {
	Step                      float64
	Window, MaxWait, Activity int
}

// DefaultWatch is the shipped defaults.
func DefaultWatch() Watch { return Watch{Step: 15, Window: 20, MaxWait: 60, Activity: 4} }

// RolloutCell is one deployment scenario, run many times.
type RolloutCell struct {
	Rollout Rollout
	Change  Change
	// Rate is the service's requests per second (both versions).
	Rate float64
	// Trend, if set, modulates latency and traffic over the day (deploys at
	// a uniform time between DiurnalFrom and DiurnalTo).
	Trend *Cycle
	// NoPrevious: the previous version left no data (it last served before
	// the store's retention, or spanwatch started at the deploy).
	NoPrevious bool
	Watch      Watch
}

// Key identifies the cell; it seeds the cell's random numbers.
func (c RolloutCell) Key() string {
	k := fmt.Sprintf("%s|%s|%s|%g|%v", TableRollout, c.Rollout.Name(), c.Change.Name, c.Rate, c.Watch)
	if c.Trend != nil {
		k += "|" + c.Trend.Name()
	}
	if c.NoPrevious {
		k += "|no previous data"
	}
	return k
}

// Deciders of the deployment table.
const (
	// Server is the automatic verdict (the server's rule).
	Server = iota
	// Manual is today's practice: `spanwatch gate --service S` with its
	// defaults (two versions found in the window, same-window comparison,
	// window 5m, max-wait 15m, poll 15s), started by CI one poll after
	// the rollout finished (`kubectl rollout status`).
	Manual
	// WideOnly is a what-if: the server's rule with before-after looks
	// decided by offset mode's thresholds alone (CompareService with them),
	// without CompareServiceShifted's narrow pass rule.
	WideOnly
	numDeciders
)

// RolloutResult is a cell's outcome for each decider. Times are seconds
// after first-seen.
type RolloutResult struct {
	RolloutCell
	Truth    string
	Kind     Kind
	Outcomes [numDeciders]Outcome
}

// versionDraws are one version's requests per step, as prefix sums over
// steps, so that any window's histogram is a difference.
type versionDraws struct {
	cells     [][]float64 // cells[i]: cumulative counts through step lo+i−1
	n, errors []float64
}

func (v *versionDraws) reset(steps, cells int) {
	if len(v.cells) != steps+1 {
		v.cells = make([][]float64, steps+1)
		for i := range v.cells {
			v.cells[i] = make([]float64, cells)
		}
		v.n, v.errors = make([]float64, steps+1), make([]float64, steps+1)
	}
	clear(v.cells[0])
}

// sum writes into out the counts of steps (a, b] (indices into the prefix
// sums, clamped) and returns the requests and errors.
func (v *versionDraws) sum(a, b int, out []float64) (n, errs float64) {
	a, b = max(a, 0), min(b, len(v.n)-1)
	clear(out)
	if b <= a {
		return 0, 0
	}
	hi, lo := v.cells[b], v.cells[a]
	for j := range out {
		out[j] = hi[j] - lo[j]
	}
	return v.n[b] - v.n[a], v.errors[b] - v.errors[a]
}

// probCache holds cell probabilities of a distribution family by the
// trend's latency factor, quantized to 0.05 % (far below the sampling
// error of any window here).
type probCache struct {
	g    *Grid
	dist func(factor float64) (Dist, error)
	m    map[int64]armSpec
}

func (pc *probCache) spec(factor float64) (armSpec, error) {
	k := int64(math.Round(math.Log(factor) / 5e-4))
	if a, ok := pc.m[k]; ok {
		return a, nil
	}
	d, err := pc.dist(math.Exp(float64(k) * 5e-4))
	if err != nil {
		return armSpec{}, err
	}
	a := newArmSpec(pc.g, d, 1, 0)
	pc.m[k] = a
	return a, nil
}

// drawWith draws a step at mean lambda requests and error rate errRate
// with the cell probabilities of a.
func (a armSpec) drawWith(r *rand.Rand, lambda, errRate float64, cells []float64) (n, errs float64) {
	clear(cells)
	if !(lambda > 0) {
		return 0, 0
	}
	total := 0
	for _, j := range a.active {
		c := Poisson(r, lambda*a.probs[j])
		cells[j] = float64(c)
		total += c
	}
	return float64(total), float64(Binomial(r, total, errRate))
}

// Run simulates the cell runs times: the previous and the new version's
// requests per step from Window steps before first-seen until the manual
// gate's last look, then the server's verdict and the manual gate's on the
// same draws.
func (c RolloutCell) Run(g *Grid, runs int, seed uint64) (RolloutResult, error) {
	res := RolloutResult{RolloutCell: c}
	base := HeadlineShape()
	cand, err := c.Change.Latency(base.Dist)
	if err != nil {
		return res, fmt.Errorf("%s: %w", c.Key(), err)
	}
	res.Truth = Truth(base.Dist, cand, c.Change.ErrorRate)
	res.Kind = Classify(base.Dist, cand, c.Change.ErrorRate)
	h := fnv.New64a()
	h.Write([]byte(c.Key()))
	cellSeed := h.Sum64() ^ seed

	w := c.Watch
	ln := *base.Lognormal
	oldCache := &probCache{g: g, m: map[int64]armSpec{}, dist: func(f float64) (Dist, error) {
		return Lognormal{Median: ln.Median * f, Sigma: ln.Sigma}, nil
	}}
	// Every change commutes with scaling (a warp acts on quantile ranks), so
	// the candidate under the trend is the candidate scaled; a warp's CDF is
	// tabulated once.
	cand0 := cand
	if wp, ok := cand.(Warped); ok {
		cand0 = Tabulate(wp)
	}
	newCache := &probCache{g: g, m: map[int64]armSpec{}, dist: func(f float64) (Dist, error) {
		return Scaled{D: cand0, Factor: f}, nil
	}}
	endStep := int(math.Ceil(c.Rollout.End() / w.Step))
	manualLooks := w.MaxWait + 1 // the gate plans max-wait / poll + 1 looks
	manualStart := endStep + 1   // one poll after the rollout finished
	// Steps lo … hi, lo = 1 − Window: the rate before first-seen, and the
	// baseline's window before the fall (at look 1 or later).
	lo := 1 - w.Window
	hi := max(w.MaxWait, manualStart+manualLooks-1)
	steps := hi - lo + 1
	cells := g.Cells()
	var old, neu versionDraws
	stepCells := make([]float64, cells)
	bufB, bufC := make([]float64, cells), make([]float64, cells)
	scratch := make([]float64, nativeHi-nativeLo+1)
	th := regress.DefaultThresholds()
	shifted := th.ForOffset()
	// idx maps a step to its prefix-sum index: prefix[idx(s)] holds steps ≤ s.
	idx := func(s int) int { return s - lo + 1 }

	for run := range runs {
		r := rand.New(rand.NewPCG(cellSeed, uint64(run)))
		tod := 0.0
		if c.Trend != nil {
			tod = DiurnalFrom + r.Float64()*(DiurnalTo-DiurnalFrom)
		}
		old.reset(steps, cells)
		neu.reset(steps, cells)
		for s := lo; s <= hi; s++ {
			a, b := float64(s-1)*w.Step, float64(s)*w.Step
			lf, tf := 1.0, 1.0
			if cy := c.Trend; cy != nil {
				lf, tf = cy.LatencyFactor(tod+(a+b)/2), cy.TrafficFactor(tod+(a+b)/2)
			}
			share := c.Rollout.oldShare(a, b)
			for v, vd := range []*versionDraws{&old, &neu} {
				lambda := c.Rate * tf * w.Step * share
				cache, errRate := oldCache, BaseErrorRate
				if v == 1 {
					lambda = c.Rate * tf * w.Step * (1 - share)
					cache, errRate = newCache, c.Change.ErrorRate
				}
				if v == 0 && c.NoPrevious {
					lambda = 0
				}
				var n, e float64
				if lambda > 0 {
					sp, err := cache.spec(lf)
					if err != nil {
						return res, fmt.Errorf("%s: %w", c.Key(), err)
					}
					n, e = sp.drawWith(r, lambda, errRate, stepCells)
				} else {
					clear(stepCells)
				}
				i := idx(s)
				prev, cur := vd.cells[i-1], vd.cells[i]
				for j := range cur {
					cur[j] = prev[j] + stepCells[j]
				}
				vd.n[i], vd.errors[i] = vd.n[i-1]+n, vd.errors[i-1]+e
			}
		}
		arm := func(vd *versionDraws, from, to int, buf []float64) regress.Arm {
			// Steps from+1 … to.
			n, e := vd.sum(idx(from), idx(to), buf)
			return regress.Arm{Latency: g.NativeHistogram(buf, scratch), Requests: n, Errors: e}
		}
		record := func(o *Outcome, v regress.Verdict, t float64) bool {
			switch v {
			case regress.Regression:
				o.Fail++
				o.FailTimes = append(o.FailTimes, t)
			case regress.Pass:
				o.Pass++
				o.PassTimes = append(o.PassTimes, t)
			default:
				return false
			}
			return true
		}

		// The server: ServerVerdict's rule, look k at k steps after first-seen.
		// The what-if decides with the same calls while the arms are in one
		// window.
		ev := NewWatchEvent(w, old.n[idx(0)]-old.n[idx(-w.Window)])
		var decided [numDeciders]bool
		for k := 1; k <= w.MaxWait && (!decided[Server] || !decided[WideOnly]); k++ {
			win := ev.Look(k, old.n[idx(k)]-old.n[idx(k-w.Activity)])
			var v [numDeciders]regress.Verdict
			if win.SameWindow {
				v[Server] = gateResult(arm(&old, k-w.Window, k, bufB), arm(&neu, k-w.Window, k, bufC), th, win.Look).Verdict
				v[WideOnly] = v[Server]
			} else {
				ops := []regress.Operation{{Name: "op", Base: arm(&old, win.BaseFrom, win.BaseTo, bufB), Cand: arm(&neu, win.CandFrom, k, bufC)}}
				if !decided[Server] {
					v[Server] = regress.CompareServiceShifted(ops, th, shifted, win.Look).Verdict
				}
				if !decided[WideOnly] {
					v[WideOnly] = regress.CompareService(ops, shifted, win.Look).Verdict
				}
			}
			for _, d := range []int{Server, WideOnly} {
				if decided[d] {
					continue
				}
				decided[d] = record(&res.Outcomes[d], v[d], float64(k)*w.Step)
				if !decided[d] && k == w.MaxWait {
					res.Outcomes[d].Inconclusive++
				}
			}
		}

		// Today's manual gate: wait for two versions in the window, then
		// same-window looks until a verdict or max-wait.
		o := &res.Outcomes[Manual]
		planned, first := 0, 0
		for j := 1; j <= manualLooks; j++ {
			k := manualStart + j - 1
			if planned == 0 {
				if old.n[idx(k)]-old.n[idx(k-w.Window)] == 0 || neu.n[idx(k)]-neu.n[idx(k-w.Window)] == 0 {
					if j == manualLooks {
						o.Inconclusive++
					}
					continue
				}
				// The wait counts towards max-wait.
				planned, first = manualLooks-(j-1), j
			}
			look := regress.Look{Index: j - first + 1, Total: planned}
			v := gateResult(arm(&old, k-w.Window, k, bufB), arm(&neu, k-w.Window, k, bufC), th, look).Verdict
			if record(o, v, float64(k)*w.Step) {
				break
			}
			if j == manualLooks {
				o.Inconclusive++
			}
		}
	}
	return res, nil
}

// WatchEvent follows one deployment as the server does (internal/deploy's
// Event.Progress and VerdictWindows): the previous version's rate before
// first-seen, the first look at which it fell below that rate (the fall)
// and the first look at which it served nothing in the activity window
// (the rollout's end).
type WatchEvent struct {
	w               Watch
	baseRate        float64 // requests per second before first-seen
	fall, end       int     // looks; 0: not yet
	activitySeconds float64
}

// NewWatchEvent starts watching with the previous version's requests in
// the window before first-seen.
func NewWatchEvent(w Watch, before float64) *WatchEvent {
	return &WatchEvent{w: w, baseRate: before / (float64(w.Window) * w.Step), activitySeconds: float64(w.Activity) * w.Step}
}

// Windows are what one look compares, in steps after first-seen (a window
// (from, to] holds steps from+1 … to).
type Windows struct {
	// SameWindow: both versions over the last Window steps, the default
	// thresholds. Otherwise before-after: the previous version over
	// (BaseFrom, BaseTo] against the new one over (CandFrom, now], with
	// offset mode's thresholds. CandFrom is the start of the activity
	// window in which the previous version was first seen serving nothing
	// (the rollout's end as the server can date it).
	SameWindow                 bool
	BaseFrom, BaseTo, CandFrom int
	// Look is the look's place in the plan: every look since first-seen
	// counts, in both modes, so that α is spent once per deployment.
	Look regress.Look
}

// Look applies look k (k steps after first-seen) given the previous
// version's requests in the activity window ending then, and returns the
// windows to compare.
func (e *WatchEvent) Look(k int, prevRequests float64) Windows {
	if e.end == 0 {
		rate := prevRequests / e.activitySeconds
		if e.fall == 0 && rate < e.baseRate {
			e.fall = k
		}
		if prevRequests <= 0 {
			e.end = k
			if e.fall == 0 {
				e.fall = k
			}
		}
	}
	look := regress.Look{Index: k, Total: e.w.MaxWait}
	if e.end == 0 {
		return Windows{SameWindow: true, Look: look}
	}
	// The previous version served nothing in the activity window that
	// ended at the end's look: the candidate starts with that window.
	return Windows{BaseFrom: e.fall - e.w.Window, BaseTo: e.fall, CandFrom: e.end - e.w.Activity, Look: look}
}

// RolloutCells are the deployment table: every shape, change and rate,
// without and with the daily trend, and the switch with no data of the
// previous version.
func RolloutCells() []RolloutCell {
	var cells []RolloutCell
	trend := Diurnal()
	for _, ro := range Rollouts() {
		for _, ch := range RolloutChanges() {
			for _, tr := range []*Cycle{nil, &trend} {
				for _, r := range RolloutRates {
					cells = append(cells, RolloutCell{Rollout: ro, Change: ch, Rate: r, Trend: tr, Watch: DefaultWatch()})
				}
			}
		}
	}
	for _, ch := range []Change{AA(), Uniform(1)} {
		for _, r := range RolloutRates {
			cells = append(cells, RolloutCell{Rollout: Rollout{Kind: Switch}, Change: ch, Rate: r, NoPrevious: true, Watch: DefaultWatch()})
		}
	}
	return cells
}

// RunRollouts runs the cells on workers goroutines, like RunAll.
func RunRollouts(cells []RolloutCell, runs int, seed uint64, workers int, progress io.Writer) ([]RolloutResult, error) {
	g := NewGrid(ClassicBounds)
	out := make([]RolloutResult, len(cells))
	errs := make([]error, len(cells))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range max(1, workers) {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = cells[i].Run(g, runs, seed)
				if progress != nil {
					mu.Lock()
					done++
					if done%max(1, len(cells)/10) == 0 || done == len(cells) {
						fmt.Fprintf(progress, "%d/%d rollout cells\n", done, len(cells))
					}
					mu.Unlock()
				}
			}
		})
	}
	// Slow cells first: low traffic decides late, the trend and tail-only
	// changes cost probabilities.
	order := make([]int, len(cells))
	for i := range order {
		order[i] = i
	}
	cost := func(c RolloutCell) float64 {
		x := 1 / c.Rate
		if c.Trend != nil {
			x += 1
		}
		return x
	}
	sort.SliceStable(order, func(a, b int) bool { return cost(cells[order[a]]) > cost(cells[order[b]]) })
	for _, i := range order {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

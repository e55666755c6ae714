package detection

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
)

func TestGridAggregatesEveryBucketing(t *testing.T) {
	g := NewGrid(ClassicBounds, RecipeBounds)
	for _, sh := range []Shape{LognormalShape(5, 1.0), LognormalShape(300, 1.0), BimodalShape(), HeavyTailShape()} {
		p := g.Probs(sh.Dist)
		sum := 0.0
		for _, x := range p {
			sum += x
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("%s: probabilities sum to %v", sh.Name, sum)
		}
		// Mass outside the native range must be negligible.
		if out := p[0] + p[len(p)-1]; out > 1e-9 {
			t.Errorf("%s: %g of the mass outside the grid", sh.Name, out)
		}
	}
	for j := 1; j < g.Cells(); j++ {
		if g.Native[j] < g.Native[j-1] || g.Classic[0][j] < g.Classic[0][j-1] || g.Classic[1][j] < g.Classic[1][j-1] {
			t.Fatalf("cell %d maps backwards", j)
		}
	}
	// Every cell lies inside its native bucket and its bucket of each
	// classic bucketing.
	for j, e := range g.Edges {
		lo := 0.0
		if j > 0 {
			lo = g.Edges[j-1]
		}
		nb := NativeBound(g.Native[j] + nativeLo)
		if j > 0 && !(e <= nb && lo >= NativeBound(g.Native[j]+nativeLo-1)) {
			t.Fatalf("cell (%g, %g] not in native bucket (%g, %g]", lo, e, NativeBound(g.Native[j]+nativeLo-1), nb)
		}
		for b, bounds := range g.Bounds {
			if c := g.Classic[b][j]; c < len(bounds) && (e > bounds[c] || (c > 0 && lo < bounds[c-1])) {
				t.Fatalf("cell (%g, %g] not in bucket %d of classic bucketing %d", lo, e, c, b)
			}
		}
	}
	// The cells refine every bucketing: each classic bound is an edge.
	for _, bounds := range g.Bounds {
		for _, x := range bounds {
			if !slices.Contains(g.Edges, x) {
				t.Errorf("classic bound %g is not a cell edge", x)
			}
		}
	}
}

func TestCellsRunOnTheirOwnBuckets(t *testing.T) {
	g := NewGrid(ClassicBounds, RecipeBounds)
	cells := make([]float64, g.Cells())
	put := func(x, n float64) { cells[sort.SearchFloat64s(g.Edges, x)] += n }
	put(20, 4)  // classic (10, 50], recipe (10, 25]
	put(30, 2)  // classic (10, 50], recipe (25, 50]
	put(300, 1) // classic (200, 400], recipe (250, 500]
	put(2e4, 3) // +Inf in both
	def, rec := g.ClassicHistogram(0, cells), g.ClassicHistogram(1, cells)
	if want := []float64{0, 0, 0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3}; !reflect.DeepEqual(def.Counts, want) {
		t.Errorf("default classic counts %v, want %v", def.Counts, want)
	}
	if want := []float64{0, 0, 0, 4, 2, 0, 0, 1, 0, 0, 0, 0, 3}; !reflect.DeepEqual(rec.Counts, want) {
		t.Errorf("recipe classic counts %v, want %v", rec.Counts, want)
	}
	if len(rec.Bounds) != 13 || rec.Bounds[11] != 10000 || !math.IsInf(rec.Bounds[12], 1) {
		t.Errorf("recipe bounds %v", rec.Bounds)
	}
	c := Cell{Table: "t", Shape: HeadlineShape(), Change: AA(), Rate: 10, Plan: ShortPlan(), Classic: RecipeBounds, ClassicOnly: true}
	if _, err := c.Run(NewGrid(ClassicBounds), 1, 1); err == nil {
		t.Error("a cell on the recipe's buckets ran on a grid without them")
	}
	res, err := c.Run(g, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Outcomes[GateNative].Runs() + res.Outcomes[StrictNative].Runs(); n != 0 {
		t.Errorf("classic-only cell counted %d native runs", n)
	}
	if res.Outcomes[GateClassic].Runs() != 5 || res.Outcomes[Recipe].Runs() != 5 {
		t.Errorf("classic-only cell: %d gate and %d recipe runs, want 5", res.Outcomes[GateClassic].Runs(), res.Outcomes[Recipe].Runs())
	}
}

func TestHistogramsAsTheGateReadsThem(t *testing.T) {
	g := NewGrid(ClassicBounds)
	cells := make([]float64, g.Cells())
	// Requests in three native buckets with gaps between them.
	put := func(x, n float64) {
		for j, e := range g.Edges {
			if x <= e {
				cells[j] += n
				return
			}
		}
	}
	put(3.1, 2)  // native bucket (2^(13/8), 2^(14/8)] = (3.08, 3.36]
	put(40, 5)   // (38.05, 41.50]
	put(41.6, 1) // (41.50, 45.25]
	put(900, 3)  // (877.8, 957.2]
	nh := g.NativeHistogram(cells, make([]float64, nativeHi-nativeLo+1))
	want := []float64{NativeBound(14), NativeBound(43), NativeBound(44), NativeBound(79)}
	if !reflect.DeepEqual(nh.Bounds, want) || !reflect.DeepEqual(nh.Counts, []float64{2, 5, 1, 3}) {
		t.Errorf("native = %v %v, want bounds %v counts [2 5 1 3] (populated buckets only, upper edges)", nh.Bounds, nh.Counts, want)
	}
	ch := g.ClassicHistogram(0, cells)
	if len(ch.Bounds) != 17 || !math.IsInf(ch.Bounds[16], 1) {
		t.Fatalf("classic bounds %v", ch.Bounds)
	}
	wantC := []float64{0, 2, 0, 0, 0, 6, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0}
	if !reflect.DeepEqual(ch.Counts, wantC) {
		t.Errorf("classic counts %v, want %v", ch.Counts, wantC)
	}
}

func TestChangesHaveTheirTruth(t *testing.T) {
	for _, sh := range []Shape{LognormalShape(40, 0.6), LognormalShape(5, 0.3), BimodalShape(), HeavyTailShape()} {
		base := sh.Dist
		for _, c := range []struct {
			ch    Change
			ratio [3]float64 // P50, P95, P99
		}{
			{Tail(), [3]float64{1, 1, 1.5}},
			{Body(), [3]float64{1.2, 1, 1}},
			{Uniform(0.2), [3]float64{1.2, 1.2, 1.2}},
		} {
			cand, err := c.ch.Latency(base)
			if err != nil {
				t.Fatalf("%s %s: %v", sh.Name, c.ch.Name, err)
			}
			for i, q := range []float64{0.5, 0.95, 0.99} {
				if got := cand.Quantile(q) / base.Quantile(q); math.Abs(got-c.ratio[i]) > 1e-6*c.ratio[i] {
					t.Errorf("%s %s: P%g ratio %.6f, want %g", sh.Name, c.ch.Name, q*100, got, c.ratio[i])
				}
				// The CDF inverts the quantile function.
				if u := cand.CDF(cand.Quantile(q)); math.Abs(u-q) > 1e-6 {
					t.Errorf("%s %s: CDF(Quantile(%g)) = %g", sh.Name, c.ch.Name, q, u)
				}
			}
		}
	}
	if k := Classify(HeadlineShape().Dist, HeadlineShape().Dist, BaseErrorRate); k != NoChange {
		t.Errorf("A/A classified %v", k)
	}
	sub, _ := Uniform(0.10).Latency(HeadlineShape().Dist)
	if k := Classify(HeadlineShape().Dist, sub, BaseErrorRate); k != SubThreshold {
		t.Errorf("+10 %% (at the ratio threshold) classified %v", k)
	}
	if k := Classify(HeadlineShape().Dist, HeadlineShape().Dist, 0.01); k != Regress {
		t.Errorf("errors ×10 classified %v", k)
	}
}

func TestDeterministic(t *testing.T) {
	cells := []Cell{
		{Table: "t", Shape: HeadlineShape(), Change: Tail(), Rate: 10, Plan: DefaultPlan()},
		{Table: "t", Shape: HeadlineShape(), Change: AA(), Rate: 1, Plan: DefaultPlan(), Cycle: &OffsetCycles()[0]},
		{Table: "t", Shape: BimodalShape(), Change: MissRatio(0.35), Rate: 100, Plan: DefaultPlan()},
	}
	a, err := RunAll(cells, 20, 5, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := RunAll(cells, 20, 5, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := func(rs []Result) (out [][numMethods]Outcome) {
		for _, r := range rs {
			out = append(out, r.Outcomes)
		}
		return out
	}
	if !reflect.DeepEqual(outcomes(a), outcomes(b)) {
		t.Error("results depend on the number of workers")
	}
	c, _ := RunAll(cells, 20, 6, 2, nil)
	if reflect.DeepEqual(outcomes(a), outcomes(c)) {
		t.Error("results do not depend on the seed")
	}
}

func TestWilson(t *testing.T) {
	// p̂ = 0.01, n = 500, z = 1.96: centre 0.013736, half-width 0.009457.
	lo, hi := Wilson(5, 500)
	if math.Abs(lo-0.428) > 0.002 || math.Abs(hi-2.319) > 0.002 {
		t.Errorf("Wilson(5, 500) = %.3f … %.3f %%", lo, hi)
	}
}

// TestTargetsQuick runs the headline cells with few runs and checks the
// brief's targets loosely (about 3 standard errors of slack at 60 runs).
// Targets the gate is known to miss are logged, not failed; see RESULTS.md
// for the full matrix.
func TestTargetsQuick(t *testing.T) {
	runs := 60
	if testing.Short() {
		runs = 20
	}
	var cells []Cell
	for _, ch := range []Change{AA(), Uniform(0.2), Uniform(1), Tail(), Errors(0.05)} {
		for _, r := range Rates {
			cells = append(cells, Cell{Table: TableHeadline, Shape: HeadlineShape(), Change: ch, Rate: r, Plan: DefaultPlan()})
		}
	}
	results, err := RunAll(cells, runs, 1, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	loose := []struct {
		target Target
		bound  float64
	}{
		{Targets()[0], 5},  // A/A false-fail ≤ 1 %
		{Targets()[1], 85}, // 2× at ≥ 10 req/s ≥ 95 %
		{Targets()[2], 75}, // +20 % at ≥ 100 req/s ≥ 90 %
		{Targets()[3], 75}, // tail-only at ≥ 100 req/s ≥ 90 %
		{Targets()[4], 5},  // no pass at 1 req/s
	}
	// Known misses on the headline shape (lognormal 40 ms σ 0.6): with
	// classic buckets the change must exceed one bucket width (40 ms at P50,
	// 100 ms at P95/P99), so +20 % and a +50 % P99 pass.
	known := map[string]bool{
		fmt.Sprint(GateClassic, 2): true,
		fmt.Sprint(GateClassic, 3): true,
	}
	for i, l := range loose {
		tg := l.target
		tg.Bound = l.bound
		for _, m := range []Method{GateNative, GateClassic} {
			j := Judge(tg, m, results)
			if j.Cells == 0 {
				t.Fatalf("%s: no cells", tg.Text)
			}
			switch {
			case j.OK() && known[fmt.Sprint(m, i)]:
				t.Logf("%s, %s: known miss now met loosely (worst %.1f %%): check RESULTS.md", m, tg.Text, j.WorstValue)
			case !j.OK() && known[fmt.Sprint(m, i)]:
				t.Logf("%s, %s: known miss, worst %.1f %% at %g/s", m, tg.Text, j.WorstValue, j.Worst.Rate)
			case !j.OK():
				t.Errorf("%s, %s (loose bound %g %%): worst %.1f %% at %g/s, %s", m, tg.Text, l.bound, j.WorstValue, j.Worst.Rate, j.Worst.Change.Name)
			}
		}
	}
}

// TestRecipeTargetsQuick runs the recipe table's cells that its targets are
// judged on, with few runs, and checks the targets loosely (about 3
// standard errors of slack): the A/A bound must hold; the detection targets
// that the gate is known to miss on the recipe's buckets are logged.
func TestRecipeTargetsQuick(t *testing.T) {
	runs := 60
	if testing.Short() {
		runs = 20
	}
	targets := Targets()[5:]
	loose := []float64{75, 60, 75, 5} // for ≥ 90 %, ≥ 75 %, ≥ 90 %, ≤ 1 %
	if len(targets) != len(loose) {
		t.Fatalf("%d recipe targets, want %d", len(targets), len(loose))
	}
	var cells []Cell
	for _, c := range RecipeCells() {
		cand, err := c.Change.Latency(c.Shape.Dist)
		if err != nil {
			t.Fatal(err)
		}
		r := Result{Cell: c, Kind: Classify(c.Shape.Dist, cand, c.Change.ErrorRate)}
		if slices.ContainsFunc(targets, func(tg Target) bool { return tg.Applies(r) }) {
			cells = append(cells, c)
		}
	}
	results, err := RunAll(cells, runs, 1, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Known misses: on the recipe's buckets a +20 % or +25 % change of
	// these shapes stays within one bucket width at P50/P95/P99, so the
	// gate mostly answers inconclusive (resolution-limited).
	known := map[int]bool{0: true, 1: true, 2: true}
	for i, tg := range targets {
		tg.Bound = loose[i]
		for _, s := range tg.Scopes {
			rs := inScope(s, results)
			for _, m := range []Method{GateClassic, Recipe} {
				j := Judge(tg, m, rs)
				if j.Cells == 0 {
					t.Fatalf("%s, %s: no cells", tg.Text, s.Name)
				}
				where := fmt.Sprintf("%s, %g/s, %s", shortShape(j.Worst.Shape.Name), j.Worst.Rate, planLabel(j.Worst.Plan))
				switch {
				case m == Recipe:
					t.Logf("%s, %s (%s): met %d of %d cells loosely, worst %.1f %% (%s)", m, tg.Text, s.Name, j.Met, j.Cells, j.WorstValue, where)
				case j.OK() && known[i]:
					t.Logf("%s, %s (%s): known miss now met loosely (worst %.1f %%): check RESULTS.md", m, tg.Text, s.Name, j.WorstValue)
				case !j.OK() && known[i]:
					t.Logf("%s, %s (%s): known miss, worst %.1f %% (%s)", m, tg.Text, s.Name, j.WorstValue, where)
				case !j.OK():
					t.Errorf("%s, %s (%s; loose bound %g %%): worst %.1f %% (%s)", m, tg.Text, s.Name, loose[i], j.WorstValue, where)
				}
			}
		}
	}
}

func BenchmarkRunCell(b *testing.B) {
	g := NewGrid(ClassicBounds)
	c := Cell{Table: "b", Shape: HeadlineShape(), Change: Tail(), Rate: 100, Plan: DefaultPlan()}
	for b.Loop() {
		if _, err := c.Run(g, 10, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPoisson(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for b.Loop() {
		Poisson(r, 1500)
	}
}

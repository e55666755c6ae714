package detection

import (
	"fmt"
	"io"
	"sort"
	"sync"
)

// Tables of the report, in order.
const (
	TableHeadline = "headline"
	TableShapes   = "shapes"
	TableBimodal  = "bimodal"
	TableHeavy    = "heavy"
	TableOffset   = "offset"
	TableProduct  = "product"
	TableRecipe   = "recipe"
)

// Rates are the traffic levels, requests per second per arm.
var Rates = []float64{1, 10, 100, 1000}

// HeadlineShape is the shape of the main table.
func HeadlineShape() Shape { return LognormalShape(40, 0.6) }

// RecipeRates are the recipe table's traffic levels, requests per second
// per arm.
var RecipeRates = []float64{10, 25, 100}

// RecipeShapes are the recipe table's lognormal shapes: the headline and a
// slower, narrower service.
func RecipeShapes() []Shape { return []Shape{HeadlineShape(), LognormalShape(80, 0.5)} }

// RecipeChanges are the recipe table's changes of its lognormal shapes in
// the default plan.
func RecipeChanges() []Change {
	return []Change{AA(), Uniform(0.20), Uniform(0.25), Tail(), Errors(0.01)}
}

// RecipeCells are the recipe table: a service that stores the recipe's
// classic buckets only, in canary mode. Each lognormal shape runs
// RecipeChanges at RecipeRates in the default plan, then A/A and +25 % at
// 25 req/s in the short plan; the bimodal cache and the heavy tail run A/A
// and +20 % at RecipeRates in the default plan.
func RecipeCells() []Cell {
	var cells []Cell
	add := func(sh Shape, ch Change, r float64, plan Plan) {
		cells = append(cells, Cell{Table: TableRecipe, Shape: sh, Change: ch, Rate: r, Plan: plan, Classic: RecipeBounds, ClassicOnly: true})
	}
	for _, sh := range RecipeShapes() {
		for _, ch := range RecipeChanges() {
			for _, r := range RecipeRates {
				add(sh, ch, r, DefaultPlan())
			}
		}
		for _, ch := range []Change{AA(), Uniform(0.25)} {
			add(sh, ch, 25, ShortPlan())
		}
	}
	for _, sh := range []Shape{BimodalShape(), HeavyTailShape()} {
		for _, ch := range []Change{AA(), Uniform(0.20)} {
			for _, r := range RecipeRates {
				add(sh, ch, r, DefaultPlan())
			}
		}
	}
	return cells
}

// LatencyChanges are the changes of every lognormal shape.
func LatencyChanges() []Change {
	return []Change{
		AA(), Uniform(0.05), Uniform(0.10), Uniform(0.20), Uniform(0.50), Uniform(1.00),
		Tail(), Body(), Errors(0.005), Errors(0.01), Errors(0.05),
	}
}

// Cells returns the full matrix.
func Cells() []Cell {
	var cells []Cell
	add := func(table string, sh Shape, changes []Change, plan Plan) {
		for _, ch := range changes {
			for _, r := range Rates {
				cells = append(cells, Cell{Table: table, Shape: sh, Change: ch, Rate: r, Plan: plan})
			}
		}
	}
	add(TableHeadline, HeadlineShape(), LatencyChanges(), DefaultPlan())
	for _, m := range []float64{5, 40, 300} {
		for _, s := range []float64{0.3, 0.6, 1.0} {
			if m == 40 && s == 0.6 {
				continue
			}
			add(TableShapes, LognormalShape(m, s), LatencyChanges(), DefaultPlan())
		}
	}
	add(TableBimodal, BimodalShape(), []Change{
		AA(), MissRatio(0.35), Uniform(0.20), Uniform(1.00), Tail(), Body(), Errors(0.01),
	}, DefaultPlan())
	add(TableHeavy, HeavyTailShape(), []Change{
		AA(), Uniform(0.05), Uniform(0.10), Uniform(0.20), Uniform(0.50), Uniform(1.00), Tail(), Body(), Errors(0.01),
	}, DefaultPlan())
	for _, sh := range []Shape{HeadlineShape(), LognormalShape(300, 1.0)} {
		for _, cy := range OffsetCycles() {
			for _, r := range Rates {
				cells = append(cells, Cell{Table: TableOffset, Shape: sh, Change: AA(), Rate: r, Cycle: &cy, Plan: DefaultPlan()})
			}
		}
	}
	add(TableProduct, HeadlineShape(), []Change{AA(), Uniform(0.20), Uniform(1.00), Tail(), Body()}, ProductPlan())
	return append(cells, RecipeCells()...)
}

// OffsetCycles are offset mode's daily cycles: the brief's (median ±15 %,
// traffic ±50 %, one hour back), a stronger one, a morning rush hour on top
// of the brief's, and a day back (the same time of day: no confounding
// under a purely daily cycle).
func OffsetCycles() []Cycle {
	return []Cycle{
		{Latency: 0.15, Traffic: 0.5, Offset: 3600},
		{Latency: 0.30, Traffic: 0.5, Offset: 3600},
		{Latency: 0.15, Traffic: 0.5, Peak: 0.5, PeakAt: 9 * 3600, PeakWidth: 3600, Offset: 3600},
		{Latency: 0.15, Traffic: 0.5, Offset: 86400},
	}
}

// RunAll runs every cell on workers goroutines, each on the grid of its own
// classic bucketing alone. Each cell's random numbers depend only on its
// Key, the run index and seed, so results do not depend on scheduling or on
// the other cells. progress, if not nil, gets a line per finished cell.
func RunAll(cells []Cell, runs int, seed uint64, workers int, progress io.Writer) ([]Result, error) {
	grids := map[string]*Grid{}
	for _, c := range cells {
		if k := joinFloats(c.Buckets()); grids[k] == nil {
			grids[k] = NewGrid(c.Buckets())
		}
	}
	out := make([]Result, len(cells))
	errs := make([]error, len(cells))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range max(1, workers) {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = cells[i].Run(grids[joinFloats(cells[i].Buckets())], runs, seed)
				if progress != nil {
					mu.Lock()
					done++
					if done%max(1, len(cells)/10) == 0 || done == len(cells) {
						fmt.Fprintf(progress, "%d/%d cells\n", done, len(cells))
					}
					mu.Unlock()
				}
			}
		})
	}
	// The longest cells (most planned looks) first, so that no long cell
	// runs alone at the end.
	order := make([]int, len(cells))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return cells[order[a]].Plan.Looks > cells[order[b]].Plan.Looks })
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

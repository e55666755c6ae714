package detection

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Target is one of the brief's requirements, judged per cell.
type Target struct {
	Text string
	// Applies selects the cells it is judged on.
	Applies func(r Result) bool
	// Value is the percentage judged in a cell.
	Value func(o Outcome) float64
	// Bound is the limit; AtMost says Value must be ≤ Bound (else ≥).
	Bound  float64
	AtMost bool
	// Scopes it is judged in; nil is Scopes().
	Scopes []Scope
}

// scopes are the scopes the target is judged in.
func (t Target) scopes() []Scope {
	if t.Scopes == nil {
		return Scopes()
	}
	return t.Scopes
}

// Targets are the brief's targets.
func Targets() []Target {
	named := func(ch Change, minRate float64) func(Result) bool {
		return func(r Result) bool { return r.Change.Name == ch.Name && r.Rate >= minRate && r.Kind == Regress }
	}
	return []Target{
		{
			Text:    "A/A false-fail ≤ 1 %",
			Applies: func(r Result) bool { return r.Kind == NoChange && r.Cycle == nil },
			Value:   Outcome.FailRate, Bound: 1, AtMost: true,
		},
		{
			Text:    "≥ 95 % of 2× slowdowns detected at ≥ 10 req/s within 5 minutes",
			Applies: named(Uniform(1), 10),
			Value:   func(o Outcome) float64 { return Percent(countAtMost(o.FailTimes, 300), o.Runs()) },
			Bound:   95,
		},
		{
			Text:    "≥ 90 % of +20 % (P95 +20 %) detected at ≥ 100 req/s",
			Applies: named(Uniform(0.2), 100),
			Value:   Outcome.FailRate, Bound: 90,
		},
		{
			Text:    "≥ 90 % of tail-only +50 % P99 detected at ≥ 100 req/s",
			Applies: named(Tail(), 100),
			Value:   Outcome.FailRate, Bound: 90,
		},
		{
			Text:    "at 1 req/s no pass (≤ 1 % of runs), whatever the change",
			Applies: func(r Result) bool { return r.Rate == 1 },
			Value:   Outcome.PassRate, Bound: 1, AtMost: true,
		},
		{
			Text:    "≥ 90 % of ×1.2 (every latency +20 %) detected at 100 req/s, 5-minute window",
			Applies: planned(Uniform(0.2), 100, DefaultPlan()),
			Value:   Outcome.FailRate, Bound: 90,
			Scopes: RecipeScopes(),
		},
		{
			Text:    "≥ 75 % of ×1.2 detected at 10 req/s, 5-minute window",
			Applies: planned(Uniform(0.2), 10, DefaultPlan()),
			Value:   Outcome.FailRate, Bound: 75,
			Scopes: RecipeScopes(),
		},
		{
			Text:    "≥ 90 % of ×1.25 detected at 25 req/s, 2-minute window (max-wait 2m)",
			Applies: planned(Uniform(0.25), 25, ShortPlan()),
			Value:   Outcome.FailRate, Bound: 90,
			Scopes: RecipeScopes()[:1],
		},
		{
			Text:    "A/A false-fail ≤ 1 %",
			Applies: func(r Result) bool { return r.Kind == NoChange && r.Cycle == nil },
			Value:   Outcome.FailRate, Bound: 1, AtMost: true,
			Scopes: RecipeScopes(),
		},
	}
}

// planned selects the cells of a change beyond the practical thresholds at
// one rate and plan.
func planned(ch Change, rate float64, p Plan) func(Result) bool {
	return func(r Result) bool {
		return r.Change.Name == ch.Name && r.Rate == rate && r.Plan == p && r.Kind == Regress
	}
}

func countAtMost(xs []float64, limit float64) int {
	n := 0
	for _, x := range xs {
		if x <= limit {
			n++
		}
	}
	return n
}

// Scope is a set of cells targets are judged on.
type Scope struct {
	Name   string
	Tables []string
	// Select, if not nil, keeps only the cells it accepts.
	Select func(Result) bool
	// ByShape and ByPlan name the worst cell's shape and plan too (for
	// scopes with several).
	ByShape, ByPlan bool
}

// Scopes returns the targets' scopes: the headline shape, every canary shape with the 5-minute plan,
// and the shipped defaults.
func Scopes() []Scope {
	return []Scope{
		{Name: "lognormal 40 ms σ 0.6", Tables: []string{TableHeadline}},
		{Name: "every canary shape (lognormal ×9, bimodal, heavy tail)", Tables: []string{TableHeadline, TableShapes, TableBimodal, TableHeavy}, ByShape: true},
		{Name: "shipped defaults, max-wait 15m (40 ms σ 0.6)", Tables: []string{TableProduct}},
	}
}

// RecipeScopes are the recipe table's scopes: its lognormal shapes, and
// every shape.
func RecipeScopes() []Scope {
	return []Scope{
		{
			Name: "recipe's 12 buckets only: lognormal 40 ms σ 0.6, 80 ms σ 0.5", Tables: []string{TableRecipe},
			Select: func(r Result) bool { return r.Shape.Lognormal != nil }, ByShape: true, ByPlan: true,
		},
		{
			Name: "recipe's 12 buckets only: every shape (+ bimodal, heavy tail)", Tables: []string{TableRecipe},
			ByShape: true, ByPlan: true,
		},
	}
}

// Judgement is a target's outcome for one method in one scope.
type Judgement struct {
	Cells, Met int
	Worst      Result
	WorstValue float64
}

// OK is true when every cell meets the target.
func (j Judgement) OK() bool { return j.Cells > 0 && j.Met == j.Cells }

// Judge evaluates a target for a method over results; cells where the
// method did not run do not count.
func Judge(t Target, m Method, results []Result) Judgement {
	var j Judgement
	j.WorstValue = math.NaN()
	for _, r := range results {
		if !t.Applies(r) || r.Outcomes[m].Runs() == 0 {
			continue
		}
		v := t.Value(r.Outcomes[m])
		j.Cells++
		ok := v >= t.Bound
		if t.AtMost {
			ok = v <= t.Bound
		}
		if ok {
			j.Met++
		}
		worse := v < j.WorstValue
		if t.AtMost {
			worse = v > j.WorstValue
		}
		if math.IsNaN(j.WorstValue) || worse {
			j.Worst, j.WorstValue = r, v
		}
	}
	return j
}

// inScope returns the results of the scope's tables.
func inScope(s Scope, results []Result) []Result {
	var out []Result
	for _, r := range results {
		if slices.Contains(s.Tables, r.Table) && (s.Select == nil || s.Select(r)) {
			out = append(out, r)
		}
	}
	return out
}

// writeTargets writes the targets section.
func writeTargets(w io.Writer, results []Result) {
	fmt.Fprintf(w, "## Targets\n\n")
	fmt.Fprintf(w, "Judged per cell: PASS when every cell of the scope meets the target; *worst* is the worst cell. (Sampling error of a rate from n runs: ±1.96·√(p(1−p)/n), about ±0.9 points at 1 %% and ±2.6 at 90 %% with 500 runs.)\n\n")
	fmt.Fprintf(w, "Latency targets count only cells whose true change is beyond the gate's practical thresholds (ratio *and* +5 ms; see † below); the what-if columns are the stricter pass rule of the what-if section, which spanwatch adopted (they equal its columns).\n\n")
	fmt.Fprintf(w, "| target | scope | %s | %s | %s | %s | %s |\n|---|---|---|---|---|---|---|\n", GateNative, GateClassic, Recipe, StrictNative, StrictClassic)
	recipe := false
	for _, t := range Targets() {
		for _, s := range t.scopes() {
			rs := inScope(s, results)
			row := fmt.Sprintf("| %s | %s ", t.Text, s.Name)
			some := false
			for m := range numMethods {
				j := Judge(t, m, rs)
				if j.Cells == 0 {
					row += "| – "
					continue
				}
				some = true
				verdict := "**PASS**"
				if !j.OK() {
					verdict = fmt.Sprintf("**MISS** (%d of %d cells)", j.Cells-j.Met, j.Cells)
				}
				where := fmtRate(j.Worst.Rate)
				if s.ByShape {
					where = shortShape(j.Worst.Shape.Name) + ", " + where
				}
				if s.ByPlan {
					where += ", " + planLabel(j.Worst.Plan)
				}
				if t.Applies(Result{Cell: Cell{Change: AA(), Rate: 1}}) && t.Applies(Result{Cell: Cell{Change: Uniform(1), Rate: 1}}) {
					where += ", " + j.Worst.Change.Name
				}
				row += fmt.Sprintf("| %s; worst %s %% (%s) ", verdict, fmtPct(j.WorstValue), where)
			}
			if some {
				fmt.Fprintln(w, row+"|")
				recipe = recipe || slices.Contains(s.Tables, TableRecipe)
			}
		}
	}
	fmt.Fprintln(w)
	if recipe {
		fmt.Fprintf(w, "The rows scoped to the recipe's 12 buckets judge a service that stores only those classic buckets and no native histograms (section *%s* below): their classic and recipe columns decide on the recipe's buckets, and the native columns are –. The pooled rates and the 2× line below leave them out.\n\n", recipeHeading)
	}
	// Pooled A/A false-fail rates and the 2× detection at 1 req/s.
	fmt.Fprintf(w, "Pooled over every canary A/A cell (all shapes, all traffic, both plans): ")
	var parts []string
	for m := range numMethods {
		k, n := 0, 0
		for _, r := range results {
			if r.Kind == NoChange && r.Cycle == nil && r.Classic == nil {
				k += r.Outcomes[m].Fail
				n += r.Outcomes[m].Runs()
			}
		}
		lo, hi := Wilson(k, n)
		parts = append(parts, fmt.Sprintf("%s %s %% (%d of %d runs; 95 %% CI %.2f … %.2f %%)", m, fmtPct(Percent(k, n)), k, n, lo, hi))
	}
	fmt.Fprintf(w, "%s.\n\n", strings.Join(parts, "; "))
	fmt.Fprintf(w, "2× slowdowns at 1 req/s (\"unless a ≥ 2× slowdown is proven\"), detected within the plan: ")
	parts = parts[:0]
	for _, r := range results {
		if r.Rate == 1 && r.Change.Name == Uniform(1).Name && r.Table != TableProduct && r.Classic == nil {
			parts = append(parts, fmt.Sprintf("%s %s / %s / %s %%", shortShape(r.Shape.Name),
				fmtPct(r.Outcomes[GateNative].FailRate()), fmtPct(r.Outcomes[GateClassic].FailRate()), fmtPct(r.Outcomes[Recipe].FailRate())))
		}
	}
	fmt.Fprintf(w, "%s (native / classic / recipe).\n\n", strings.Join(parts, "; "))
}

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
}

// Scopes returns the targets' scopes: the headline shape, every canary shape with the 5-minute plan,
// and the shipped defaults.
func Scopes() []Scope {
	return []Scope{
		{"lognormal 40 ms σ 0.6", []string{TableHeadline}},
		{"every canary shape (lognormal ×9, bimodal, heavy tail)", []string{TableHeadline, TableShapes, TableBimodal, TableHeavy}},
		{"shipped defaults, max-wait 15m (40 ms σ 0.6)", []string{TableProduct}},
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

// Judge evaluates a target for a method over results.
func Judge(t Target, m Method, results []Result) Judgement {
	var j Judgement
	j.WorstValue = math.NaN()
	for _, r := range results {
		if !t.Applies(r) {
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
		if slices.Contains(s.Tables, r.Table) {
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
	for _, t := range Targets() {
		for _, s := range Scopes() {
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
				if len(s.Tables) > 1 {
					where = shortShape(j.Worst.Shape.Name) + ", " + where
				}
				if t.Applies(Result{Cell: Cell{Change: AA(), Rate: 1}}) && t.Applies(Result{Cell: Cell{Change: Uniform(1), Rate: 1}}) {
					where += ", " + j.Worst.Change.Name
				}
				row += fmt.Sprintf("| %s; worst %s %% (%s) ", verdict, fmtPct(j.WorstValue), where)
			}
			if some {
				fmt.Fprintln(w, row+"|")
			}
		}
	}
	fmt.Fprintln(w)
	// Pooled A/A false-fail rates and the 2× detection at 1 req/s.
	fmt.Fprintf(w, "Pooled over every canary A/A cell (all shapes, all traffic, both plans): ")
	var parts []string
	for m := range numMethods {
		k, n := 0, 0
		for _, r := range results {
			if r.Kind == NoChange && r.Cycle == nil {
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
		if r.Rate == 1 && r.Change.Name == Uniform(1).Name && r.Table != TableProduct {
			parts = append(parts, fmt.Sprintf("%s %s / %s / %s %%", shortShape(r.Shape.Name),
				fmtPct(r.Outcomes[GateNative].FailRate()), fmtPct(r.Outcomes[GateClassic].FailRate()), fmtPct(r.Outcomes[Recipe].FailRate())))
		}
	}
	fmt.Fprintf(w, "%s (native / classic / recipe).\n\n", strings.Join(parts, "; "))
}

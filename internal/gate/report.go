package gate

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/spanwatch/spanwatch/internal/regress"
)

// Write renders rep in format: table, json, junit or markdown.
func Write(w io.Writer, format string, rep *Report) error {
	switch format {
	case "table", "":
		return writeTable(w, rep)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonReport(rep))
	case "junit":
		return writeJUnit(w, rep)
	case "markdown":
		return writeMarkdown(w, rep)
	}
	return fmt.Errorf("unknown format %q (table, json, junit, markdown)", format)
}

// row is one operation (or the whole service) in the human outputs.
type row struct {
	name      string
	res       regress.Result
	q         map[string]regress.Finding
	verdict   regress.Verdict
	reasonTxt string
	// flagged: an operation that looks regressed at the false-discovery
	// rate but is not significant family-wise, so it does not fail the gate.
	flagged bool
}

// verdictText is the row's verdict as the outputs print it: "flagged"
// for an operation that looks regressed but does not fail the gate.
func (r row) verdictText() string {
	if r.flagged {
		return "flagged"
	}
	return r.verdict.String()
}

func rows(rep *Report) []row {
	mk := func(name string, r regress.Result) row {
		q := map[string]regress.Finding{}
		for _, f := range r.Findings {
			q[f.Check] = f
		}
		return row{name: name, res: r, q: q, verdict: r.Verdict, reasonTxt: r.Reason}
	}
	out := []row{mk("(service)", rep.Result.Service)}
	single := len(rep.Result.Operations) == 1
	for _, o := range rep.Result.Operations {
		r := mk(o.Name, o.Result)
		// With one operation the service's family decides for it too.
		r.flagged = o.Verdict == regress.Regression && !o.Gates && !single
		out = append(out, r)
	}
	return out
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func quantiles(r row, check string) string {
	f, ok := r.q[check]
	if !ok {
		return "–"
	}
	return num(f.Baseline) + " → " + num(f.Candidate)
}

func change(r row, check string) string {
	f, ok := r.q[check]
	if !ok || math.IsNaN(f.Ratio) || f.Ratio == 0 {
		return "–"
	}
	s := percent(f.Ratio)
	if !math.IsNaN(f.CILow) && !math.IsNaN(f.CIHigh) && f.CILow > 0 {
		s += fmt.Sprintf(" (%s…%s)", percent(f.CILow), percent(f.CIHigh))
	}
	if f.ResolutionLimited {
		s += " ≈"
	}
	return s
}

func pvalue(p float64) string {
	switch {
	case math.IsNaN(p):
		return "–"
	case p < 0.001:
		return "<0.001"
	}
	return fmt.Sprintf("%.3f", p)
}

func minP(r row) float64 {
	p := math.NaN()
	for _, f := range r.res.Findings {
		if math.IsNaN(p) || f.AdjustedP < p {
			p = f.AdjustedP
		}
	}
	return p
}

func header(rep *Report) string {
	src := "classic buckets"
	if rep.Native {
		src = "native histograms"
	}
	return fmt.Sprintf("spanwatch gate: %s — %s\nbaseline:  %s\ncandidate: %s\n%d look(s) of %d planned, waited %s; latencies from %s",
		rep.Service, strings.ToUpper(rep.Verdict.String()), rep.Baseline, rep.Candidate, rep.Looks, rep.PlannedLooks,
		rep.Waited.Round(1e9), src)
}

func writeTable(w io.Writer, rep *Report) error {
	fmt.Fprintln(w, header(rep))
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tREQUESTS\tP50 ms\tP95 ms\tP99 ms\tP95 CHANGE (CI)\tERRORS %\tP (adj.)\tVERDICT")
	for _, r := range rows(rep) {
		errs := "–"
		if f, ok := r.q["errors"]; ok {
			errs = fmt.Sprintf("%.2f → %.2f", f.Baseline*100, f.Candidate*100)
		}
		fmt.Fprintf(tw, "%s\t%.0f / %.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.name,
			r.res.BaselineRequests, r.res.CandidateRequests, quantiles(r, "p50"), quantiles(r, "p95"), quantiles(r, "p99"),
			change(r, "p95"), errs, pvalue(minP(r)), r.verdictText())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, r := range rows(rep) {
		if r.reasonTxt != "" {
			fmt.Fprintf(w, "%s: %s\n", r.name, r.reasonTxt)
		}
	}
	fmt.Fprintf(w, "verdict: %s\n", rep.Result.Reason)
	return nil
}

func writeMarkdown(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "### spanwatch gate: `%s` — **%s**\n\n", rep.Service, strings.ToUpper(rep.Verdict.String()))
	fmt.Fprintf(w, "%s\n\n", rep.Result.Reason)
	fmt.Fprintf(w, "- baseline: `%s`\n- candidate: `%s`\n", rep.Baseline, rep.Candidate)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "- note: %s\n", n)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| operation | requests (base / cand) | P50 ms | P95 ms | P99 ms | P95 change (CI) | errors % | p (adj.) | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows(rep) {
		errs := "–"
		if f, ok := r.q["errors"]; ok {
			errs = fmt.Sprintf("%.2f → %.2f", f.Baseline*100, f.Candidate*100)
		}
		fmt.Fprintf(w, "| %s | %.0f / %.0f | %s | %s | %s | %s | %s | %s | %s |\n", mdEscape(r.name),
			r.res.BaselineRequests, r.res.CandidateRequests, quantiles(r, "p50"), quantiles(r, "p95"), quantiles(r, "p99"),
			change(r, "p95"), errs, pvalue(minP(r)), r.verdictText())
	}
	fmt.Fprintln(w)
	return nil
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

type junitSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []junitSui `xml:"testsuite"`
}

type junitSui struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, rep *Report) error {
	s := junitSui{Name: "spanwatch gate " + rep.Service}
	for _, r := range rows(rep) {
		c := junitCase{Name: r.name, ClassName: rep.Service, SystemOut: r.reasonTxt}
		switch {
		case r.flagged:
			// Looks regressed, not significant family-wise: a passing case
			// whose output says so.
		case r.verdict == regress.Regression:
			c.Failure = &junitMessage{Message: r.reasonTxt, Text: r.reasonTxt}
			s.Failures++
		case r.verdict == regress.Inconclusive:
			c.Skipped = &junitMessage{Message: r.reasonTxt}
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSui{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// jsonFinding mirrors regress.Finding with NaN as null.
type jsonFinding struct {
	Check             string   `json:"check"`
	Baseline          *float64 `json:"baseline"`
	Candidate         *float64 `json:"candidate"`
	Ratio             *float64 `json:"ratio"`
	CILow             *float64 `json:"ci_low"`
	CIHigh            *float64 `json:"ci_high"`
	ResolutionLimited bool     `json:"resolution_limited"`
	Test              string   `json:"test"`
	PValue            *float64 `json:"p_value"`
	AdjustedP         *float64 `json:"adjusted_p"`
	Significant       bool     `json:"significant"`
	Large             bool     `json:"large"`
	Enough            bool     `json:"enough_data"`
	Verdict           string   `json:"verdict"`
	Reason            string   `json:"reason"`
}

type jsonResult struct {
	Name              string        `json:"name"`
	Verdict           string        `json:"verdict"`
	Reason            string        `json:"reason"`
	BaselineRequests  float64       `json:"baseline_requests"`
	CandidateRequests float64       `json:"candidate_requests"`
	Findings          []jsonFinding `json:"findings"`
}

type jsonOut struct {
	Service      string       `json:"service"`
	Verdict      string       `json:"verdict"`
	Reason       string       `json:"reason"`
	Baseline     string       `json:"baseline"`
	Candidate    string       `json:"candidate"`
	Looks        int          `json:"looks"`
	PlannedLooks int          `json:"planned_looks"`
	WaitedSec    float64      `json:"waited_seconds"`
	Native       bool         `json:"native_histograms"`
	Notes        []string     `json:"notes,omitempty"`
	Results      []jsonResult `json:"results"`
	At           string       `json:"evaluated_at"`
}

func fp(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func jsonReport(rep *Report) jsonOut {
	out := jsonOut{
		Service: rep.Service, Verdict: rep.Verdict.String(), Reason: rep.Result.Reason,
		Baseline: rep.Baseline, Candidate: rep.Candidate, Looks: rep.Looks, PlannedLooks: rep.PlannedLooks,
		WaitedSec: rep.Waited.Seconds(), Native: rep.Native, Notes: rep.Notes, At: rep.At.UTC().Format("2006-01-02T15:04:05Z"),
	}
	for _, r := range rows(rep) {
		jr := jsonResult{Name: r.name, Verdict: r.verdictText(), Reason: r.reasonTxt,
			BaselineRequests: r.res.BaselineRequests, CandidateRequests: r.res.CandidateRequests}
		for _, f := range r.res.Findings {
			jr.Findings = append(jr.Findings, jsonFinding{
				Check: f.Check, Baseline: fp(f.Baseline), Candidate: fp(f.Candidate), Ratio: fp(f.Ratio),
				CILow: fp(f.CILow), CIHigh: fp(f.CIHigh), ResolutionLimited: f.ResolutionLimited, Test: f.Test,
				PValue: fp(f.PValue), AdjustedP: fp(f.AdjustedP), Significant: f.Significant, Large: f.Large,
				Enough: f.Enough, Verdict: f.Verdict.String(), Reason: f.Reason,
			})
		}
		out.Results = append(out.Results, jr)
	}
	return out
}

// JSON returns the value `spanwatch gate --format json` encodes, for
// callers that embed the report in their own JSON (the compare API).
func JSON(rep *Report) any { return jsonReport(rep) }
